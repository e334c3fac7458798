#!/usr/bin/python3
"""OneStory end-to-end tests of the HTTP listener (--http_listen): the unary RPCs as HTTP/JSON
(the Connect protocol's unary calls), CORS, and the live streams (TimelineService/Watch,
AlertService/WatchAlerts) as Server-Sent Events, read the way a browser's EventSource reads
them: resumed with Last-Event-ID, heartbeats, refusals before streaming, the stream limit and
the end at shutdown.

Run through ctest (e2e_http, and e2e_http_cluster on a local Redis Cluster) or alone:
  /usr/bin/python3 tests/e2e/http_test.py --build-dir build
"""

import http.client
import json
import os
import queue
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402
from harness import C, E2ECase  # noqa: E402

T = H.RPC_TIMEOUT


def start_http_server(*extra):
    """(server, HTTP port) of an onestory-server with the HTTP listener on."""
    port_file = os.path.join(H.new_tmp_dir("http-"), "http_port")
    server = H.Server(extra_args=("--http_listen=127.0.0.1:0", "--http_port_file=" + port_file)
                      + tuple(extra), **H.env().redis.server_kwargs())
    with open(port_file) as f:
        return server, int(f.read())


class EventSource:
    """A text/event-stream response read on a thread, as a browser's EventSource reads it: each
    message is a dict of its fields ("id", "event", "data"); comment lines are {"comment": ...}.
    status, headers and (for a refusal) body are the response's."""

    def __init__(self, port, path, headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status, self.headers, self.body = self.resp.status, self.resp.headers, None
        self.q = queue.Queue()
        if self.status != 200:
            self.body = json.loads(self.resp.read() or b"{}")
            self.conn.close()
            return
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        fields = {}
        try:
            for raw in self.resp:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if fields:
                        self.q.put(fields)
                    fields = {}
                elif line.startswith(":"):
                    self.q.put({"comment": line[1:].strip()})
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    fields[name] = fields[name] + "\n" + value if name in fields else value
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed by the test (AttributeError: from under the reading thread)
        self.q.put({"end": True})

    def next(self, timeout=5.0, comments=False):
        """The next message (or comment, with comments=True); skips the `retry:` setting."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no message on the event stream within %.1fs" % timeout)
            if "comment" in m and not comments:
                continue
            if set(m) == {"retry"}:
                continue
            return m

    def expect_quiet(self, seconds):
        try:
            m = self.next(seconds)
        except AssertionError:
            return
        raise AssertionError("unexpected message on the event stream: %s" % m)

    def close(self):
        self.conn.close()


class HttpCase(E2ECase):
    """A server with the HTTP listener for the class, and helpers to call it."""
    extra_flags = ()

    @classmethod
    def setUpClass(cls):
        cls.server, cls.http_port = start_http_server(*cls.extra_flags)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def auth(self):
        return {"Authorization": "Bearer " + H.key_for(self.tenant)}

    def stream(self, method, query, headers=None, auth=True):
        h = self.auth() if auth else {}
        h.update(headers or {})
        return EventSource(self.http_port, "/onestory.v1.%s?%s" % (
            method, urllib.parse.urlencode(dict({"tenant": self.tenant}, **query))), h)


class HttpGatewayTest(HttpCase):
    """The unary RPCs over HTTP/JSON (--http_listen), as the Connect protocol's unary calls."""
    extra_flags = ("--http_cors_origins=https://console.example",)

    def post(self, path, body, content_type="application/json", key=True, headers=None):
        """(HTTP status, JSON body, headers) of a POST to path."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"Content-Type": content_type}
        if key:
            h["Authorization"] = "Bearer " + H.key_for(self.tenant)
        h.update(headers or {})
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http_port, path), data=data,
                                     headers=h, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=T) as r:
                return r.status, json.loads(r.read() or b"{}"), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}"), e.headers

    def test_a_journey_over_http(self):
        phone = {"type": "IDENTIFIER_TYPE_PHONE", "value": "+1 415 555 %04d" % (os.getpid() % 10000)}
        status, resolved, headers = self.post("/onestory.v1.IdentityService/Resolve", {
            "tenant": self.tenant, "identifier": phone, "createIfMissing": True},
            headers={"X-Request-Id": "http-journey-1"})
        self.assertEqual(status, 200, resolved)
        self.assertTrue(resolved["customerId"].startswith("cus_"), resolved)
        self.assertEqual(headers["X-Request-Id"], "http-journey-1")
        customer = {"customerId": resolved["customerId"]}
        status, appended, _ = self.post("/onestory.v1.TimelineService/Append", {
            "tenant": self.tenant, "customer": customer,
            "events": [{"eventId": "http-1", "channel": "CHANNEL_WEB_CHAT",
                        "kind": "EVENT_KIND_MESSAGE", "actor": {"type": "TYPE_CUSTOMER"},
                        "summary": "asked about order A12"}]})
        self.assertEqual(status, 200, appended)
        # The same customer through gRPC sees the event, and GetContext over HTTP shows it.
        ctx = self.context(self.a, H.by_id(resolved["customerId"]))
        self.assertEqual([e.event_id for e in ctx.recent_events], ["http-1"])
        status, context, _ = self.post("/onestory.v1.ContextService/GetContext", {
            "tenant": self.tenant, "customer": customer})
        self.assertEqual(status, 200, context)
        self.assertEqual([e["eventId"] for e in context["recentEvents"]], ["http-1"])
        self.assertEqual(context["recentEvents"][0]["summary"], "asked about order A12")

    def test_every_unary_rpc_is_served(self):
        import importlib
        served = 0
        for module in ("identity", "timeline", "conversation", "case", "alert", "context",
                       "privacy"):
            pb2 = importlib.import_module("onestory.v1.%s_pb2" % module)
            for service in pb2.DESCRIPTOR.services_by_name.values():
                for m in service.methods:
                    if m.server_streaming or m.client_streaming:
                        continue
                    path = "/%s/%s" % (service.full_name, m.name)
                    status, body, _ = self.post(path, {"tenant": self.tenant})
                    # Reaching the method: its answer, or its own refusal of an empty request.
                    self.assertNotIn(status, (404, 415, 501), (path, body))
                    if status != 200:
                        self.assertIn("code", body, path)
                        self.assertNotEqual(body["code"], "unimplemented", path)
                    served += 1
        self.assertGreaterEqual(served, 25)

    def test_bad_requests_are_refused_and_change_nothing(self):
        ref = H.by_id(self.resolve(self.a, C.IDENTIFIER_TYPE_APP_USER_ID,
                                   H.unique("http-bad-")).customer_id)
        append = "/onestory.v1.TimelineService/Append"
        event = {"eventId": "bad-1", "channel": "CHANNEL_WEB", "kind": "EVENT_KIND_PAGE_VIEW"}
        request = {"tenant": self.tenant, "customer": {"customerId": ref.customer_id},
                   "events": [event]}
        cases = [
            ("bad JSON", self.post(append, b"{\"tenant\": ", key=True), 400, "invalid_argument",
             "request body"),
            ("unknown field", self.post(append, dict(request, colour="red")), 400,
             "invalid_argument", "colour"),
            ("wrong type", self.post(append, dict(request, events="many")), 400,
             "invalid_argument", "events"),
            ("content type", self.post(append, request, content_type="text/plain"), 415,
             "unknown", "application/json"),
            ("no key", self.post(append, request, key=False), 401, "unauthenticated", "API key"),
            ("validation", self.post(append, dict(request, events=[dict(event, channel=None)])),
             400, "invalid_argument", "channel"),
            ("over the limit", self.post(append, b"{\"tenant\": \"" + b"x" * (8 << 20) + b"\"}"),
             413, "resource_exhausted", "limit"),
            ("a stream", self.post("/onestory.v1.TimelineService/Watch", request), 501,
             "unimplemented", "Server-Sent Events"),
            ("a key in the URL", self.post(append + "?access_token=" + H.key_for(self.tenant),
                                           request), 400, "invalid_argument", "access_token"),
            ("no such method", self.post("/onestory.v1.TimelineService/Nope", request), 404,
             "unimplemented", "no method"),
        ]
        for label, (status, body, _), want_status, want_code, names in cases:
            self.assertEqual((status, body.get("code")), (want_status, want_code), (label, body))
            self.assertIn(names, body.get("message", ""), label)
        self.assertEqual(list(self.context(self.a, ref).recent_events), [])

    def test_cors_allows_only_the_listed_origins(self):
        def preflight(origin):
            req = urllib.request.Request(
                "http://127.0.0.1:%d/onestory.v1.ContextService/GetContext" % self.http_port,
                method="OPTIONS", headers={"Origin": origin,
                                           "Access-Control-Request-Method": "POST",
                                           "Access-Control-Request-Headers": "authorization"})
            try:
                with urllib.request.urlopen(req, timeout=T) as r:
                    return r.status, r.headers
            except urllib.error.HTTPError as e:
                return e.code, e.headers
        status, headers = preflight("https://console.example")
        self.assertEqual(status, 204)
        self.assertEqual(headers["Access-Control-Allow-Origin"], "https://console.example")
        self.assertIn("POST", headers["Access-Control-Allow-Methods"])
        self.assertIn("GET", headers["Access-Control-Allow-Methods"])  # the event streams
        self.assertIn("Authorization", headers["Access-Control-Allow-Headers"])
        self.assertEqual(preflight("https://evil.example")[0], 403)

        ref = H.by_id(self.resolve(self.a, C.IDENTIFIER_TYPE_APP_USER_ID,
                                   H.unique("cors-")).customer_id)
        request = {"tenant": self.tenant, "customer": {"customerId": ref.customer_id},
                   "events": [{"eventId": "cors-1", "channel": "CHANNEL_WEB",
                               "kind": "EVENT_KIND_PAGE_VIEW",
                               "actor": {"type": "TYPE_CUSTOMER"}}]}
        status, body, headers = self.post("/onestory.v1.TimelineService/Append", request,
                                          headers={"Origin": "https://evil.example"})
        self.assertEqual((status, body["code"]), (403, "permission_denied"), body)
        self.assertIn("https://evil.example", body["message"])
        self.assertEqual(list(self.context(self.a, ref).recent_events), [])  # nothing stored
        status, body, headers = self.post("/onestory.v1.TimelineService/Append", request,
                                          headers={"Origin": "https://console.example"})
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Access-Control-Allow-Origin"], "https://console.example")
        self.assertIn("X-Request-Id", headers["Access-Control-Expose-Headers"])
        # Without an Origin (curl, a bot platform's server) nothing changes.
        status, _, headers = self.post("/onestory.v1.ContextService/GetContext",
                                       {"tenant": self.tenant, "customer": {
                                           "customerId": ref.customer_id}})
        self.assertEqual(status, 200)
        self.assertIsNone(headers.get("Access-Control-Allow-Origin"))

    def test_the_console_is_served_same_origin_only(self):
        def get(path):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http_port, path),
                                            timeout=T) as r:
                    return r.status, r.headers, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.headers, e.read()
        status, headers, body = get("/console/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn(b'<script src="console.js"', body)
        self.assertIn("script-src 'self'", headers["Content-Security-Policy"])
        self.assertIn("frame-ancestors 'none'", headers["Content-Security-Policy"])
        self.assertEqual(headers["Referrer-Policy"], "no-referrer")
        status, headers, _ = get("/console/console.js")
        self.assertEqual((status, headers["Content-Type"].split(";")[0]), (200, "text/javascript"))
        status, _, body = get("/console/nope.js")
        self.assertEqual((status, json.loads(body)["code"]), (404, "not_found"))
        # The page's own calls carry its Origin, this listener's: no CORS allow-list needed.
        origin = "http://127.0.0.1:%d" % self.http_port
        status, body, headers = self.post("/onestory.v1.ContextService/GetContext", {
            "tenant": self.tenant, "customer": {"customerId": "cus_nobody"}},
            headers={"Origin": origin})
        self.assertNotEqual(status, 403, body)
        self.assertIsNone(headers.get("Access-Control-Allow-Origin"))

    def test_https_with_the_grpc_ports_certificate(self):
        d = H.new_tmp_dir("https-")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-days", "1"], check=True, capture_output=True)
        port_file = os.path.join(d, "http_port")
        s = H.Server(extra_args=("--tls_cert=" + cert, "--tls_key=" + key,
                                 "--http_listen=127.0.0.1:0", "--http_port_file=" + port_file),
                     wait=False, **self.env.redis.server_kwargs())
        try:
            H.wait_until(lambda: os.path.exists(port_file) and open(port_file).read().strip(),
                         15, what="the HTTPS listener")
            port = int(open(port_file).read())
            tls = ssl.create_default_context(cafile=cert)
            req = urllib.request.Request(
                "https://127.0.0.1:%d/onestory.v1.ContextService/GetContext" % port,
                data=json.dumps({"tenant": self.tenant,
                                 "customer": {"customerId": "cus_nobody"}}).encode(),
                headers={"Content-Type": "application/json",
                         "Authorization": "Bearer " + H.key_for(self.tenant)}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=T, context=tls) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            self.assertIn(status, (200, 404))  # the call was made (over TLS)
            with urllib.request.urlopen("https://127.0.0.1:%d/console/" % port, timeout=T,
                                        context=tls) as r:
                self.assertEqual(r.status, 200)
            # Plain HTTP on the TLS port gets no answer.
            with self.assertRaises((OSError, http.client.HTTPException)):
                urllib.request.urlopen("http://127.0.0.1:%d/console/" % port, timeout=T).read()
        finally:
            s.stop()
        # A certificate that cannot be loaded stops the server at start, naming the flag.
        s = H.Server(extra_args=("--tls_cert=" + key, "--tls_key=" + key,
                                 "--http_listen=127.0.0.1:0"), wait=False,
                     **self.env.redis.server_kwargs())
        self.assertNotEqual(s.proc.popen.wait(timeout=10), 0)

    def test_a_wildcard_origin_is_refused(self):
        s = H.Server(extra_args=("--http_listen=127.0.0.1:0", "--http_cors_origins=*"),
                     wait=False, **self.env.redis.server_kwargs())
        self.assertNotEqual(s.proc.popen.wait(timeout=10), 0)
        self.assertIn("--http_cors_origins: '*' is not an origin", s.proc.log_tail())


class EventStreamTest(HttpCase):
    """Watch and WatchAlerts as Server-Sent Events."""
    extra_flags = ("--http_heartbeat_ms=300", "--http_cors_origins=https://console.example",
                   "--alert_negative_streak=3")

    def new_customer(self, prefix):
        phone = "+1 415 555 %04d" % (int(H.unique()[:4], 16) % 10000)
        cid = self.resolve(self.a, C.IDENTIFIER_TYPE_PHONE, phone).customer_id
        return cid, phone

    def append_one(self, server, cid, event_id):
        e = H.event(C.CHANNEL_WEB_CHAT, C.EVENT_KIND_MESSAGE, event_id=event_id)
        return self.append(server, H.by_id(cid), [e]).results[0].event

    def test_watch_streams_appends_and_resumes_after_last_event_id(self):
        cid, phone = self.new_customer("sse-")
        s = self.stream("TimelineService/Watch", {"customer.customerId": cid},
                        headers={"X-Request-Id": "sse-watch-1"})
        try:
            self.assertEqual(s.status, 200, s.body)
            self.assertTrue(s.headers["Content-Type"].startswith("text/event-stream"))
            self.assertEqual(s.headers["X-Request-Id"], "sse-watch-1")
            self.assertEqual(s.headers["Cache-Control"], "no-store")
            # Appended through gRPC on another instance: pushed to the open stream.
            e1 = self.append_one(self.a, cid, "sse-1")
            m = s.next()
            self.assertEqual(m["id"], e1.cursor)
            self.assertNotIn("event", m)  # a plain message: EventSource's onmessage
            self.assertEqual(json.loads(m["data"])["event"]["eventId"], "sse-1")
        finally:
            s.close()
        # Missed while disconnected, then resumed as EventSource does: no gap, no duplicate.
        e2 = self.append_one(self.a, cid, "sse-2")
        e3 = self.append_one(self.b, cid, "sse-3")
        s = self.stream("TimelineService/Watch", {"customer.customer_id": cid},
                        headers={"Last-Event-ID": e1.cursor})
        try:
            self.assertEqual(s.status, 200, s.body)
            got = [s.next(), s.next()]
            self.assertEqual([m["id"] for m in got], [e2.cursor, e3.cursor])
            self.assertEqual([json.loads(m["data"])["event"]["eventId"] for m in got],
                             ["sse-2", "sse-3"])
            s.expect_quiet(0.5)
        finally:
            s.close()
        # By identifier, from the start, as a phone system's screen pop would open it.
        s = self.stream("TimelineService/Watch", {
            "customer.identifier.type": "IDENTIFIER_TYPE_PHONE",
            "customer.identifier.value": phone, "from_start": "true"})
        try:
            self.assertEqual(s.status, 200, s.body)
            self.assertEqual([s.next()["id"] for _ in range(3)],
                             [e1.cursor, e2.cursor, e3.cursor])
        finally:
            s.close()

    def test_idle_stream_gets_heartbeats(self):
        cid, _ = self.new_customer("sse-hb-")
        s = self.stream("TimelineService/Watch", {"customer.customerId": cid})
        try:
            self.assertEqual(s.status, 200, s.body)
            self.assertEqual(s.next(timeout=3, comments=True), {"comment": "heartbeat"})
            self.assertEqual(s.next(timeout=3, comments=True), {"comment": "heartbeat"})
        finally:
            s.close()

    def test_refusals_come_before_streaming_and_name_the_problem(self):
        cid, _ = self.new_customer("sse-bad-")
        watch = "TimelineService/Watch"
        cases = [
            ("no credential", self.stream(watch, {"customer.customerId": cid}, auth=False),
             401, "unauthenticated", "authorization"),
            ("an API key in the URL",
             self.stream(watch, {"customer.customerId": cid,
                                 "access_token": H.key_for(self.tenant)}, auth=False),
             401, "unauthenticated", "access_token"),
            ("an unknown parameter", self.stream(watch, {"customer.customerId": cid,
                                                         "colour": "red"}),
             400, "invalid_argument", "colour"),
            ("not a boolean", self.stream(watch, {"customer.customerId": cid,
                                                  "from_start": "yes"}),
             400, "invalid_argument", "from_start"),
            ("a message given a value", self.stream(watch, {"customer": cid}),
             400, "invalid_argument", "customer"),
            ("nobody owns the identifier", self.stream(watch, {
                "customer.identifier.type": "IDENTIFIER_TYPE_EMAIL",
                "customer.identifier.value": H.unique("nobody-") + "@example.com"}),
             404, "not_found", ""),
            ("a bad cursor", self.stream(watch, {"customer.customerId": cid},
                                         headers={"Last-Event-ID": "nonsense"}),
             400, "invalid_argument", "after_cursor"),
            ("a unary method", self.stream("TimelineService/List", {"customer.customerId": cid}),
             405, "unimplemented", "POST"),
            ("another origin", self.stream(watch, {"customer.customerId": cid},
                                           headers={"Origin": "https://evil.example"}),
             403, "permission_denied", "evil.example"),
        ]
        for label, s, status, code, names in cases:
            self.assertEqual((s.status, s.body.get("code") if s.body else None), (status, code),
                             (label, s.body))
            self.assertIn(names.lower(), s.body.get("message", "").lower(), label)

    def test_streams_over_the_limit_are_refused_with_503(self):
        server, port = start_http_server("--http_max_streams=3", "--http_heartbeat_ms=200")
        cid, _ = self.new_customer("sse-limit-")
        path = "/onestory.v1.TimelineService/Watch?" + urllib.parse.urlencode(
            {"tenant": self.tenant, "customer.customerId": cid})
        open_ = [EventSource(port, path, self.auth()) for _ in range(3)]
        try:
            self.assertEqual([s.status for s in open_], [200, 200, 200])
            over = EventSource(port, path, self.auth())
            self.assertEqual((over.status, over.body["code"]), (503, "unavailable"), over.body)
            self.assertIn("the limit is 3", over.body["message"])
            # A closed stream frees its place once the server notices (at a heartbeat).
            open_.pop().close()

            def admitted():
                s = EventSource(port, path, self.auth())
                if s.status == 200:
                    open_.append(s)
                    return True
                return False
            H.wait_until(admitted, 5, interval=0.2, what="a place freed by a closed stream")
        finally:
            for s in open_:
                s.close()
            server.stop()

    def test_watch_alerts_streams_alerts_by_cursor(self):
        s = self.stream("AlertService/WatchAlerts", {"fromStart": "true"})
        try:
            self.assertEqual(s.status, 200, s.body)
            cid, _ = self.new_customer("sse-alert-")
            for i, sentiment in enumerate((-0.5, -0.6, -0.7)):
                e = H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, event_id="neg-%d" % i,
                            sentiment=sentiment)
                self.append(self.server, H.by_id(cid), [e])
            m = s.next(timeout=10)
            alert = json.loads(m["data"])
            self.assertEqual((alert["kind"], alert["customerId"]),
                             ("ALERT_KIND_NEGATIVE_STREAK", cid), alert)
            self.assertEqual(m["id"], alert["cursor"])
        finally:
            s.close()

    def test_shutdown_ends_streams_with_an_error_event_naming_the_last_id(self):
        server, port = start_http_server()
        try:
            cid, _ = self.new_customer("sse-stop-")
            s = EventSource(port, "/onestory.v1.TimelineService/Watch?" + urllib.parse.urlencode(
                {"tenant": self.tenant, "customer.customerId": cid}), self.auth())
            self.assertEqual(s.status, 200, s.body)
            e1 = self.append_one(self.a, cid, "stop-1")
            self.assertEqual(s.next()["id"], e1.cursor)
            server.proc.popen.send_signal(15)
            m = s.next(timeout=10)
            self.assertEqual(m["event"], "error", m)
            body = json.loads(m["data"])
            self.assertEqual((body["code"], body["lastEventId"]), ("unavailable", e1.cursor), body)
            self.assertIn("shutting down", body["message"])
            self.assertEqual(s.next(), {"end": True})
            self.assertEqual(server.proc.popen.wait(timeout=10), 0, server.proc.log_tail())
        finally:
            server.stop()


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
