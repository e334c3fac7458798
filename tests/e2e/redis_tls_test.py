#!/usr/bin/python3
"""OneStory end-to-end tests of Redis over TLS (--redis_tls): onestory-server against a
redis-server serving only what a test reaches over --tls-port, and against a Redis Cluster with
tls-cluster yes, certificates made with openssl. A journey (Resolve, Append, Watch, GetContext)
runs over each; a certificate that does not name the server, or no CA that trusts it, leaves the
server not ready with the reason in its log; TLS flags that cannot be used are refused at start.

Run through ctest (e2e_redis_tls) or alone:
  /usr/bin/python3 tests/e2e/redis_tls_test.py --build-dir build
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402
from harness import C, E2ECase, timeline_pb2  # noqa: E402

T = H.RPC_TIMEOUT


class RedisTlsTest(E2ECase):

    @classmethod
    def setUpClass(cls):
        cls.tls = H.TlsFiles()

    def journey(self, server):
        """Resolve, Append seen by a Watch, GetContext: every step through Redis over TLS."""
        cid = self.resolve(server, C.IDENTIFIER_TYPE_PHONE, "+1 415 555 %04d" %
                           (int(time.time() * 1000) % 10000)).customer_id
        watch = H.WatchReader(server.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=H.by_id(cid)))
        time.sleep(0.3)  # the subscription is confirmed before the append
        self.append(server, H.by_id(cid), [H.event(C.CHANNEL_WEB_CHAT, C.EVENT_KIND_MESSAGE,
                                                   event_id="tls-1")])
        self.assertEqual(watch.next_event(10).event_id, "tls-1")
        watch.call.cancel()
        ctx = self.context(server, H.by_id(cid))
        self.assertEqual(H.ids(ctx.recent_events), ["tls-1"])

    def test_a_journey_over_tls_on_a_single_redis(self):
        tls_port = H.free_port()
        redis = H.Redis(extra_args=self.tls.server_args(tls_port))
        try:
            server = H.Server(redis_address="127.0.0.1:%d" % tls_port,
                              extra_args=("--redis_tls", "--redis_tls_ca=" + self.tls.ca))
            try:
                self.journey(server)
                # The server's connections are all on the TLS port: on the plain one there is
                # only this redis-cli.
                clients = redis_cli(redis.port, "CLIENT", "LIST").splitlines()
                on = lambda port: [c for c in clients if "laddr=127.0.0.1:%d " % port in c]
                self.assertGreaterEqual(len(on(tls_port)), 2, clients)
                self.assertEqual(len(on(redis.port)), 1, clients)
            finally:
                server.stop()
        finally:
            redis.proc.kill()

    def test_a_journey_over_tls_on_a_cluster(self):
        cluster = H.RedisCluster(tls=self.tls)
        try:
            server = H.Server(redis_cluster=cluster.seeds,
                              extra_args=("--redis_tls", "--redis_tls_ca=" + self.tls.ca))
            try:
                self.journey(server)
            finally:
                server.stop()
        finally:
            for p in cluster.procs:
                p.kill()

    def test_a_certificate_that_does_not_name_the_server_is_refused(self):
        tls_port = H.free_port()
        redis = H.Redis(extra_args=self.tls.server_args(tls_port))
        metrics_dir = H.new_tmp_dir("metrics-")
        try:
            server = H.Server(redis_address="127.0.0.1:%d" % tls_port, wait=False,
                              extra_args=("--redis_tls", "--redis_tls_ca=" + self.tls.ca,
                                          "--redis_tls_server_name=other.test",
                                          "--metrics_listen=127.0.0.1:0",
                                          "--metrics_port_file=" +
                                          os.path.join(metrics_dir, "port")))
            try:
                H.wait_until(lambda: "certificate verify failed" in server.proc.log_tail(), 15,
                             what="the TLS refusal in the log")
                log = server.proc.log_tail()
                self.assertIn("event=redis.tls_failed", log)
                self.assertIn("addr=127.0.0.1:%d" % tls_port, log)
                self.assertIn("hostname mismatch", log)
                self.assertIsNone(server.proc.popen.poll(), "the server keeps retrying")
            finally:
                server.proc.kill()
        finally:
            redis.proc.kill()

    def test_unusable_tls_flags_are_refused_at_start(self):
        tls_port = H.free_port()
        cases = [
            (("--redis_tls_ca=" + self.tls.ca,), "need --redis_tls"),
            (("--redis_tls", "--redis_tls_ca=/nonexistent/ca.pem"),
             "CA file '/nonexistent/ca.pem' cannot be used"),
            (("--redis_tls", "--redis_tls_cert=" + os.path.join(self.tls.dir, "redis.crt")),
             "needs both its certificate and its key file"),
        ]
        for args, expected in cases:
            s = H.Server(redis_address="127.0.0.1:%d" % tls_port, extra_args=args, wait=False)
            self.assertNotEqual(s.proc.popen.wait(timeout=10), 0, args)
            self.assertIn(expected, s.proc.log_tail(), args)
        s = H.Server(redis_address="unix:/tmp/nowhere.sock", wait=False,
                     extra_args=("--redis_tls",))
        self.assertNotEqual(s.proc.popen.wait(timeout=10), 0)
        self.assertIn("--redis must be host:port", s.proc.log_tail())


def redis_cli(port, *args):
    out = H.subprocess.run(["redis-cli", "-p", str(port)] + list(args),
                           stdout=H.subprocess.PIPE, timeout=10, check=True)
    return out.stdout.decode()


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
