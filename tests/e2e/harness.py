"""Shared machinery of the OneStory end-to-end tests.

The tests drive the real binaries (build/services/onestory-*) through Python's grpcio, a client
that is not ours, against a real redis-server. This module finds the build, imports the generated
stubs, starts and always stops every process, and offers small helpers (health checks, a Watch
reader with bounded waits, event builders).

Everything runs on 127.0.0.1 on free ports; every process started here is registered and killed
by stop_all(), which the runner calls in a finally block (also on SIGTERM/SIGINT). Children are
also started with PR_SET_PDEATHSIG, so they die if the test runner itself is killed. Note that
the death signal follows the *thread* that started the child: start processes from the main
thread (a process started from a helper thread is killed when that thread ends).

Run through journey_test.py (which accepts --build-dir); Debian's /usr/bin/python3 is required
(it has python3-grpcio and python3-protobuf).
"""

import argparse
import ctypes
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


# Options read here (and ignored by the runner): --build-dir DIR (default: $ONESTORY_E2E_BUILD_DIR
# or <repo>/build), whose python/ holds the generated stubs; --bin-dir DIR (default:
# <build-dir>/services), where the onestory-* binaries are.
OWN_OPTIONS = ("--build-dir", "--bin-dir")


def _options_from_argv():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--build-dir")
    parser.add_argument("--bin-dir")
    known, _ = parser.parse_known_args()
    build = known.build_dir or os.environ.get("ONESTORY_E2E_BUILD_DIR") or \
        os.path.join(REPO, "build")
    build = os.path.abspath(build)
    bin_dir = os.path.abspath(known.bin_dir) if known.bin_dir else \
        os.path.join(build, "services")
    return build, bin_dir


BUILD_DIR, SERVICES_DIR = _options_from_argv()
PYTHON_DIR = os.path.join(BUILD_DIR, "python")

try:
    import grpc  # noqa: E402
except ImportError:
    sys.stderr.write(
        "e2e: grpc is not importable by %s; run the tests with Debian's /usr/bin/python3 "
        "(python3-grpcio, python3-protobuf)\n" % sys.executable)
    raise

if not os.path.isdir(os.path.join(PYTHON_DIR, "onestory", "v1")):
    sys.stderr.write("e2e: no generated Python stubs under %s; build the onestory_python_api "
                     "target (or pass --build-dir)\n" % PYTHON_DIR)
    raise SystemExit(2)
sys.path.insert(0, PYTHON_DIR)

from google.protobuf import timestamp_pb2  # noqa: E402
from onestory.v1 import common_pb2  # noqa: E402
from onestory.v1 import context_pb2, context_pb2_grpc  # noqa: E402
from onestory.v1 import identity_pb2, identity_pb2_grpc  # noqa: E402
from onestory.v1 import timeline_pb2, timeline_pb2_grpc  # noqa: E402

C = common_pb2
RPC_TIMEOUT = 5.0  # seconds, on every unary call

# --------------------------------------------------------------------------------------------
# Processes


def binary(name):
    path = os.path.join(SERVICES_DIR, name)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError("%s not built (looked in %s)" % (name, SERVICES_DIR))
    return path


_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _die_with_parent():
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _clean_env():
    # No ONESTORY_* variable of the caller may change what the tests start.
    return {k: v for k, v in os.environ.items() if not k.startswith("ONESTORY_")}


_procs = []  # every Proc ever started, for stop_all()
_servers = []  # every Server, whose client channels stop_all() closes
_procs_lock = threading.Lock()
_tmp_root = None


def tmp_root():
    """One temporary directory for the whole run (short path: unix sockets live under it)."""
    global _tmp_root
    if _tmp_root is None:
        _tmp_root = tempfile.mkdtemp(prefix="os-e2e-", dir="/tmp")
    return _tmp_root


def new_tmp_dir(prefix):
    return tempfile.mkdtemp(prefix=prefix, dir=tmp_root())


class Proc:
    """A child process whose stderr+stdout go to a log file."""

    def __init__(self, name, args, log_path, env_extra=None):
        self.name = name
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT,
                                      env=dict(_clean_env(), **(env_extra or {})),
                                      preexec_fn=_die_with_parent, close_fds=True)
        self.extra_pids = []  # grandchildren we know of (embedded redis-server)
        with _procs_lock:
            _procs.append(self)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def terminate(self, timeout=10.0):
        """SIGTERM and wait; returns the exit code (SIGKILL and None after timeout)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.alive():
            self.popen.kill()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for pid in self.extra_pids:
            if _is_redis_server(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self._log.close()

    def log_tail(self, lines=25):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(data[-lines:])


def stop_all():
    with _procs_lock:
        procs = list(_procs)
        servers = list(_servers)
    for s in servers:  # first, so no client connection delays a server's shutdown
        s.close_channel()
    for p in reversed(procs):
        if p.alive():
            p.terminate(timeout=5)
        p.kill()


def print_logs(out=sys.stderr):
    with _procs_lock:
        procs = list(_procs)
    for p in procs:
        out.write("----- %s (pid %d) log tail: %s\n%s\n" % (p.name, p.pid, p.log_path,
                                                           p.log_tail()))


def remove_tmp():
    if _tmp_root is not None:
        shutil.rmtree(_tmp_root, ignore_errors=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _redis_pings(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            # An ACL-protected Redis answers NOAUTH: it is up.
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class Redis:
    """A throwaway redis-server on a free port, no persistence; `extra_args` are appended to its
    command line (e.g. ACL users)."""

    def __init__(self, extra_args=()):
        last_error = None
        for _ in range(3):  # a free port can be taken between probe and bind: retry
            self.port = free_port()
            self.dir = new_tmp_dir("redis-")
            self.proc = Proc("redis-server:%d" % self.port,
                             ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", self.dir,
                              "--daemonize", "no"] + list(extra_args),
                             os.path.join(self.dir, "redis.log"))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.alive():
                if _redis_pings(self.port):
                    return
                time.sleep(0.02)
            last_error = "redis-server did not answer PING:\n" + self.proc.log_tail()
            self.proc.kill()
        raise RuntimeError(last_error)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def server_kwargs(self):
        """How a Server names this Redis: Server(**redis.server_kwargs())."""
        return {"redis_address": self.address}

    def server_env(self):
        """The same through the environment."""
        return {"ONESTORY_REDIS": self.address}


class TlsFiles:
    """Test certificates made with the openssl command line (as tests/testing's MakeTlsFiles):
    ca.crt, redis.crt / redis.key naming IP 127.0.0.1 and DNS redis.test, signed by it."""

    def __init__(self):
        self.dir = new_tmp_dir("tls-")
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        with open(os.path.join(self.dir, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:redis.test\n")
        for cmd in (["openssl", "req", "-x509"] + key + ["-keyout", "ca.key", "-out", "ca.crt",
                                                         "-days", "2", "-subj", "/CN=test-ca"],
                    ["openssl", "req"] + key + ["-keyout", "redis.key", "-out", "redis.csr",
                                                "-subj", "/CN=redis.test"],
                    ["openssl", "x509", "-req", "-in", "redis.csr", "-CA", "ca.crt", "-CAkey",
                     "ca.key", "-CAcreateserial", "-out", "redis.crt", "-days", "2",
                     "-extfile", "san.ext"]):
            subprocess.run(cmd, cwd=self.dir, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        self.ca = os.path.join(self.dir, "ca.crt")

    def server_args(self, tls_port):
        """redis-server arguments serving TLS on tls_port (no client certificate asked)."""
        return ["--tls-port", str(tls_port), "--tls-cert-file",
                os.path.join(self.dir, "redis.crt"), "--tls-key-file",
                os.path.join(self.dir, "redis.key"), "--tls-ca-cert-file", self.ca,
                "--tls-auth-clients", "no"]


class RedisCluster:
    """A throwaway Redis Cluster: 3 primaries and 3 replicas on free loopback ports (each with a
    cluster bus port of its own), no persistence, node timeout 1 s; started as
    tests/testing/redis_cluster_for_test.cc starts it. `seeds` is the --redis_cluster value."""

    NODES = 6

    def __init__(self, tls=None):
        """tls: a TlsFiles; every node then also serves TLS on a port of its own (tls-cluster
        and tls-replication yes), and `seeds` names those ports."""
        self.dir = new_tmp_dir("cluster-")
        self.tls = tls
        self.ports, self.procs, self.buses, self.tls_ports, taken = [], [], {}, {}, set()
        for _ in range(self.NODES):
            for _attempt in range(5):
                port, bus, tls_port = free_port(), free_port(), free_port()
                mine = {port, bus, tls_port}
                if len(mine) < 3 or mine & taken:
                    continue
                self.tls_ports[port] = tls_port
                proc = self._start_node(port, bus)
                if proc:
                    break
            else:
                raise RuntimeError("could not start redis-server in cluster mode")
            self.procs.append(proc)
            self.ports.append(port)
            self.buses[port] = bus
            taken.update(mine)
        create = subprocess.run(
            ["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % p for p in self.ports] +
            ["--cluster-replicas", "1", "--cluster-yes"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if create.returncode != 0:
            raise RuntimeError("redis-cli --cluster create failed:\n" +
                               create.stdout.decode("utf-8", "replace"))
        wait_until(self._healthy, 30, interval=0.05, what="the cluster to be healthy")

    def _start_node(self, port, bus):
        d = os.path.join(self.dir, "node-%d" % port)
        os.makedirs(d, exist_ok=True)
        proc = Proc("redis-cluster:%d" % port,
                    ["redis-server", "--port", str(port), "--cluster-port", str(bus),
                     "--bind", "127.0.0.1", "--dir", d, "--cluster-enabled", "yes",
                     "--cluster-config-file", os.path.join(d, "nodes.conf"),
                     "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0",
                     "--appendonly", "no", "--save", "", "--daemonize", "no"] +
                    (self.tls.server_args(self.tls_ports[port]) + ["--tls-cluster", "yes",
                                                                   "--tls-replication", "yes"]
                     if self.tls else []),
                    os.path.join(d, "redis.log"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.alive():
            if _redis_pings(port):
                return proc
            time.sleep(0.02)
        proc.kill()
        return None

    def _cli(self, port, *args):
        return subprocess.run(["redis-cli", "-p", str(port)] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=5).stdout.decode("utf-8", "replace")

    def _healthy(self):
        for p in self.ports:
            info = self._cli(p, "CLUSTER", "INFO")
            if "cluster_state:ok" not in info or "cluster_slots_assigned:16384" not in info:
                return False
            repl = self._cli(p, "INFO", "replication")
            if "role:slave" in repl and "master_link_status:up" not in repl:
                return False
            # A primary counts its replica (WAIT) only once its first acknowledgement arrived.
            if "role:master" in repl and "state=online" not in repl:
                return False
        return True

    @property
    def seeds(self):
        return ",".join("127.0.0.1:%d" % (self.tls_ports[p] if self.tls else p)
                        for p in self.ports)

    # Cluster operations for fault tests ---------------------------------------------------

    def cli(self, port, *args):
        """redis-cli's output of one command on the node at port."""
        return self._cli(port, *args).strip()

    def nodes(self):
        """CLUSTER NODES as seen from a live node: dicts with id, port, master (bool), of (its
        primary's id, replicas) and slots (a list of (first, last))."""
        for p in self.ports:
            if not self.procs[self.ports.index(p)].alive():
                continue
            text = self.cli(p, "CLUSTER", "NODES")
            if not text:
                continue
            out = []
            for line in text.splitlines():
                f = line.split()
                if len(f) < 8:
                    continue
                slots = []
                for r in f[8:]:
                    if r.startswith("["):
                        continue
                    a, _, b = r.partition("-")
                    slots.append((int(a), int(b or a)))
                out.append({"id": f[0], "port": int(f[1].split("@")[0].rsplit(":", 1)[1]),
                            "master": "master" in f[2].split(","), "failed": "fail" in f[2],
                            "of": f[3], "slots": slots})
            return out
        raise RuntimeError("no cluster node answers")

    def slot_of(self, key):
        return int(self.cli(self.ports[0], "CLUSTER", "KEYSLOT", key))

    def primary_of(self, slot):
        """The port of the primary serving slot."""
        for n in self.nodes():
            if n["master"] and any(a <= slot <= b for a, b in n["slots"]):
                return n["port"]
        raise RuntimeError("no primary serves slot %d" % slot)

    def replica_of(self, primary_port):
        nodes = self.nodes()
        pid = next(n["id"] for n in nodes if n["port"] == primary_port)
        return next(n["port"] for n in nodes if not n["master"] and n["of"] == pid)

    def failover(self, replica_port, timeout=15):
        """CLUSTER FAILOVER on a replica (planned: no write is lost); waits until every node
        sees it as the primary and the cluster is healthy again."""
        out = self.cli(replica_port, "CLUSTER", "FAILOVER")
        if out != "OK":
            raise RuntimeError("CLUSTER FAILOVER: %s" % out)
        wait_until(lambda: all(n["master"] for n in self.nodes() if n["port"] == replica_port)
                   and self._healthy(), timeout, interval=0.05, what="the failover")

    def kill(self, port):
        self.procs[self.ports.index(port)].kill()

    def restart(self, port):
        """Starts a killed node again on its port and directory: it rejoins the cluster (a
        killed primary whose replica took over comes back as that replica's replica)."""
        i = self.ports.index(port)
        proc = self._start_node(port, self.buses[port])
        if proc is None:
            raise RuntimeError("could not restart redis-server on port %d" % port)
        self.procs[i] = proc
        wait_until(self._healthy, 30, interval=0.05, what="the restarted node to rejoin")

    def migrate_slot(self, slot, dst_port, pause=0.0, batch=10):
        """Moves slot from its primary to the primary at dst_port as redis-cli --cluster
        reshard would: IMPORTING / MIGRATING, MIGRATE of its keys batch at a time (sleeping
        pause between batches, so calls meet ASK and TRYAGAIN), then SETSLOT NODE everywhere."""
        src_port = self.primary_of(slot)
        nodes = self.nodes()
        src = next(n["id"] for n in nodes if n["port"] == src_port)
        dst = next(n["id"] for n in nodes if n["port"] == dst_port)
        self.cli(dst_port, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", src)
        self.cli(src_port, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", dst)
        while True:
            keys = self.cli(src_port, "CLUSTER", "GETKEYSINSLOT", str(slot), str(batch))
            keys = [k for k in keys.splitlines() if k]
            if not keys:
                break
            out = self.cli(src_port, "MIGRATE", "127.0.0.1", str(dst_port), "", "0", "5000",
                           "KEYS", *keys)
            if out not in ("OK", "NOKEY"):
                raise RuntimeError("MIGRATE: %s" % out)
            time.sleep(pause)
        for n in nodes:
            if n["master"]:
                self.cli(n["port"], "CLUSTER", "SETSLOT", str(slot), "NODE", dst)

    def server_kwargs(self):
        return {"redis_cluster": self.seeds}

    def server_env(self):
        return {"ONESTORY_REDIS_CLUSTER": self.seeds}


# --------------------------------------------------------------------------------------------
# API keys. Every server started here loads one key file (unless a test passes its own
# --api_keys_file): a key with every scope for each tenant tenant() hands out, and one for
# DEFAULT_TENANT. channel() attaches the key of the request's tenant to every call (the default
# key when the tenant is not one of ours, so a malformed tenant still reaches validation).

DEFAULT_TENANT = "e2e_default"
_TENANT_POOL = 400
_RUN = uuid.uuid4().hex[:8]
_keys = {}          # tenant -> key
_free_tenants = []
_keys_file = None
_keys_lock = threading.Lock()


def _make_key():
    return "os_" + uuid.uuid4().hex + uuid.uuid4().hex


def key_line(key_id, tenant_, scopes, key):
    import hashlib
    return "%s %s %s sha256:%s" % (key_id, tenant_, scopes,
                                   hashlib.sha256(key.encode()).hexdigest())


ALL_SCOPES = ("timeline.write,timeline.read,context.read.bot,context.read.agent,"
              "context.read.supervisor,identity.admin,tenant.admin,privacy.admin")


def keys_file():
    """The shared key file, written on first use."""
    global _keys_file
    with _keys_lock:
        if _keys_file is None:
            tenants = [DEFAULT_TENANT] + ["e2e_%s_%03d" % (_RUN, i) for i in range(_TENANT_POOL)]
            lines = []
            for i, t in enumerate(tenants):
                _keys[t] = _make_key()
                lines.append(key_line("e2e-%d" % i, t, ALL_SCOPES, _keys[t]))
            _free_tenants.extend(tenants[1:])
            path = os.path.join(tmp_root(), "api_keys")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            _keys_file = path
        return _keys_file


def key_for(tenant_):
    keys_file()
    return _keys.get(tenant_) or _keys[DEFAULT_TENANT]


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, d, metadata):
        self.method = d.method
        self.timeout = d.timeout
        self.metadata = metadata
        self.credentials = d.credentials
        self.wait_for_ready = getattr(d, "wait_for_ready", None)
        self.compression = getattr(d, "compression", None)


class _KeyInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                      grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds "authorization: Bearer <key of the request's tenant>" unless the call has one."""

    def _with_key(self, d, request):
        md = list(d.metadata or [])
        if not any(k == "authorization" for k, _ in md):
            md.append(("authorization", "Bearer " + key_for(getattr(request, "tenant", None))))
        return _CallDetails(d, md)

    def intercept_unary_unary(self, continuation, d, request):
        return continuation(self._with_key(d, request), request)

    def intercept_unary_stream(self, continuation, d, request):
        return continuation(self._with_key(d, request), request)

    def intercept_stream_unary(self, continuation, d, requests):
        return continuation(self._with_key(d, None), requests)

    def intercept_stream_stream(self, continuation, d, requests):
        return continuation(self._with_key(d, None), requests)


def channel(target):
    """A channel to a OneStory server started here that sends the right API key on every call."""
    return grpc.intercept_channel(grpc.insecure_channel(target), _KeyInterceptor())


def raw_channel(target):
    """A channel that sends no key (for tests of authentication itself)."""
    return grpc.insecure_channel(target)


class Server:
    """One OneStory binary (onestory-server by default), listening on a free port."""

    def __init__(self, redis_address=None, binary_name="onestory-server", extra_args=(),
                 data_dir=None, wait=True, env_extra=None, keys=True, redis_cluster=None):
        self.name = binary_name
        self.dir = new_tmp_dir(binary_name + "-")
        self.port_file = os.path.join(self.dir, "port")
        args = [binary(binary_name), "--listen=127.0.0.1:0", "--port_file=" + self.port_file,
                "--shutdown_grace_ms=2000", "--log_level=info"]
        # The load tests drive one key far past the default rate limit; the tests of the limit
        # pass their own --api_key_rate.
        if not any(a.startswith("--api_key_rate") for a in extra_args):
            args.append("--api_key_rate=0")
        if keys and not any(a.startswith("--api_keys_file") for a in extra_args):
            args.append("--api_keys_file=" + keys_file())
        if redis_address:
            args.append("--redis=" + redis_address)
        if redis_cluster:
            args.append("--redis_cluster=" + redis_cluster)
        if data_dir:
            args.append("--data_dir=" + data_dir)
        args.extend(extra_args)
        self.proc = Proc(binary_name, args, os.path.join(self.dir, "server.log"), env_extra)
        self.port = None
        self.channel = None
        with _procs_lock:
            _servers.append(self)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text.isdigit():
                    self.port = int(text)
                    break
            if not self.proc.alive():
                raise RuntimeError("%s exited (code %s) before listening:\n%s" %
                                   (self.name, self.proc.popen.returncode, self.proc.log_tail()))
            time.sleep(0.02)
        else:
            raise RuntimeError("%s wrote no port file within %.0fs:\n%s" %
                               (self.name, timeout, self.proc.log_tail()))
        self.channel = channel(self.target)
        grpc.channel_ready_future(self.channel).result(timeout=5)
        return self

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port

    def identity(self):
        return identity_pb2_grpc.IdentityServiceStub(self.channel)

    def timeline(self):
        return timeline_pb2_grpc.TimelineServiceStub(self.channel)

    def context(self):
        return context_pb2_grpc.ContextServiceStub(self.channel)

    def close_channel(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit code."""
        self.close_channel()
        return self.proc.terminate(timeout=timeout)

    def child_pids(self):
        """Direct children of the server process (the embedded redis-server)."""
        out = []
        for pid in _all_pids():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 1 and int(fields[1]) == self.proc.pid:
                out.append(pid)
        return out


def _all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _is_redis_server(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip().startswith("redis-server")
    except OSError:
        return False


def redis_servers_using(directory):
    """Pids of live redis-server processes whose working directory or command line names
    `directory` (Redis chdirs to its --dir)."""
    directory = os.path.realpath(directory)
    found = []
    for pid in _all_pids():
        if not _is_redis_server(pid):
            continue
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    continue  # a zombie holds nothing
        except OSError:
            continue
        try:
            cwd = os.path.realpath(os.readlink("/proc/%d/cwd" % pid))
        except OSError:
            cwd = ""
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
        except OSError:
            cmdline = ""
        if cwd == directory or directory in cmdline:
            found.append(pid)
    return found


# --------------------------------------------------------------------------------------------
# The shared environment: one Redis and two onestory-server instances on it.


# ONESTORY_E2E_REDIS=cluster: the shared environment runs on a local Redis Cluster
# (RedisCluster) instead of one redis-server.
ON_CLUSTER = os.environ.get("ONESTORY_E2E_REDIS") == "cluster"


class Env:
    def __init__(self):
        self.redis = RedisCluster() if ON_CLUSTER else Redis()
        self.a = Server(**self.redis.server_kwargs())
        self.b = Server(**self.redis.server_kwargs())


_env = None
_env_error = None


def env():
    """The shared environment, started on first use; a failed start is not retried."""
    global _env, _env_error
    if _env_error is not None:
        raise RuntimeError("the shared e2e environment failed to start: %s" % _env_error)
    if _env is None:
        try:
            _env = Env()
        except Exception as e:
            _env_error = e
            raise
    return _env


# --------------------------------------------------------------------------------------------
# Health checking without grpc_health (Debian's python3-grpcio does not ship it).


def _encode_health_request(service):
    if not service:
        return b""
    name = service.encode()
    assert len(name) < 128
    return b"\x0a" + bytes([len(name)]) + name


def _decode_health_status(data):
    """HealthCheckResponse.status (field 1, varint); 0 (UNKNOWN) when absent."""
    i, status = 0, 0
    while i < len(data):
        key = data[i]
        i += 1
        field, wire = key >> 3, key & 7
        if wire != 0:
            raise ValueError("unexpected wire type %d in HealthCheckResponse" % wire)
        value, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if field == 1:
            status = value
    return status


HEALTH_SERVING = 1
HEALTH_NOT_SERVING = 2


def health_check(channel, service=""):
    """grpc.health.v1.Health/Check; returns the status number (1 = SERVING)."""
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: F401
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service),
                          timeout=RPC_TIMEOUT).status
    except ImportError:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        return _decode_health_status(check(_encode_health_request(service),
                                           timeout=RPC_TIMEOUT))


# --------------------------------------------------------------------------------------------
# Watch with bounded waits


class WatchReader:
    """Reads a Watch stream on a thread; the test takes events with timeouts."""

    def __init__(self, stub, request, timeout=45.0):
        self.call = stub.Watch(request, timeout=timeout)
        self.q = queue.Queue()
        self.ended = None  # (code, details) once the stream ended
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for resp in self.call:
                self.q.put(("event", resp.event))
            self.q.put(("end", grpc.StatusCode.OK, ""))
        except grpc.RpcError as e:
            self.q.put(("end", e.code(), e.details()))
        except Exception as e:  # pragma: no cover
            self.q.put(("end", None, repr(e)))

    def next_event(self, timeout=5.0):
        try:
            item = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no Watch event within %.1fs" % timeout)
        if item[0] == "end":
            self.ended = item[1:]
            raise AssertionError("Watch ended with %s (%s) while an event was expected" %
                                 (item[1], item[2]))
        return item[1]

    def events(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        return [self.next_event(max(0.05, deadline - time.monotonic())) for _ in range(n)]

    def expect_quiet(self, seconds):
        """Asserts nothing arrives for `seconds`."""
        try:
            item = self.q.get(timeout=seconds)
        except queue.Empty:
            return
        if item[0] == "event":
            raise AssertionError("unexpected Watch event %s" % item[1].event_id)
        raise AssertionError("Watch ended unexpectedly with %s (%s)" % (item[1], item[2]))

    def wait_end(self, timeout=5.0):
        """Waits for the stream to end, skipping events; returns (code, details)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("Watch did not end within %.1fs" % timeout)
            try:
                item = self.q.get(timeout=remaining)
            except queue.Empty:
                continue
            if item[0] == "end":
                self.ended = item[1:]
                return item[1], item[2]

    def cancel(self):
        self.call.cancel()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# Builders


def unique(prefix=""):
    return prefix + uuid.uuid4().hex[:12]


def tenant():
    """A fresh tenant that has a key in the shared key file."""
    keys_file()
    with _keys_lock:
        if not _free_tenants:
            raise RuntimeError("all %d e2e tenants are used; raise _TENANT_POOL" % _TENANT_POOL)
        return _free_tenants.pop(0)


def ident(type_, value):
    return C.Identifier(type=type_, value=value)


def phone(value):
    return ident(C.IDENTIFIER_TYPE_PHONE, value)


def by_id(customer_id):
    return C.CustomerRef(customer_id=customer_id)


def by_ident(type_, value):
    return C.CustomerRef(identifier=ident(type_, value))


def ts(seconds):
    t = timestamp_pb2.Timestamp()
    t.seconds = int(seconds)
    return t


def event(channel, kind, actor_type=C.Actor.TYPE_CUSTOMER, actor_id="", event_id=None,
          occurred_at=None, **fields):
    e = C.Event(channel=channel, kind=kind, actor=C.Actor(type=actor_type, id=actor_id),
                event_id=event_id if event_id is not None else unique("ev-"), **fields)
    if occurred_at is not None:
        e.occurred_at.CopyFrom(ts(occurred_at))
    return e


def rpc_code(fn, *args, **kwargs):
    """Calls fn; returns (StatusCode, details). OK when it succeeded."""
    kwargs.setdefault("timeout", RPC_TIMEOUT)
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


# --------------------------------------------------------------------------------------------
# The base of every e2e test case


def ids(events):
    return [e.event_id for e in events]


class E2ECase(unittest.TestCase):
    """Gives each test the shared Redis and the two instances A and B, and a fresh tenant."""

    def setUp(self):
        self.env = env()
        self.a, self.b = self.env.a, self.env.b
        self.tenant = tenant()

    def assertCode(self, expected, fn, request, msg=None):
        code, details = rpc_code(fn, request)
        self.assertEqual(code, expected, "%s: got %s (%s)" % (msg or "", code, details))
        return details

    def resolve(self, server, type_, value, create=True):
        return server.identity().Resolve(
            identity_pb2.ResolveRequest(tenant=self.tenant, identifier=ident(type_, value),
                                        create_if_missing=create), timeout=RPC_TIMEOUT)

    def append(self, server, customer, events, create=False):
        return server.timeline().Append(
            timeline_pb2.AppendRequest(tenant=self.tenant, customer=customer, events=events,
                                       create_if_missing=create), timeout=RPC_TIMEOUT)

    def context(self, server, customer, recent=0):
        return server.context().GetContext(
            context_pb2.GetContextRequest(tenant=self.tenant, customer=customer,
                                          recent_events=recent), timeout=RPC_TIMEOUT)

    def list_all(self, server, customer, page_size, order, channels=(), max_pages=50):
        """Follows next_page_token to the end; returns (events, number of pages)."""
        out, token, pages = [], "", 0
        while True:
            resp = server.timeline().List(
                timeline_pb2.ListRequest(tenant=self.tenant, customer=customer,
                                         page_size=page_size, page_token=token, order=order,
                                         channels=list(channels)), timeout=RPC_TIMEOUT)
            pages += 1
            self.assertLessEqual(len(resp.events), page_size or 50)
            out.extend(resp.events)
            token = resp.next_page_token
            if not token:
                return out, pages
            self.assertLess(pages, max_pages, "page tokens never end")
