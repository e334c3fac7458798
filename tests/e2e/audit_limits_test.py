#!/usr/bin/python3
"""OneStory end-to-end tests of the audit log's bounds and of what keeps it whole, through the
real onestory-server binary and real redis-servers:

- RateLimitTest: one key flooding the server with calls from many threads gets at most its
  burst plus its rate (the defaults, 400 and 200/s) of answers; the rest are RESOURCE_EXHAUSTED
  with the retry delay in the message, change nothing and write no audit entry. MEASURES the
  audit write rate the key reaches and prints it ("audit-limits: ..."). Limits set on a key's
  line in the key file (rate=, burst=, rate=unlimited) apply to that key only.
- AuditCapTest: with --audit_max_entries, a tenant's log stays near that many entries.
- AuditOutageTest: while Redis is down, 30 ExportCustomer calls are refused (UNAVAILABLE: their
  audit entry cannot be written first) and their final entries are held and written once
  Redis is back: none is lost.
- MaxMemoryTest: the embedded redis-server runs with maxmemory and noeviction; at the limit an
  Append fails with RESOURCE_EXHAUSTED saying Redis is out of memory, and an erase, whose audit
  entry cannot be written, is refused with UNAVAILABLE and erases nothing.

Run by ctest as e2e_audit_limits; alone:
  /usr/bin/python3 tests/e2e/audit_limits_test.py --build-dir build [-v]
"""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402
from harness import C, E2ECase, identity_pb2, timeline_pb2  # noqa: E402
from auth_test import AUDIT_BUCKETS, RedisConn, audit_log_key, xlen  # noqa: E402
from redis_fault_test import RedisOnPort  # noqa: E402

import grpc  # noqa: E402
from onestory.v1 import privacy_pb2, privacy_pb2_grpc  # noqa: E402

T = H.RPC_TIMEOUT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def report(text):
    sys.stdout.write("audit-limits: %s\n" % text)
    sys.stdout.flush()


class UnixRedisConn(RedisConn):
    """RedisConn over the embedded default's unix socket."""

    def __init__(self, path):  # noqa: super().__init__ would open a TCP connection
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.f = self.sock.makefile("rb")


def write_keys(lines):
    path = os.path.join(H.new_tmp_dir("keys-"), "api_keys")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def keyed_channel(target, key):
    class Key(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
        def add(self, d):
            return H._CallDetails(d, list(d.metadata or []) + [("authorization",
                                                                  "Bearer " + key)])

        def intercept_unary_unary(self, continuation, d, request):
            return continuation(self.add(d), request)

        def intercept_unary_stream(self, continuation, d, request):
            return continuation(self.add(d), request)

    return grpc.intercept_channel(grpc.insecure_channel(target), Key())


class RateLimitTest(E2ECase):

    def setUp(self):
        super().setUp()
        self.redis = H.Redis()
        self.db = RedisConn(self.redis.port)
        self.addCleanup(self.db.close)
        self.flood_key, self.own_key, self.free_key = (H._make_key() for _ in range(3))
        self.keys_path = write_keys([
            H.key_line("flood", self.tenant, H.ALL_SCOPES, self.flood_key),
            H.key_line("own", self.tenant, H.ALL_SCOPES, self.own_key) + " rate=5/s burst=10",
            H.key_line("free", self.tenant, H.ALL_SCOPES, self.free_key) + " rate=unlimited",
        ])
        # The limit deploy/ sets: 200 calls/s (the binary's default is none) with the default
        # burst of 400.
        self.server = H.Server(self.redis.address, extra_args=[
            "--api_keys_file=" + self.keys_path, "--api_key_rate=200"])
        self.addCleanup(self.server.stop)

    def resolve_stub(self, key):
        chan = keyed_channel(self.server.target, key)
        self.addCleanup(chan.close)
        return identity_pb2_grpc_stub(chan)

    def flood(self, key, seconds, threads=8):
        """Resolve with create from `threads` threads for `seconds`; returns (ok, limited,
        other codes, elapsed, a limited call's details)."""
        stub = self.resolve_stub(key)
        counts = {"ok": 0, "limited": 0, "other": {}}
        sample = []
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def run(i):
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                code, details = H.rpc_code(stub.Resolve, identity_pb2.ResolveRequest(
                    tenant=self.tenant, identifier=H.ident(
                        C.IDENTIFIER_TYPE_APP_USER_ID, "u-%d-%d" % (i, n % 50)),
                    create_if_missing=True))
                with lock:
                    if code == grpc.StatusCode.OK:
                        counts["ok"] += 1
                    elif code == EXHAUSTED:
                        counts["limited"] += 1
                        if not sample:
                            sample.append(details)
                    else:
                        counts["other"][code] = counts["other"].get(code, 0) + 1

        started = time.monotonic()
        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return (counts["ok"], counts["limited"], counts["other"], time.monotonic() - started,
                sample[0] if sample else "")

    def audit_len(self):
        return xlen(self.db, audit_log_key(self.tenant))

    def settled_audit_len(self):
        # Entries are written after the answer: wait until the count stops moving.
        last = -1
        while True:
            n = self.audit_len()
            if n == last:
                return n
            last = n
            time.sleep(0.3)

    def test_default_limit_bounds_the_calls_and_the_audit_entries_of_one_key(self):
        before = self.settled_audit_len()
        ok, limited, other, elapsed, details = self.flood(self.flood_key, 3.0)
        entries = self.settled_audit_len() - before
        report("one key, 8 threads for %.1f s at the default limit (200/s, burst 400): "
               "%d answered, %d refused with RESOURCE_EXHAUSTED; %d audit entries written "
               "= %.0f entries/s (the refused calls write none)" %
               (elapsed, ok, limited, entries, entries / elapsed))
        self.assertEqual(other, {})
        self.assertGreater(limited, 0, "the flood was never limited")
        self.assertIn("API key flood is over its rate limit", details)
        self.assertIn("retry in", details)
        self.assertIn("200 calls/s", details)
        # Burst plus refill (a little slack for the clock between client and server).
        self.assertLessEqual(ok, 400 + 200 * (elapsed + 0.5))
        self.assertGreaterEqual(ok, 400)
        # One entry per answered call, none for a refused one.
        self.assertEqual(entries, ok)

    def test_a_keys_own_limit_and_unlimited(self):
        stub = self.resolve_stub(self.own_key)
        codes = []
        for i in range(15):
            codes.append(H.rpc_code(stub.Resolve, identity_pb2.ResolveRequest(
                tenant=self.tenant, identifier=H.ident(C.IDENTIFIER_TYPE_APP_USER_ID, "own"),
                create_if_missing=True))[0])
        # burst=10 then about 5/s: the 15 quick calls get 10 (or 11) answers.
        answered = codes.count(grpc.StatusCode.OK)
        self.assertIn(answered, (10, 11), codes)
        self.assertEqual(codes.count(EXHAUSTED), 15 - answered, codes)
        time.sleep(0.5)  # refills 2.5 calls
        self.assertEqual(H.rpc_code(stub.Resolve, identity_pb2.ResolveRequest(
            tenant=self.tenant, identifier=H.ident(C.IDENTIFIER_TYPE_APP_USER_ID, "own"),
            create_if_missing=True))[0], grpc.StatusCode.OK)

        ok, limited, other, elapsed, _ = self.flood(self.free_key, 1.5)
        report("a key with rate=unlimited: %d calls in %.1f s (%.0f/s), %d refused" %
               (ok, elapsed, ok / elapsed, limited))
        self.assertEqual((limited, other), (0, {}))


def identity_pb2_grpc_stub(chan):
    from onestory.v1 import identity_pb2_grpc
    return identity_pb2_grpc.IdentityServiceStub(chan)


class AuditCapTest(E2ECase):

    def test_a_tenants_log_keeps_about_its_newest_max_entries(self):
        redis = H.Redis()
        db = RedisConn(redis.port)
        self.addCleanup(db.close)
        server = H.Server(redis.address, extra_args=["--audit_max_entries=1000"])
        self.addCleanup(server.stop)
        stub = server.identity()
        for i in range(3000):
            stub.Resolve(identity_pb2.ResolveRequest(
                tenant=self.tenant, identifier=H.ident(C.IDENTIFIER_TYPE_APP_USER_ID, "u%d" % i),
                create_if_missing=True), timeout=T)
        keys = audit_log_key(self.tenant).keys

        def added():
            total = 0
            for key in keys:
                if db.cmd("EXISTS", key):
                    info = db.cmd("XINFO", "STREAM", key)
                    total += dict(zip(info[::2], info[1::2]))[b"entries-added"]
            return total

        # Entries are written after the answers.
        H.wait_until(lambda: added() >= 3000, 10.0, what="3000 entries added")
        lengths = [db.cmd("XLEN", key) for key in keys]
        report("--audit_max_entries=1000, 3000 calls: the log holds %d entries (%s per bucket)" %
               (sum(lengths), ", ".join(str(n) for n in lengths)))
        # Each of the 16 buckets keeps its share, 1000 / 16 rounded up; MAXLEN ~ trims whole
        # stream nodes (100 entries each by default). Every bucket got more than its share here.
        share = (1000 + AUDIT_BUCKETS - 1) // AUDIT_BUCKETS
        for n in lengths:
            self.assertGreaterEqual(n, share)
            self.assertLess(n, share + 100)
        self.assertGreaterEqual(sum(lengths), 1000)
        # The newest are kept: the last call's entry is there.
        newest = max((db.cmd("XREVRANGE", key, "+", "-", "COUNT", 1)[0] for key in keys
                      if db.cmd("XLEN", key)), key=lambda e: [int(x) for x in e[0].split(b"-")])
        fields = newest[1]
        entry = privacy_pb2.AuditEntry.FromString(dict(zip(fields[::2], fields[1::2]))[b"e"])
        self.assertEqual(entry.method, "onestory.v1.IdentityService/Resolve")


class AuditOutageTest(E2ECase):

    def test_entries_of_calls_made_while_redis_is_down_are_written_when_it_is_back(self):
        redis = RedisOnPort("always")
        self.addCleanup(redis.close)
        server = H.Server(redis.address, extra_args=["--redis_command_timeout_ms=500"])
        self.addCleanup(server.stop)
        customer = server.identity().Resolve(identity_pb2.ResolveRequest(
            tenant=self.tenant, identifier=H.ident(C.IDENTIFIER_TYPE_APP_USER_ID, "outage"),
            create_if_missing=True), timeout=T).customer_id
        privacy = privacy_pb2_grpc.PrivacyServiceStub(server.channel)

        redis.kill9()
        details = []
        for _ in range(30):
            try:
                list(privacy.ExportCustomer(privacy_pb2.ExportCustomerRequest(
                    tenant=self.tenant, customer=H.by_id(customer)), timeout=T))
                self.fail("an export succeeded while Redis was down")
            except grpc.RpcError as e:
                self.assertEqual(e.code(), UNAVAILABLE, e.details())
                details.append(e.details())
        self.assertIn("audit log could not record this call", details[0])
        redis.start()

        db = RedisConn(redis.port)
        self.addCleanup(db.close)

        def exports_logged():
            out = []
            for key in audit_log_key(self.tenant).keys:
                for _, fields in db.cmd("XRANGE", key, "-", "+"):
                    e = privacy_pb2.AuditEntry.FromString(
                        dict(zip(fields[::2], fields[1::2]))[b"e"])
                    if e.method == "onestory.v1.PrivacyService/ExportCustomer":
                        out.append(e)
            return out

        started = time.monotonic()
        H.wait_until(lambda: len(exports_logged()) >= 30, 15.0,
                     what="the 30 refused exports' audit entries")
        report("30 ExportCustomer calls refused while Redis was down: all 30 audit entries "
               "written %.2f s after Redis was back" % (time.monotonic() - started))
        time.sleep(1.0)  # nothing more arrives: each was written once
        logged = exports_logged()
        self.assertEqual(len(logged), 30)
        for e in logged:
            self.assertEqual(e.code, "UNAVAILABLE")
            self.assertEqual(e.customer_id, customer)


class MaxMemoryTest(E2ECase):

    def test_at_maxmemory_writes_fail_loudly_and_an_erase_is_refused(self):
        data_dir = H.new_tmp_dir("data-")
        server = H.Server(data_dir=data_dir, extra_args=["--redis_maxmemory_mb=4"])
        self.addCleanup(server.stop)
        db = UnixRedisConn(os.path.join(data_dir, "redis.sock"))
        self.addCleanup(db.close)
        self.assertEqual(db.cmd("CONFIG", "GET", "maxmemory")[1], b"%d" % (4 << 20))
        self.assertEqual(db.cmd("CONFIG", "GET", "maxmemory-policy")[1], b"noeviction")

        customer = server.identity().Resolve(identity_pb2.ResolveRequest(
            tenant=self.tenant, identifier=H.ident(C.IDENTIFIER_TYPE_APP_USER_ID, "big"),
            create_if_missing=True), timeout=T).customer_id
        body = "x" * 60000
        code = details = None
        for i in range(200):
            code, details = H.rpc_code(server.timeline().Append, timeline_pb2.AppendRequest(
                tenant=self.tenant, customer=H.by_id(customer), events=[H.event(
                    C.CHANNEL_EMAIL, C.EVENT_KIND_MESSAGE, summary="mail %d" % i, body=body)]))
            if code != grpc.StatusCode.OK:
                break
        report("--redis_maxmemory_mb=4: Append refused after %d events of 60 KB: %s (%s)" %
               (i, code, details))
        self.assertEqual(code, EXHAUSTED, details)
        self.assertIn("out of memory", details)
        self.assertIn("maxmemory", details)

        # Used memory wavers around the limit (buffers come and go): put the limit well below
        # it, so every write from here on meets a full Redis.
        db.cmd("CONFIG", "SET", "maxmemory", str(1 << 20))
        code, details = H.rpc_code(server.timeline().Append, timeline_pb2.AppendRequest(
            tenant=self.tenant, customer=H.by_id(customer), events=[H.event(
                C.CHANNEL_EMAIL, C.EVENT_KIND_MESSAGE, summary="one more")]))
        self.assertEqual(code, EXHAUSTED, details)

        # Reads still work; an erase cannot write its audit entry first, so it does nothing.
        events_before = len(server.timeline().List(timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(customer), page_size=500), timeout=T).events)
        code, details = H.rpc_code(
            privacy_pb2_grpc.PrivacyServiceStub(server.channel).EraseCustomer,
            privacy_pb2.EraseCustomerRequest(tenant=self.tenant, customer=H.by_id(customer)))
        self.assertEqual(code, UNAVAILABLE, details)
        self.assertIn("audit log could not record this call", details)
        self.assertIn("out of memory", details)
        events_after = len(server.timeline().List(timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(customer), page_size=500), timeout=T).events)
        self.assertEqual(events_after, events_before)
        self.assertGreater(events_after, 0)


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
