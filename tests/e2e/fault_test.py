#!/usr/bin/python3
"""OneStory fault tests: kill -9 of onestory-server, and of redis-server, in the middle of a load
of appends whose clients retry with the same event ids. Afterwards every acknowledged event is
stored exactly once, in order. While Redis is down, calls fail with UNAVAILABLE, answered by
the server well within the caller's deadline (never hang), and the service recovers by itself
(the first append after the restart of Redis is acknowledged within 5 s; measured and printed).
redis_fault_test.py (its own ctest entry) goes further: the loss of appendfsync everysec,
every method while Redis is down or hung, and a Watch across a Redis restart.

Bounded: a few hundred appends per test, a few seconds each, loopback only.
Normally run through journey_test.py; alone:
  /usr/bin/python3 tests/e2e/fault_test.py --build-dir build
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402
from harness import C, E2ECase, timeline_pb2  # noqa: E402

import grpc  # noqa: E402

CLIENTS = 6
EVENTS_PER_CLIENT = 80
CALL_TIMEOUT = 2.0


class Loader:
    """CLIENTS threads, each appending EVENTS_PER_CLIENT events one call at a time to its own
    customer, retrying each call with the same event id until it is acknowledged."""

    def __init__(self, case, target, customers):
        self.case = case
        self.target = target
        self.customers = customers
        self.acked = [[] for _ in customers]
        self.ack_times = []     # time.monotonic() of every acknowledgement
        self.failures = []      # (code, seconds the failed call took)
        self.lock = threading.Lock()
        self.stop = False
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(len(customers))]

    def start(self):
        for t in self.threads:
            t.start()

    def progress(self):
        with self.lock:
            return sum(len(a) for a in self.acked)

    def run(self, i):
        channel = H.channel(self.target)
        stub = H.timeline_pb2_grpc.TimelineServiceStub(channel)
        give_up = time.monotonic() + 60
        for n in range(EVENTS_PER_CLIENT):
            ev = H.event(C.CHANNEL_MOBILE_APP, C.EVENT_KIND_APP_VIEW,
                         event_id="c%d-e%03d" % (i, n), summary="view %d" % n)
            req = timeline_pb2.AppendRequest(tenant=self.case.tenant,
                                             customer=H.by_id(self.customers[i]), events=[ev])
            while not self.stop and time.monotonic() < give_up:
                started = time.monotonic()
                try:
                    stub.Append(req, timeout=CALL_TIMEOUT)
                    with self.lock:
                        self.acked[i].append(ev.event_id)
                        self.ack_times.append(time.monotonic())
                    break
                except grpc.RpcError as e:
                    with self.lock:
                        self.failures.append((e.code(), time.monotonic() - started))
                    time.sleep(0.02)
        channel.close()

    def join(self):
        for t in self.threads:
            t.join(timeout=90)
        self.stop = True


class FaultTest(E2ECase):

    def setUp(self):
        super().setUp()
        self.extra = []

    def tearDown(self):
        for p in self.extra:
            p.kill()

    def customers(self, server):
        return [self.resolve(server, C.IDENTIFIER_TYPE_DEVICE_ID, H.unique("dev-")).customer_id
                for _ in range(CLIENTS)]

    def assert_exactly_once(self, server, customers, loader):
        for i, customer in enumerate(customers):
            events, _ = self.list_all(server, H.by_id(customer), 500, timeline_pb2.ORDER_OLDEST_FIRST)
            stored = [e.event_id for e in events]
            self.assertEqual(stored, loader.acked[i],
                             "customer %d: stored events differ from the acknowledged ones" % i)
            self.assertEqual(len(stored), EVENTS_PER_CLIENT)

    def test_server_killed_mid_load_keeps_every_acknowledged_event_once(self):
        port = H.free_port()
        redis = self.env.redis
        server = H.Server(extra_args=["--listen=127.0.0.1:%d" % port], **redis.server_kwargs())
        self.extra.append(server.proc)
        customers = self.customers(server)
        loader = Loader(self, "127.0.0.1:%d" % port, customers)
        loader.start()
        H.wait_until(lambda: loader.progress() >= CLIENTS * 10, 20, what="appends under way")
        server.proc.popen.kill()  # SIGKILL, mid-load
        server.proc.popen.wait(timeout=5)
        restarted = H.Server(extra_args=["--listen=127.0.0.1:%d" % port],
                             **redis.server_kwargs())
        self.extra.append(restarted.proc)
        loader.join()
        self.assertEqual(loader.progress(), CLIENTS * EVENTS_PER_CLIENT,
                         "not every append was acknowledged")
        self.assertTrue(loader.failures, "the kill happened after the load ended")
        self.assert_exactly_once(restarted, customers, loader)

    def test_redis_killed_with_appendfsync_always_loses_no_acknowledged_event(self):
        port = H.free_port()
        data = H.new_tmp_dir("redis-aof-")

        def start_redis():
            proc = H.Proc("redis-server:%d" % port,
                          ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                           "--dir", data, "--daemonize", "no"],
                          os.path.join(data, "redis-%d.log" % time.monotonic_ns()))
            self.extra.append(proc)
            H.wait_until(lambda: H._redis_pings(port), 10, what="redis-server answering")
            return proc

        redis = start_redis()
        # The server's own limit on a Redis command (1 s) is below the clients' deadline (2 s):
        # a call that fails must be answered by the server, UNAVAILABLE, not by the client's
        # deadline running out.
        server = H.Server("127.0.0.1:%d" % port, extra_args=["--redis_command_timeout_ms=1000"])
        self.extra.append(server.proc)
        customers = self.customers(server)
        loader = Loader(self, server.target, customers)
        loader.start()
        H.wait_until(lambda: loader.progress() >= CLIENTS * 10, 20, what="appends under way")
        redis.popen.kill()  # SIGKILL: no shutdown, no final flush
        redis.popen.wait(timeout=5)
        killed_at = time.monotonic()
        time.sleep(1.0)  # calls meanwhile must fail, quickly
        restarted_at = time.monotonic()
        start_redis()
        loader.join()
        with loader.lock:
            # (an answer Redis sent just before it died may reach the client a little later)
            during = [t for t in loader.ack_times if killed_at + 0.3 < t < restarted_at]
            after = [t for t in loader.ack_times if t >= restarted_at]
        self.assertFalse(during, "appends acknowledged while Redis was down")
        self.assertTrue(after, "no append acknowledged after Redis came back")
        recovered = min(after) - restarted_at
        slowest = max(took for _, took in loader.failures) if loader.failures else 0.0
        sys.stdout.write("fault: appendfsync always: %d failed calls during the outage "
                         "(slowest %.3f s); first append acknowledged %.3f s after the restart\n"
                         % (len(loader.failures), slowest, recovered))
        self.assertEqual(loader.progress(), CLIENTS * EVENTS_PER_CLIENT,
                         "not every append was acknowledged after Redis came back")
        self.assertTrue(loader.failures, "no call saw the outage")
        for code, took in loader.failures:
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE,
                             "a call failed with %s after %.2fs, not UNAVAILABLE" % (code, took))
            self.assertLess(took, 1.5, "a failing call took %.2fs (server limit 1 s)" % took)
        # Clients retry every 20 ms; the service reconnects with a backoff capped at 1 s.
        self.assertLess(recovered, 5.0, "the service took %.1fs to recover after Redis came "
                        "back" % recovered)
        self.assert_exactly_once(server, customers, loader)


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
