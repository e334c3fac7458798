#!/usr/bin/python3
"""OneStory benchmark: raw Redis and OneStory measured side by side, on one machine, in one run.

Starts its own redis-server (no persistence, for both sides alike) and onestory-server on free
loopback ports, measures raw Redis with redis-benchmark for the commands OneStory issues, then
OneStory with tools/loadgen, and prints every figure with its ratio to its baseline: the raw
Redis figure, the Node.js peer's reads for GetContext's Redis time, and tools/grpc_floor (gRPC's
own cost) for GetContext's calls/s, server CPU and latency.
Writes results.json, summary.txt and bench.png (gnuplot) into --out.

--cluster instead runs the OneStory steps on a single redis-server and on a local Redis Cluster
(3 primaries + 3 replicas) side by side, each behind its own onestory-server, and prints each
figure with its ratio cluster/single (results.json's "cluster" key, summary.txt).

Run through tools/bench.sh (which installs and builds first).
"""
import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Resp:
    """A minimal RESP client for the few commands the benchmark needs."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError("bad reply")

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def info(self, section):
        text = self.call("INFO", section).decode()
        return dict(l.split(":", 1) for l in text.splitlines() if ":" in l)


def monitor_words(line):
    """The quoted words of a MONITOR line, unescaped as Redis escaped them."""
    words, i = [], line.find('"')
    escapes = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b"}
    while 0 <= i < len(line):
        w, i = [], i + 1
        while i < len(line) and line[i] != '"':
            if line[i] == "\\" and i + 1 < len(line):
                i += 1
                if line[i] == "x":
                    w.append(chr(int(line[i + 1:i + 3], 16)))
                    i += 2
                else:
                    w.append(escapes.get(line[i], line[i]))
            else:
                w.append(line[i])
            i += 1
        words.append("".join(w))
        i = line.find('"', i + 1)
    return words


def redis_benchmark(port, clients, n, args, pipeline=1, keyspace=100000):
    cmd = ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(n), "-r",
           str(keyspace), "-P", str(pipeline), "--csv"] + args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    row = [l for l in out.splitlines() if l and not l.startswith('"test"')][-1]
    # The command (first column) may hold commas; the last seven columns are numbers.
    rps, _avg, _min, p50, _p95, p99, _max = (float(v.strip('"')) for v in row.rsplit(",", 7)[1:])
    return {"ops_per_s": rps, "p50_ms": p50, "p99_ms": p99}


def wait_for_port(proc, port_file, log, what):
    """The "127.0.0.1:<port>" a server started with --port_file=port_file wrote there; exits
    showing the end of its log when it stops first."""
    for _ in range(300):
        if os.path.exists(port_file) and open(port_file).read().strip():
            return "127.0.0.1:" + open(port_file).read().strip()
        if proc.poll() is not None:
            sys.exit("%s exited with %d; see its log:\n%s" % (
                what, proc.returncode, open(log).read()[-3000:]))
        time.sleep(0.05)
    sys.exit("%s wrote no port in 15 s; see its log:\n%s" % (what, open(log).read()[-3000:]))


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="onestory-bench-")
        self.procs = []
        self.results = {"machine": {"cores": os.cpu_count()}, "runs": [], "comparisons": []}
        self.loadgen = os.path.join(args.build_dir, "tools", "loadgen")
        self.server_bin = os.path.join(args.build_dir, "services", "onestory-server")

    def start_server(self):
        self.server, self.target = self.launch_server("--redis=127.0.0.1:%d" % self.redis_port)

    def launch_server(self, redis_flag, name="server"):
        """Starts an onestory-server on `redis_flag` (--redis=... or --redis_cluster=...);
        returns the process and its gRPC address."""
        # One key for the bench tenant (the server always requires keys), without the default
        # rate limit: the benchmark measures the server, not the limit.
        keys = os.path.join(self.tmp, "api_keys")
        if not os.path.exists(keys):
            self.api_key = "os_bench_" + secrets.token_hex(24)
            with open(keys, "w") as f:
                f.write("bench bench timeline.write,timeline.read,context.read.agent sha256:%s "
                        "rate=unlimited\n" % hashlib.sha256(self.api_key.encode()).hexdigest())
        port_file = os.path.join(self.tmp, name + ".port")
        if os.path.exists(port_file):
            os.remove(port_file)
        server = subprocess.Popen(
            [self.server_bin, redis_flag, "--listen=127.0.0.1:0",
             "--port_file=" + port_file, "--log_level=warning", "--api_keys_file=" + keys],
            stderr=open(os.path.join(self.tmp, name + ".log"), "a"))
        self.procs.append(server)
        return server, wait_for_port(server, port_file, os.path.join(self.tmp, name + ".log"),
                                     "onestory-server (%s)" % redis_flag)

    def restart_server(self):
        """A fresh process, so its memory growth is the next step's alone."""
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=30)
        self.procs.remove(self.server)
        self.start_server()

    def start(self):
        self.redis_port = free_port()
        self.redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.tmp, "--logfile", os.path.join(self.tmp, "redis.log")])
        self.procs.append(self.redis_proc)
        for _ in range(100):
            try:
                self.redis = Resp(self.redis_port)
                self.redis.call("PING")
                break
            except OSError:
                time.sleep(0.05)
        self.start_server()

    def stop(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_loadgen(self, scenario, label="", **flags):
        out = os.path.join(self.tmp, "loadgen.json")
        if os.path.exists(out):
            os.remove(out)
        a = self.args
        base = {"target": self.target, "scenario": scenario, "duration_s": a.duration,
                "warmup_s": a.warmup, "customers": a.customers, "concurrency": a.concurrency,
                "body_bytes": a.body_bytes, "json": out, "label": label,
                "tenant": "bench", "api_key": self.api_key}
        base.update(flags)
        cmd = [self.loadgen] + ["--%s=%s" % kv for kv in base.items()]
        # loadgen's stderr (gRPC's warnings under overload) goes to a file, shown when it fails.
        # A load generator that crashes (seen once, SIGABRT, not reproduced) is run once more,
        # loudly, so one crash of the client does not hide every other figure.
        err = os.path.join(self.tmp, "loadgen.stderr")
        for attempt in (1, 2):
            with open(err, "w") as f:
                rc = subprocess.run(cmd, stderr=f).returncode
            if rc == 0:
                break
            with open(err) as f:
                tail = f.read().splitlines()[-20:]
            print("loadgen %s %s failed (exit %d); its last stderr lines:\n  %s" % (
                scenario, label, rc, "\n  ".join(tail)), flush=True)
            if attempt == 2:
                raise subprocess.CalledProcessError(rc, cmd)
            print("running it once more", flush=True)
        if scenario == "populate":
            return None
        r = json.loads(open(out).read().splitlines()[-1])
        self.results["runs"].append(r)
        return r

    def costs(self):
        """loadgen flags that report the server's and redis-server's CPU time and context
        switches per call over the measured seconds."""
        return {"server_pid": self.server.pid, "redis_pid": self.redis_proc.pid}

    def compare(self, name, ours, raw, unit, target=None):
        ratio = ours / raw if raw else 0
        row = {"name": name, "onestory": ours, "baseline": raw, "unit": unit, "ratio": ratio}
        if target is not None:
            row["target_ratio"] = target
            row["met"] = ratio >= target
        self.results["comparisons"].append(row)

    def check(self, name, value, limit, unit):
        self.results["comparisons"].append(
            {"name": name, "onestory": value, "unit": unit, "limit": limit, "met": value <= limit})

    def server_rss_kb(self):
        for line in open("/proc/%d/status" % self.server.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def main(self):
        a = self.args
        c = a.concurrency
        n = a.redis_requests
        print("OneStory benchmark: redis %d, onestory %s, %d cores, concurrency %d" %
              (self.redis_port, self.target, os.cpu_count(), c), flush=True)

        # The dataset: customers x events, appended through OneStory. Its memory is compared
        # with bare XADDs of the same stored bytes into as many streams.
        mem0 = int(self.redis.info("memory")["used_memory"])
        self.run_loadgen("populate", events_per_customer=a.events)
        mem1 = int(self.redis.info("memory")["used_memory"])
        key = next(k for k in self.redis.call("KEYS", "os:{bench:c:*}:tl"))
        entry = self.redis.call("XRANGE", key, "-", "+", "COUNT", "1")[0]
        blob = entry[1][1]
        events = a.customers * a.events
        self.redis.call("EVAL", "for s = 1, tonumber(ARGV[1]) do for i = 1, tonumber(ARGV[2]) do "
                        "redis.call('XADD', 'raw:' .. s, '*', 'e', ARGV[3]) end end return 1",
                        0, a.customers, a.events, blob)
        mem2 = int(self.redis.info("memory")["used_memory"])
        ours_b, raw_b = (mem1 - mem0) / events, (mem2 - mem1) / events
        self.results["memory"] = {"events": events, "event_bytes": len(blob),
                                  "onestory_bytes_per_event": ours_b, "raw_xadd_bytes_per_event": raw_b}
        self.results["comparisons"].append(
            {"name": "Redis memory per stored event", "onestory": ours_b, "baseline": raw_b,
             "unit": "bytes", "ratio": ours_b / raw_b, "limit_ratio": 1.25,
             "met": ours_b / raw_b <= 1.25})
        self.redis.call("EVAL", "for s = 1, tonumber(ARGV[1]) do redis.call('DEL', 'raw:' .. s) end"
                        " return 1", 0, a.customers)
        payload = blob.decode("latin-1")

        # 1. Append, one event per call, at saturation vs XADD at the same concurrency. Redis's
        # own time per command (commandstats) shows how much of the gap is Redis-side work.
        self.redis.call("CONFIG", "RESETSTAT")
        raw = redis_benchmark(self.redis_port, c, n, ["XADD", "raw:{__rand_int__}", "*", "e", payload])
        xadd_stats = self.redis.info("commandstats").get("cmdstat_xadd", "")
        self.redis.call("CONFIG", "RESETSTAT")
        ours = self.run_loadgen("append", "saturation", **self.costs())
        self.results["redis_time_per_command"] = {
            "raw_xadd": xadd_stats,
            "onestory_append_function": self.redis.info("commandstats").get("cmdstat_fcall", "")}
        append_peak = ours["ok_per_s"]
        self.compare("Append 1 event/call, saturation (calls/s vs XADD/s)", ours["ok_per_s"],
                     raw["ops_per_s"], "ops/s", 0.6)

        self.append_redis_time()

        # 2. Batched ingest vs pipelined XADD (-P 16).
        raw = redis_benchmark(self.redis_port, c, n * 4,
                              ["XADD", "raw:{__rand_int__}", "*", "e", payload], pipeline=16)
        ours = self.run_loadgen("append_batch", "saturation", batch=16, concurrency=max(4, c // 4))
        self.compare("Append batches of 16 (events/s vs pipelined XADD/s, -P 16)",
                     ours["events_per_s"], raw["ops_per_s"], "events/s", 0.5)
        self.redis.call("EVAL", "local ks = redis.call('KEYS', 'raw:*') for _, k in ipairs(ks) do "
                        "redis.call('DEL', k) end return #ks", 0)

        # 3. GetContext on the populated dataset vs the same reads as one EVAL on one customer.
        cid = key.decode()[len("os:{bench:c:"):-len("}:tl")]
        k = "os:{bench:c:%s}" % cid
        script = ("local p = redis.call('HGETALL', KEYS[1]) return {p, redis.call('HGETALL', KEYS[2]),"
                  " redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', ARGV[2]),"
                  " redis.call('HGETALL', KEYS[4]), redis.call('XLEN', KEYS[3])}")
        raw = redis_benchmark(self.redis_port, c, n // 2, ["EVAL", script, "4", k + ":p", k + ":ids",
                                                             k + ":tl", k + ":cv", cid, "20"])
        self.redis.call("CONFIG", "RESETSTAT")
        sat = self.run_loadgen("get_context", "saturation", **self.costs())
        stats = self.redis.info("commandstats")
        self.compare("GetContext, saturation (calls/s vs the same reads in one EVAL)",
                     sat["ok_per_s"], raw["ops_per_s"], "ops/s")
        self.check("Server CPU per GetContext, saturation", sat["server_cpu_us_per_call"], 100,
                   "usec")
        self.get_context_redis_time(stats, sat, k)
        half = self.run_loadgen("get_context", "50% of saturation", rate=sat["ok_per_s"] / 2,
                                **self.costs())
        self.check("GetContext p50 at half of saturation", half["p50_ms"], 0.5, "ms")
        self.check("GetContext p99 at half of saturation", half["p99_ms"], 2.0, "ms")
        self.grpc_floor(sat, half)

        # 4. Offered-load sweeps (open loop) for the chart.
        for scenario, peak in (("append", append_peak),
                               ("get_context", sat["ok_per_s"])):
            for frac in a.sweep:
                self.run_loadgen(scenario, "sweep", rate=peak * frac, **self.costs())

        # 5. Watch propagation, with 1k (and 10k) open watchers; memory per watcher.
        for watchers in a.watchers:
            self.restart_server()
            rss0 = self.server_rss_kb()
            clients0 = int(self.redis.info("clients")["connected_clients"])
            peak = {"rss": rss0, "clients": clients0}
            done = threading.Event()

            def sample():
                r = Resp(self.redis_port)
                while not done.wait(0.2):
                    peak["rss"] = max(peak["rss"], self.server_rss_kb())
                    peak["clients"] = max(peak["clients"],
                                          int(r.info("clients")["connected_clients"]))
            t = threading.Thread(target=sample)
            t.start()
            r = self.run_loadgen("watch", "%d watchers" % watchers, watchers=watchers,
                                 customers=max(a.customers, watchers), rate=a.watch_rate)
            done.set()
            t.join()
            self.check("Watch propagation p99, %d watchers" % watchers, r["p99_ms"], 2.0, "ms")
            # The sampler's own connection is one of the peak clients. The growth includes what
            # the appends themselves allocate, so it is an upper bound per watcher.
            per_watcher = (peak["rss"] - rss0) * 1024 / watchers
            self.results.setdefault("watch", []).append(
                {"watchers": watchers, "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                 "p999_ms": r["p999_ms"], "server_rss_growth_bytes_per_watcher": per_watcher,
                 "extra_redis_connections": peak["clients"] - clients0 - 1})
            self.results["comparisons"].append(
                {"name": "Server memory per open watcher, %d watchers" % watchers,
                 "onestory": per_watcher, "unit": "bytes", "limit": 65536,
                 "met": per_watcher <= 65536})
            self.results["comparisons"].append(
                {"name": "Redis connections opened for %d watchers" % watchers,
                 "onestory": peak["clients"] - clients0 - 1, "unit": "conns", "limit": 4,
                 "met": peak["clients"] - clients0 - 1 <= 4})

        # 6. A contact-center mix: 60% GetContext, 35% Append, 5% List, with watches open.
        mix = self.run_loadgen("mix", "saturation", watchers=min(200, a.customers))
        self.run_loadgen("mix", "50% of saturation", watchers=min(200, a.customers),
                         rate=mix["ok_per_s"] / 2)

    def grpc_floor(self, sat, half):
        """The same GetContext load against tools/grpc_floor: a gRPC callback-API server that
        answers from memory with a response of the same size, from a thread of its own as
        onestory-server answers from its Redis event-loop thread. Its CPU per call is what gRPC
        and the hand-off cost on this machine, with no Redis and no work of OneStory's; the rows
        put OneStory's figures next to it (ratio = OneStory / floor)."""
        port_file = os.path.join(self.tmp, "floor.port")
        log = os.path.join(self.tmp, "floor.log")
        # As many events as OneStory's GetContext returns (at most its default of 20).
        floor = subprocess.Popen(
            [os.path.join(self.args.build_dir, "tools", "grpc_floor"), "--port_file=" + port_file,
             "--finish_on=thread", "--events=%d" % min(self.args.events, 20),
             "--body_bytes=%d" % self.args.body_bytes],
            stderr=open(log, "a"))
        self.procs.append(floor)
        target = wait_for_port(floor, port_file, log, "grpc_floor")
        fsat = self.run_loadgen("get_context", "floor, saturation", target=target,
                                server_pid=floor.pid)
        fhalf = self.run_loadgen("get_context", "floor, OneStory 50%", target=target,
                                 rate=half["offered_rate"], server_pid=floor.pid)
        # Stopped here (self.stop() would stop it too, with the rest, when a step fails).
        floor.send_signal(signal.SIGTERM)
        floor.wait(timeout=15)
        self.procs.remove(floor)
        for name, ours, base, field, unit in (
                ("GetContext calls/s vs the gRPC floor's, saturation", sat, fsat, "ok_per_s",
                 "calls/s"),
                ("Server CPU per GetContext vs the gRPC floor's, saturation", sat, fsat,
                 "server_cpu_us_per_call", "usec"),
                ("Server CPU per GetContext vs the gRPC floor's, same half load", half, fhalf,
                 "server_cpu_us_per_call", "usec"),
                ("GetContext p50 vs the gRPC floor's, same half load", half, fhalf, "p50_ms",
                 "ms"),
                ("GetContext p99 vs the gRPC floor's, same half load", half, fhalf, "p99_ms",
                 "ms")):
            self.compare(name, ours[field], base[field], unit)

    def command_time(self, command):
        """(calls, usec) of `command` in INFO commandstats since the last CONFIG RESETSTAT."""
        line = self.redis.info("commandstats").get("cmdstat_" + command, "")
        if not line:
            return 0, 0.0
        fields = dict(f.split("=") for f in line.split(","))
        return int(fields["calls"]), float(fields["usec"])

    def capture_append(self):
        """The command onestory-server sends Redis for one single-event Append (seen with
        MONITOR): its argv, and the position of its event id there."""
        self.run_loadgen("populate", customers=1, events_per_customer=1)
        mon = Resp(self.redis_port)
        mon.sock.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
        mon._line()
        self.run_loadgen("append", "capture", customers=1, rate=20, duration_s=0.5, warmup_s=0)
        self.redis.call("ECHO", "capture-end")
        found = None
        while True:
            words = monitor_words(mon._line().decode("latin-1"))
            if words[:2] == ["ECHO", "capture-end"]:
                break
            if not found and words and (
                    (words[0] == "FCALL" and words[1].startswith("timeline_append_")) or
                    (words[0] == "EVALSHA" and words[2] == "18")):
                found = words
        mon.sock.close()
        # Its customer's dedup hash (os:{<tenant>:c:<id>}:dd, libs/keys) holds the event id.
        keys = found[3:3 + int(found[2])]
        dedup = next(k for k in keys if k.endswith(":dd"))
        stored = {k.decode("latin-1") for k in self.redis.call("HKEYS", dedup)}
        eid = next(i for i, w in enumerate(found) if w in stored)
        return found, eid, next(k for k in keys if k.endswith(":tl"))

    def append_redis_time(self, appends=3000):
        """Redis time per single-event Append: the command onestory-server sends for one Append
        to one customer (the append function's FCALL; before it, the EVALSHA of the append
        script), sent `appends` times with a new event id each; against `appends` bare XADDs of
        the same stored bytes, on the same redis-server in the same run, in A B B A quarters
        (INFO commandstats after CONFIG RESETSTAT: usec per call). Replayed rather than timed through the server,
        because an Append also runs other commands and scripts commandstats would add in."""
        argv, eid, timeline = self.capture_append()
        command = argv[0].lower()
        blob = self.redis.call("XRANGE", timeline, "-", "+", "COUNT", "1")[0][1][1]
        # In A B B A rounds of a quarter each, so neither side gains from a quieter moment of
        # the machine (a bare XADD's few µs move by half between runs here).
        calls = xcalls = 0
        usec = xusec = 0.0
        sent = 0
        for side in ("ours", "raw", "raw", "ours"):
            self.redis.call("CONFIG", "RESETSTAT")
            for _ in range(appends // 4):
                if side == "ours":
                    call = list(argv)
                    call[eid] = "%s-r%d" % (argv[eid], sent)
                    sent += 1
                    self.redis.call(*[a.encode("latin-1") for a in call])
                else:
                    self.redis.call("XADD", "raw:one", "*", "e", blob)
            c, u = self.command_time(command if side == "ours" else "xadd")
            if side == "ours":
                calls, usec = calls + c, usec + u
            else:
                xcalls, xusec = xcalls + c, xusec + u
        self.redis.call("DEL", "raw:one")
        ours, raw = usec / max(calls, 1), xusec / max(xcalls, 1)
        self.results.setdefault("redis_time_per_command", {}).update({
            "append_one_customer_" + command: "calls=%d,usec_per_call=%.2f" % (calls, ours),
            "append_one_customer_raw_xadd": "calls=%d,usec_per_call=%.2f" % (xcalls, raw)})
        self.results["comparisons"].append(
            {"name": "Append's Redis time per call (%s vs bare XADD)" % command.upper(),
             "onestory": ours, "baseline": raw, "unit": "usec", "ratio": ours / raw if raw else 0,
             "limit_ratio": 12, "met": raw > 0 and ours / raw <= 12})

    # The commands GetContext's snapshot runs inside its MULTI/EXEC (libs/context): EXEC's time
    # includes theirs, so they are not added again. (A bare XREVRANGE also serves a reader who
    # needs older events than the snapshot read: not in this benchmark's data.)
    SNAPSHOT_COMMANDS = ("hgetall", "xlen", "zcount", "xrevrange")

    def get_context_redis_time(self, stats, sat, k):
        """Redis time per GetContext in the saturation step, from INFO commandstats: every
        command the server sent (the snapshot's EXEC, the open conversations' HMGET, the audit
        entry's XADD and its trim, ...) over the calls made (warm-up included, so approximate);
        next to the Node.js peer's reads for its GetContext measured on one customer."""
        api_calls = sat["ok_per_s"] * (sat["seconds"] + self.args.warmup)
        per_command = {}
        for name, line in stats.items():
            if not name.startswith("cmdstat_"):
                continue
            command = name[len("cmdstat_"):]
            if command in self.SNAPSHOT_COMMANDS or command.split("|")[0] in ("config", "info"):
                continue
            fields = dict(f.split("=") for f in line.split(","))
            per_command[command] = float(fields["usec"]) / api_calls if api_calls else 0.0
        ours = sum(per_command.values())
        self.results["redis_time_per_command"]["get_context_per_call"] = ", ".join(
            "%s=%.2f" % kv for kv in sorted(per_command.items(), key=lambda kv: -kv[1]))
        # The Node.js peer's reads for its GetContext (../shared/peer-node/server.js): one MULTI
        # of HGETALL profile, HGETALL identifiers, XREVRANGE of 20, HGETALL conversations, XLEN,
        # sent `rounds` times on one connection; MULTI's and EXEC's time per round (EXEC's
        # includes the commands it runs).
        rounds = 3000
        self.redis.call("CONFIG", "RESETSTAT")
        for _ in range(rounds):
            self.redis.call("MULTI")
            self.redis.call("HGETALL", k + ":p")
            self.redis.call("HGETALL", k + ":ids")
            self.redis.call("XREVRANGE", k + ":tl", "+", "-", "COUNT", "20")
            self.redis.call("HGETALL", k + ":cv")
            self.redis.call("XLEN", k + ":tl")
            self.redis.call("EXEC")
        peer = sum(self.command_time(c)[1] for c in ("multi", "exec")) / rounds
        self.results["redis_time_per_command"]["get_context_peer_reads_one_customer"] = \
            "calls=%d,usec_per_call=%.2f" % (rounds, peer)
        self.compare("GetContext's Redis time per call (all its commands vs the Node peer's MULTI)",
                     ours, peer, "usec")

    def report(self):
        lines = []
        for name, stats in self.results.get("redis_time_per_command", {}).items():
            lines.append("redis time per command, %-40s %s" % (name + ":", stats))
        for row in self.results["comparisons"]:
            if "baseline" in row:
                s = "%-62s %12.2f vs %12.2f %-8s ratio %5.2f" % (
                    row["name"], row["onestory"], row["baseline"], row["unit"], row["ratio"])
            else:
                s = "%-62s %12.3f %-8s (limit %g)" % (row["name"], row["onestory"], row["unit"],
                                                      row["limit"])
            if "target_ratio" in row:
                s += "  target >= %.2f: %s" % (row["target_ratio"], "met" if row["met"] else "MISSED")
            elif "limit_ratio" in row:
                s += "  target <= %.2f: %s" % (row["limit_ratio"], "met" if row["met"] else "MISSED")
            elif "limit" in row:
                s += "  %s" % ("met" if row["met"] else "MISSED")
            lines.append(s)
        lines.append("")
        # Per call, where measured (loadgen --server_pid/--redis_pid): CPU microseconds of the
        # server (and of them, in the kernel: system calls and wake-ups), of redis-server and of
        # loadgen itself, and the server's context switches; then, where the server's was measured,
        # the cores they kept busy together (CPU per call x calls/s): on a machine they share, the
        # latency is measured that loaded.
        lines.append("%-12s %-20s %10s %10s %9s %9s %9s %8s %8s %8s %8s %8s %6s" % (
            "scenario", "label", "offered/s", "ok/s", "p50 ms", "p99 ms", "p99.9 ms", "srv us",
            "srv sys", "srv cs", "redis us", "lg us", "cores"))
        cpu = ("server_cpu_us_per_call", "redis_cpu_us_per_call", "loadgen_cpu_us_per_call")
        for r in self.results["runs"]:
            cost = "".join(" %8.1f" % r[f] if f in r else " %8s" % "-" for f in (
                "server_cpu_us_per_call", "server_system_us_per_call", "server_switches_per_call",
                "redis_cpu_us_per_call", "loadgen_cpu_us_per_call"))
            cost += (" %6.2f" % (sum(r.get(f, 0.0) for f in cpu) * r["ok_per_s"] / 1e6)
                     if cpu[0] in r else " %6s" % "-")
            lines.append("%-12s %-20s %10.0f %10.0f %9.3f %9.3f %9.3f%s" % (
                r["scenario"], r["label"][:20], r["offered_rate"], r["ok_per_s"], r["p50_ms"],
                r["p99_ms"], r["p999_ms"], cost))
        text = "\n".join(lines)
        print("\n" + text)
        os.makedirs(self.args.out, exist_ok=True)
        open(os.path.join(self.args.out, "summary.txt"), "w").write(text + "\n")
        json.dump(self.results, open(os.path.join(self.args.out, "results.json"), "w"), indent=1)
        self.chart()

    def chart(self):
        if not shutil.which("gnuplot"):
            print("gnuplot not found: no chart (apt-get install gnuplot-nox)")
            return
        out = self.args.out
        for scenario in ("append", "get_context"):
            rows = [r for r in self.results["runs"] if r["scenario"] == scenario and r["label"] == "sweep"]
            with open(os.path.join(out, scenario + ".dat"), "w") as f:
                for r in sorted(rows, key=lambda r: r["offered_rate"]):
                    f.write("%f %f %f %f %f\n" % (r["offered_rate"], r["ok_per_s"], r["p50_ms"],
                                                  r["p99_ms"], r["p999_ms"]))
        gp = """
set terminal pngcairo size 1400,900 noenhanced
set output '%(out)s/bench.png'
set multiplot layout 2,2 title 'OneStory vs offered load (open loop)'
set grid
set key left top
set xlabel 'offered calls/s'
set title 'Append (1 event/call): throughput'
set ylabel 'completed calls/s'
plot '%(out)s/append.dat' u 1:2 w lp t 'achieved', '' u 1:1 w l dt 2 t 'offered'
set title 'Append: latency'
set ylabel 'ms'
set logscale y
plot '%(out)s/append.dat' u 1:3 w lp t 'p50', '' u 1:4 w lp t 'p99', '' u 1:5 w lp t 'p99.9'
unset logscale y
set title 'GetContext: throughput'
set ylabel 'completed calls/s'
plot '%(out)s/get_context.dat' u 1:2 w lp t 'achieved', '' u 1:1 w l dt 2 t 'offered'
set title 'GetContext: latency'
set ylabel 'ms'
set logscale y
plot '%(out)s/get_context.dat' u 1:3 w lp t 'p50', '' u 1:4 w lp t 'p99', '' u 1:5 w lp t 'p99.9'
unset multiplot
""" % {"out": out}
        subprocess.run(["gnuplot"], input=gp, text=True, check=False)
        print("chart: %s/bench.png" % out)


CLUSTER_NOTE = (
    "On this machine (%d cores) the cluster's 6 redis-servers share the same cores as the single\n"
    "redis-server, both onestory-servers and the load generator: these figures show what cluster\n"
    "routing costs (each call sent to its slot's primary over per-primary connections, the\n"
    "outbox's extra hops, 6 processes instead of 1 competing for the CPU), not scale-out.")


class ClusterBench(Bench):
    """The same loadgen steps on a single redis-server and on a local Redis Cluster (3 primaries,
    3 replicas), each behind its own onestory-server, in one run; every figure with its ratio
    cluster/single."""

    NODES = 6

    def start(self):
        super().start()
        self.start_cluster()
        self.cluster_server, self.cluster_target = self.launch_server(
            "--redis_cluster=" + ",".join("127.0.0.1:%d" % p for p in self.cluster_ports),
            "cluster-server")

    def start_node(self, port, bus_port):
        """One cluster-mode redis-server; None when it exits (its port was taken meanwhile)."""
        d = os.path.join(self.tmp, "node-%d" % port)
        os.makedirs(d, exist_ok=True)
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--cluster-port", str(bus_port),
             "--bind", "127.0.0.1", "--dir", d, "--cluster-enabled", "yes",
             "--cluster-config-file", os.path.join(self.tmp, "nodes-%d.conf" % port),
             "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0",
             "--appendonly", "no", "--save", "", "--daemonize", "no",
             "--logfile", os.path.join(d, "redis.log")])
        give_up = time.time() + 5
        while time.time() < give_up:
            if proc.poll() is not None:
                return None
            try:
                Resp(port).call("PING")
                return proc
            except (OSError, RuntimeError):
                time.sleep(0.02)
        proc.kill()
        proc.wait()
        return None

    def start_cluster(self):
        """6 nodes on free loopback ports (each with a cluster bus port of its own, since port +
        10000 need not be free), `redis-cli --cluster create` with one replica per primary, then
        waits until every node agrees the cluster is healthy; as tests/testing/
        redis_cluster_for_test.cc does."""
        started = time.time()
        self.cluster_ports, taken = [], set()
        for _ in range(self.NODES):
            proc = None
            for _attempt in range(5):
                port, bus = free_port(), free_port()
                while port == bus or port in taken or bus in taken:
                    port, bus = free_port(), free_port()
                proc = self.start_node(port, bus)
                if proc:
                    break
            if not proc:
                sys.exit("could not start redis-server in cluster mode")
            self.procs.append(proc)
            self.cluster_ports.append(port)
            taken.update((port, bus))
        log = os.path.join(self.tmp, "cluster-create.log")
        with open(log, "w") as f:
            rc = subprocess.run(["redis-cli", "--cluster", "create"] +
                                ["127.0.0.1:%d" % p for p in self.cluster_ports] +
                                ["--cluster-replicas", "1", "--cluster-yes"],
                                stdout=f, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            sys.exit("redis-cli --cluster create failed:\n" + open(log).read())
        self.wait_cluster_healthy(30)
        self.primaries = [p for p in self.cluster_ports
                          if Resp(p).info("replication")["role"] == "master"]
        print("cluster: 3 primaries + 3 replicas ready in %.1f s (primaries %s)" % (
            time.time() - started, " ".join(map(str, self.primaries))), flush=True)

    def wait_cluster_healthy(self, timeout_s):
        """Every node says cluster_state:ok with all 16384 slots assigned, all nodes name the
        same primary for every slot range, and every replica is in sync with its primary."""
        give_up, last = time.time() + timeout_s, ""
        while time.time() < give_up:
            ok, first_map = True, None
            for p in self.cluster_ports:
                r = Resp(p)
                info = dict(l.split(":", 1) for l in r.call("CLUSTER", "INFO").decode().splitlines()
                            if ":" in l)
                if (info.get("cluster_state") != "ok" or
                        info.get("cluster_slots_assigned") != "16384"):
                    ok, last = False, "%d: cluster_state %s" % (p, info.get("cluster_state"))
                    break
                owners = sorted((s[0], s[1], s[2][1]) for s in r.call("CLUSTER", "SLOTS"))
                first_map = first_map or owners
                if owners != first_map:
                    ok, last = False, "%d: a different slot map" % p
                    break
                repl = r.info("replication")
                if repl["role"] == "slave" and (repl.get("master_link_status") != "up" or
                                                repl.get("master_sync_in_progress") != "0"):
                    ok, last = False, "%d: replica not in sync" % p
                    break
            if ok:
                return
            time.sleep(0.05)
        sys.exit("cluster not healthy in time: " + last)

    def sides(self, step):
        """(name, gRPC target, redis ports to read commandstats from), alternating which side
        goes first from step to step so neither always runs on a machine the other just
        warmed (or loaded)."""
        both = [("single", self.target, [self.redis_port]),
                ("cluster", self.cluster_target, self.primaries)]
        return both if step % 2 == 0 else both[::-1]

    @staticmethod
    def reset_stats(ports):
        for p in ports:
            Resp(p).call("CONFIG", "RESETSTAT")

    @staticmethod
    def function_stats(ports):
        """FCALL, FCALL_RO and EXEC in INFO commandstats, calls and usec summed over `ports`."""
        out = {}
        for command in ("fcall", "fcall_ro", "exec"):
            calls, usec = 0, 0.0
            for p in ports:
                line = Resp(p).info("commandstats").get("cmdstat_" + command, "")
                if line:
                    fields = dict(f.split("=") for f in line.split(","))
                    calls += int(fields["calls"])
                    usec += float(fields["usec"])
            out[command] = {"calls": calls, "usec": usec,
                            "usec_per_call": usec / calls if calls else 0.0}
        return out

    @staticmethod
    def publish_latency(sub_port, pub_ports, n, rate=1000):
        """Raw PUBLISH to SUBSCRIBE arrival on `sub_port`, `n` messages at `rate`/s sent round
        robin through `pub_ports`: (p50, p99) in ms."""
        sub = Resp(sub_port)
        sub.call("SUBSCRIBE", "bench:publish")
        lat = []

        def read():
            while len(lat) < n:
                sent = int(sub._read()[2])
                lat.append(time.perf_counter_ns() - sent)
        t = threading.Thread(target=read)
        t.start()
        pubs = [Resp(p) for p in pub_ports]
        t0 = time.perf_counter()
        for i in range(n):
            wait = t0 + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            pubs[i % len(pubs)].call("PUBLISH", "bench:publish", time.perf_counter_ns())
        t.join(timeout=30)
        sub.sock.close()
        lat.sort()
        return lat[len(lat) // 2] / 1e6, lat[int(len(lat) * 0.99)] / 1e6

    def main(self):
        a = self.args
        header = ("OneStory benchmark, single redis-server vs Redis Cluster (3 primaries + 3 "
                  "replicas): single redis %d behind %s, cluster %s behind %s, concurrency %d\n" %
                  (self.redis_port, self.target, ",".join(map(str, self.cluster_ports)),
                   self.cluster_target, a.concurrency) + CLUSTER_NOTE % os.cpu_count() +
                  "\nLoad average at the start: %.2f %.2f %.2f" % os.getloadavg())
        print(header + "\n", flush=True)
        c = self.results["cluster"] = {
            "note": CLUSTER_NOTE % os.cpu_count(), "cores": os.cpu_count(),
            "single_redis_port": self.redis_port, "cluster_ports": self.cluster_ports,
            "cluster_primaries": self.primaries,
            "dataset": {"customers": a.customers, "events_per_customer": a.events},
            "steps": [], "redis_time_per_command": {}, "loadavg_start": os.getloadavg()}
        self.header = header
        runs = {}  # (step, side) -> loadgen result

        def step(i, name, scenario, label, **flags):
            for side, target, ports in self.sides(i):
                print("%-8s " % side, end="", flush=True)  # loadgen prints the rest of the line
                self.reset_stats(ports)
                r = self.run_loadgen(scenario, "%s %s" % (side, label), target=target, **flags)
                r["side"] = side
                r["redis_functions"] = self.function_stats(ports)
                runs[(name, side)] = r

        def figure(name, step_name, field, unit):
            s, k = runs[(step_name, "single")][field], runs[(step_name, "cluster")][field]
            c["steps"].append({"name": name, "single": s, "cluster": k, "unit": unit,
                               "ratio": k / s if s else 0})

        # The dataset, appended through each side's onestory-server (batches of 50 per call,
        # after a Resolve of every customer); the time includes the Resolves.
        for side, target, _ in self.sides(0):
            t0 = time.time()
            self.run_loadgen("populate", side, target=target, events_per_customer=a.events)
            took = time.time() - t0
            c.setdefault("populate", {})[side] = {"seconds": took,
                                                  "events_per_s": a.customers * a.events / took}
            print("%-8s populate     %d customers x %d events in %.1f s" % (
                side, a.customers, a.events, took), flush=True)
        p = c["populate"]
        c["steps"].append({"name": "Populate (Resolve + Append batches of 50), wall clock",
                           "single": p["single"]["events_per_s"],
                           "cluster": p["cluster"]["events_per_s"], "unit": "events/s",
                           "ratio": p["cluster"]["events_per_s"] / p["single"]["events_per_s"]})

        step(1, "append", "append", "saturation")
        figure("Append 1 event/call, saturation", "append", "ok_per_s", "calls/s")
        figure("Append 1 event/call, p50", "append", "p50_ms", "ms")
        figure("Append 1 event/call, p99", "append", "p99_ms", "ms")

        step(2, "append_batch", "append_batch", "saturation", batch=16,
             concurrency=max(4, a.concurrency // 4))
        figure("Append batches of 16, saturation", "append_batch", "events_per_s", "events/s")
        figure("Append batches of 16, p99", "append_batch", "p99_ms", "ms")

        step(3, "get_context", "get_context", "saturation")
        figure("GetContext, saturation", "get_context", "ok_per_s", "calls/s")
        figure("GetContext, p50", "get_context", "p50_ms", "ms")
        figure("GetContext, p99", "get_context", "p99_ms", "ms")

        watchers = a.watchers[0]
        step(4, "watch", "watch", "%d watchers" % watchers, watchers=watchers,
             customers=max(a.customers, watchers), rate=a.watch_rate)
        figure("Watch propagation p50, %d watchers, %d appends/s" % (watchers, a.watch_rate),
               "watch", "p50_ms", "ms")
        figure("Watch propagation p99, %d watchers, %d appends/s" % (watchers, a.watch_rate),
               "watch", "p99_ms", "ms")

        # What Watch's path costs in Redis alone: onestory-server subscribes on the first seed
        # node; an Append's PUBLISH runs on its customer's primary, and a cluster forwards it to
        # every node over the cluster bus.
        seed = self.cluster_ports[0]
        n = int(a.watch_rate * (a.duration + a.warmup))
        single = self.publish_latency(self.redis_port, [self.redis_port], n, a.watch_rate)
        same = self.publish_latency(seed, [seed], n, a.watch_rate)
        other = self.publish_latency(seed, [p for p in self.primaries if p != seed], n,
                                     a.watch_rate)
        c["raw_publish_ms"] = {"single": single, "cluster_same_node": same,
                               "cluster_other_primary": other, "messages": n,
                               "rate": a.watch_rate}
        for i, q in enumerate(("p50", "p99")):
            c["steps"].append({"name": "Raw PUBLISH -> subscriber, %s (cluster: other primary)" % q,
                               "single": single[i], "cluster": other[i], "unit": "ms",
                               "ratio": other[i] / single[i] if single[i] else 0})
            c["steps"].append({"name": "Raw PUBLISH -> subscriber, %s (cluster: same node)" % q,
                               "single": single[i], "cluster": same[i], "unit": "ms",
                               "ratio": same[i] / single[i] if single[i] else 0})

        c["loadavg_end"] = os.getloadavg()
        self.header += "; at the end: %.2f %.2f %.2f" % c["loadavg_end"]
        # Redis's own time per function call in the Append steps and per snapshot (EXEC: the
        # MULTI of reads) in GetContext: on the cluster summed over its 3 primaries (replicas
        # receive the functions' effects, not the calls).
        for step_name, command in (("append", "fcall"), ("append_batch", "fcall"),
                                   ("get_context", "exec")):
            for side in ("single", "cluster"):
                r = runs[(step_name, side)]
                f = r["redis_functions"][command]
                # Calls per API call over the whole step (warm-up included), so approximate.
                api_calls = r["ok_per_s"] * (r["seconds"] + a.warmup)
                c["redis_time_per_command"]["%s_%s_%s" % (step_name, side, command)] = {
                    "calls": f["calls"], "usec_per_call": f["usec_per_call"],
                    "calls_per_api_call": f["calls"] / api_calls if api_calls else 0}
            s = c["redis_time_per_command"]["%s_single_%s" % (step_name, command)]
            k = c["redis_time_per_command"]["%s_cluster_%s" % (step_name, command)]
            c["steps"].append({
                "name": "%s: Redis usec per %s (cluster: 3 primaries)" % (
                    step_name, command.upper()),
                "single": s["usec_per_call"], "cluster": k["usec_per_call"], "unit": "usec",
                "ratio": k["usec_per_call"] / s["usec_per_call"] if s["usec_per_call"] else 0})

    def report(self):
        c = self.results["cluster"]
        lines = [self.header, "",
                 "%-62s %12s %12s %-9s %s" % ("", "single", "cluster", "", "cluster/single")]
        for row in c["steps"]:
            lines.append("%-62s %12.2f %12.2f %-9s %6.2f" % (
                row["name"], row["single"], row["cluster"], row["unit"], row["ratio"]))
        lines.append("")
        for name, f in c["redis_time_per_command"].items():
            lines.append("redis time per command, %-32s calls=%d usec_per_call=%.2f "
                         "(~%.2f per API call, warm-up included)" % (
                             name + ":", f["calls"], f["usec_per_call"], f["calls_per_api_call"]))
        lines.append("")
        lines.append("%-12s %-24s %10s %10s %9s %9s %9s %7s" % (
            "scenario", "label", "offered/s", "ok/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"))
        for r in self.results["runs"]:
            lines.append("%-12s %-24s %10.0f %10.0f %9.3f %9.3f %9.3f %7d" % (
                r["scenario"], r["label"][:24], r["offered_rate"], r["ok_per_s"], r["p50_ms"],
                r["p99_ms"], r["p999_ms"], r["errors"]))
        text = "\n".join(lines)
        print("\n" + text)
        os.makedirs(self.args.out, exist_ok=True)
        open(os.path.join(self.args.out, "summary.txt"), "w").write(text + "\n")
        json.dump(self.results, open(os.path.join(self.args.out, "results.json"), "w"), indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--quick", action="store_true", help="a few seconds per step, small dataset")
    ap.add_argument("--append-redis-time", action="store_true",
                    help="only Append's Redis time per call: 3,000 single-event Appends to one "
                    "customer vs as many bare XADDs of the same bytes (INFO commandstats)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless every step ran without a failed call (the smoke test)")
    ap.add_argument("--cluster", action="store_true",
                    help="a single redis-server and a local Redis Cluster (3 primaries + 3 "
                    "replicas) side by side, each behind its own onestory-server: populate, "
                    "Append, Append batches, GetContext and Watch on both, with the ratio "
                    "cluster/single (20,000 customers x 20 events; --quick: 200 x 10)")
    args = ap.parse_args()
    if args.cluster and args.append_redis_time:
        ap.error("--cluster and --append-redis-time: give one")
    if args.quick:
        args.duration, args.warmup, args.customers, args.events = 2, 0.5, 200, 10
        args.redis_requests, args.watchers, args.sweep = 20000, [100], [0.5, 1.0]
    elif args.cluster:
        args.duration, args.warmup, args.customers, args.events = 10, 2, 20000, 20
        args.redis_requests, args.watchers, args.sweep = 300000, [1000], []
    else:
        args.duration, args.warmup, args.customers, args.events = 10, 2, 100000, 50
        args.redis_requests, args.watchers, args.sweep = 300000, [1000, 10000], [0.2, 0.4, 0.6, 0.8, 1.0, 1.2]
    args.concurrency, args.body_bytes, args.watch_rate = 64, 200, 1000
    b = ClusterBench(args) if args.cluster else Bench(args)
    try:
        b.start()
        if args.append_redis_time:
            b.append_redis_time()
        else:
            b.main()
        b.report()
    finally:
        b.stop()
    if args.check:
        results = json.load(open(os.path.join(args.out, "results.json")))
        failed = [r for r in results["runs"] if r["errors"] or r["ok_per_s"] <= 0]
        if args.cluster:
            results["comparisons"] = results["cluster"]["steps"]
        if failed or len(results["comparisons"]) < 8:
            print("bench check: %d runs with failed calls, %d comparisons" %
                  (len(failed), len(results["comparisons"])))
            return 1
        print("bench check: %d runs, %d comparisons, no failed call" %
              (len(results["runs"]), len(results["comparisons"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
