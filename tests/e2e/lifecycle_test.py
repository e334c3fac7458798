#!/usr/bin/python3
"""OneStory end-to-end tests of live push and process life: Watch across instances with resume
by cursor, the single-service binaries and health checking, the embedded default's durability,
and SIGTERM while a Watch is open.

Normally run through journey_test.py (one summary line for the whole e2e suite); it can also
run alone:  /usr/bin/python3 tests/e2e/lifecycle_test.py --build-dir build
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402
from harness import C, E2ECase, context_pb2, identity_pb2, ids, timeline_pb2  # noqa: E402
from harness import context_pb2_grpc, timeline_pb2_grpc  # noqa: E402

import grpc  # noqa: E402

T = H.RPC_TIMEOUT


class WatchAcrossInstancesTest(E2ECase):

    def new_customer(self):
        return self.resolve(self.a, C.IDENTIFIER_TYPE_APP_USER_ID, H.unique("user-")).customer_id

    def msg(self, label):
        return H.event(C.CHANNEL_MOBILE_APP, C.EVENT_KIND_MESSAGE, event_id=H.unique(label + "-"),
                       summary=label)

    def test_watch_on_a_sees_appends_on_b_and_resumes_by_cursor(self):
        ref = H.by_id(self.new_customer())
        before = self.append(self.b, ref, [self.msg("before")]).results[0].event

        # from_start on A: replays the timeline, then streams what B appends.
        watch = H.WatchReader(self.a.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ref, from_start=True))
        try:
            got = watch.next_event(5)
            self.assertEqual((got.event_id, got.cursor), (before.event_id, before.cursor))
            live = [self.msg("live1")]
            self.append(self.b, ref, live)
            live2 = [self.msg("live2"), self.msg("live3")]
            self.append(self.b, ref, live2)
            got = watch.events(3, timeout=5)
            self.assertEqual(ids(got), ids(live + live2))
            last_cursor = got[-1].cursor
        finally:
            watch.cancel()

        # Disconnected: more events are appended, through both instances.
        missed = []
        for i in range(5):
            server = self.b if i % 2 == 0 else self.a
            missed.append(self.append(server, ref, [self.msg("missed%d" % i)]).results[0].event)
        batch = self.append(self.b, ref, [self.msg("missed5"), self.msg("missed6")])
        missed.extend(r.event for r in batch.results)

        # Resume on A after the last cursor received: exactly the missed events, in order.
        watch = H.WatchReader(self.a.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ref, after_cursor=last_cursor))
        try:
            got = watch.events(len(missed), timeout=5)
            self.assertEqual(ids(got), ids(missed))
            self.assertEqual([e.cursor for e in got], [e.cursor for e in missed])
            watch.expect_quiet(0.5)  # no duplicate, nothing else
            # ...and then live again.
            after = self.append(self.b, ref, [self.msg("after")]).results[0].event
            self.assertEqual(watch.next_event(5).event_id, after.event_id)
            watch.expect_quiet(0.3)
        finally:
            watch.cancel()

        # Resuming on the other instance from an earlier cursor replays everything after it.
        watch = H.WatchReader(self.b.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ref, after_cursor=before.cursor))
        try:
            got = watch.events(len(live + live2 + missed) + 1, timeout=5)
            self.assertEqual(ids(got), ids(live + live2) + ids(missed) + [after.event_id])
            watch.expect_quiet(0.3)
        finally:
            watch.cancel()

    def test_two_watchers_of_one_customer_on_one_instance(self):
        ref = H.by_id(self.new_customer())
        first = self.append(self.a, ref, [self.msg("first")]).results[0].event
        w1 = H.WatchReader(self.a.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ref, from_start=True))
        w2 = None
        try:
            self.assertEqual(w1.next_event(5).event_id, first.event_id)
            # The second watcher joins a channel this instance already listens to.
            w2 = H.WatchReader(self.a.timeline(), timeline_pb2.WatchRequest(
                tenant=self.tenant, customer=ref, from_start=True))
            self.assertEqual(w2.next_event(5).event_id, first.event_id)
            nxt = self.append(self.b, ref, [self.msg("next")]).results[0].event
            self.assertEqual(w1.next_event(5).event_id, nxt.event_id)
            self.assertEqual(w2.next_event(5).event_id, nxt.event_id)
        finally:
            w1.cancel()
            if w2:
                w2.cancel()

    def test_watch_without_cursor_streams_only_new_events(self):
        ref = H.by_id(self.new_customer())
        old = [self.msg("old%d" % i) for i in range(3)]
        self.append(self.a, ref, old)
        watch = H.WatchReader(self.a.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ref))
        try:
            # The client cannot see when the server subscribed: append probes through B until
            # the first arrives; it must be a probe (never an old event), then no gap follows.
            probes, first = [], None
            deadline = time.monotonic() + 5
            while first is None and time.monotonic() < deadline:
                probes.append(self.append(self.b, ref, [self.msg("probe")]).results[0].event)
                try:
                    first = watch.next_event(0.2)
                except AssertionError:
                    if watch.ended:
                        raise
            self.assertIsNotNone(first, "no live event within 5 s")
            self.assertIn(first.event_id, ids(probes), "an event from before the watch")
            rest = probes[ids(probes).index(first.event_id) + 1:]
            more = [self.append(self.b, ref, [self.msg("more%d" % i)]).results[0].event
                    for i in range(3)]
            got = watch.events(len(rest) + len(more), timeout=5)
            self.assertEqual(ids(got), ids(rest + more))
            watch.expect_quiet(0.3)
        finally:
            watch.cancel()


class KeepaliveTest(E2ECase):

    def test_idle_watch_survives_client_pings_every_second(self):
        # What grpc-js and grpcio integrators set to get through load balancers: a ping every
        # second, with or without calls. The server must neither answer GOAWAY "too many pings"
        # nor end the idle stream; the stream then still delivers.
        ref = H.by_id(self.resolve(self.a, C.IDENTIFIER_TYPE_APP_USER_ID,
                                   H.unique("keepalive-")).customer_id)
        options = [("grpc.keepalive_time_ms", 1000), ("grpc.keepalive_timeout_ms", 5000),
                   ("grpc.keepalive_permit_without_calls", 1),
                   ("grpc.http2.max_pings_without_data", 0),
                   ("grpc.http2.min_time_between_pings_ms", 1000)]
        chan = grpc.intercept_channel(grpc.insecure_channel(self.a.target, options=options),
                                      H._KeyInterceptor())
        try:
            watch = H.WatchReader(timeline_pb2_grpc.TimelineServiceStub(chan),
                                  timeline_pb2.WatchRequest(tenant=self.tenant, customer=ref),
                                  timeout=120)
            try:
                idle = float(os.environ.get("ONESTORY_KEEPALIVE_IDLE_S", "30"))
                watch.expect_quiet(idle)
                event = H.event(C.CHANNEL_WEB, C.EVENT_KIND_MESSAGE,
                                event_id=H.unique("after-idle-"))
                self.append(self.b, ref, [event])
                self.assertEqual(watch.next_event(5).event_id, event.event_id)
                sys.stderr.write("keepalive: an idle Watch with client pings every 1 s "
                                 "stayed open %.0f s, then delivered\n" % idle)
            finally:
                watch.cancel()
        finally:
            chan.close()


class ReflectionTest(E2ECase):
    """grpc.reflection.v1 (what current grpcurl, Postman and grpcui ask first) and v1alpha."""

    def reflection_messages(self, version):
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        pool = descriptor_pool.DescriptorPool()
        with open(os.path.join(H.BUILD_DIR, "reflection_v1.desc"), "rb") as f:
            files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
        for fd in files.file:
            if version != "v1":  # the same messages, in the older package
                fd.package = "grpc.reflection.v1alpha"
                fd.name = "v1alpha/" + fd.name
                renamed = lambda t: t.replace(".grpc.reflection.v1.", ".grpc.reflection.v1alpha.")
                for m in fd.message_type:
                    for field in m.field:
                        if field.type_name:
                            field.type_name = renamed(field.type_name)
                for svc in fd.service:
                    for method in svc.method:
                        method.input_type = renamed(method.input_type)
                        method.output_type = renamed(method.output_type)
            pool.Add(fd)
        factory = message_factory.MessageFactory(pool)

        def cls(name):
            d = pool.FindMessageTypeByName("grpc.reflection.%s.%s" % (version, name))
            get = getattr(message_factory, "GetMessageClass", None)
            return get(d) if get else factory.GetPrototype(d)
        return cls("ServerReflectionRequest"), cls("ServerReflectionResponse")

    def ask(self, version, *requests):
        req, resp = self.reflection_messages(version)
        call = self.a.channel.stream_stream(
            "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version,
            request_serializer=req.SerializeToString, response_deserializer=resp.FromString)
        return list(call(iter([req(**r) for r in requests]), timeout=T))

    def test_v1_lists_services_and_sends_files_with_their_imports(self):
        from google.protobuf import descriptor_pb2
        for version in ("v1", "v1alpha"):
            listed, by_symbol, again, missing, empty = self.ask(
                version, {"list_services": ""},
                {"file_containing_symbol": "onestory.v1.TimelineService"},
                {"file_by_filename": "onestory/v1/common.proto"},
                {"file_by_filename": "no/such.proto"}, {})
            names = {s.name for s in listed.list_services_response.service}
            self.assertTrue({"onestory.v1.TimelineService", "onestory.v1.ContextService",
                             "grpc.reflection.v1.ServerReflection",
                             "grpc.reflection.v1alpha.ServerReflection",
                             "grpc.health.v1.Health"} <= names, (version, names))
            files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                     for b in by_symbol.file_descriptor_response.file_descriptor_proto]
            sent = {f.name for f in files}
            self.assertIn("onestory/v1/timeline.proto", sent, version)
            self.assertIn("onestory/v1/common.proto", sent, version)  # imported
            timeline = next(f for f in files if f.name == "onestory/v1/timeline.proto")
            self.assertIn("Watch", [m.name for m in timeline.service[0].method])
            # v1 sends a file once per stream, as grpc-go does (v1alpha's C++ server sends it
            # with every answer).
            if version == "v1":
                self.assertEqual(len(again.file_descriptor_response.file_descriptor_proto), 0)
            self.assertEqual(missing.error_response.error_code,
                             grpc.StatusCode.NOT_FOUND.value[0], version)
            if version == "v1":
                self.assertEqual(empty.error_response.error_code,
                                 grpc.StatusCode.INVALID_ARGUMENT.value[0])
                self.assertIn("message_request", empty.error_response.error_message)


class MetricsExpositionTest(E2ECase):

    def test_prometheus_parser_reads_conventional_names_and_types(self):
        from prometheus_client.parser import text_string_to_metric_families
        port_file = os.path.join(H.new_tmp_dir("metrics-"), "metrics_port")
        server = H.Server(extra_args=("--metrics_listen=127.0.0.1:0",
                                      "--metrics_port_file=" + port_file),
                          **self.env.redis.server_kwargs())
        try:
            with open(port_file) as f:
                port = int(f.read())
            self.resolve(server, C.IDENTIFIER_TYPE_PHONE, "+14155550134")
            unauthenticated = context_pb2_grpc.ContextServiceStub(H.raw_channel(server.target))
            self.assertCode(grpc.StatusCode.UNAUTHENTICATED, unauthenticated.GetContext,
                            context_pb2.GetContextRequest(tenant=self.tenant))
            self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, server.context().GetContext,
                            context_pb2.GetContextRequest(tenant=self.tenant))
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=T) as r:
                text = r.read().decode()
            families = {f.name: f for f in text_string_to_metric_families(text)}
            types = {name: f.type for name, f in families.items()}
            # The parser names a counter family without _total; its samples keep it.
            for name in ("grpc_server_started", "grpc_server_handled", "onestory_redis_reconnects",
                         "onestory_audit_entries_written", "onestory_audit_write_failures",
                         "onestory_audit_entries_dropped", "onestory_auth_rejected",
                         "process_cpu_seconds"):
                self.assertEqual(types.get(name), "counter", name)
                for sample in families[name].samples:
                    self.assertTrue(sample.name.endswith("_total"), sample.name)
            for name in ("onestory_build_info", "onestory_redis_connected",
                         "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
                         "process_start_time_seconds", "onestory_watches_open"):
                self.assertEqual(types.get(name), "gauge", name)
            self.assertEqual(types.get("grpc_server_handling_seconds"), "histogram")
            # No counter is typed gauge: a gauge's name never says it only grows.
            for name, t in types.items():
                if t == "gauge":
                    self.assertFalse(name.endswith("_total"), name)
            handled = {(s.labels["grpc_service"], s.labels["grpc_method"],
                        s.labels["grpc_type"], s.labels["grpc_code"]): s.value
                       for s in families["grpc_server_handled"].samples}
            self.assertEqual(handled.get(("onestory.v1.IdentityService", "Resolve", "unary",
                                          "OK")), 1.0, handled)
            self.assertEqual(handled.get(("onestory.v1.ContextService", "GetContext", "unary",
                                          "INVALID_ARGUMENT")), 1.0, handled)
            info = families["onestory_build_info"].samples[0]
            self.assertEqual(info.value, 1.0)
            self.assertRegex(info.labels["version"], r"^\d+\.\d+\.\d+$")
            self.assertTrue(info.labels["revision"])
            start = families["process_start_time_seconds"].samples[0].value
            self.assertLess(abs(start - time.time()), 600)
            self.assertGreater(families["process_resident_memory_bytes"].samples[0].value, 1e6)
            self.assertGreater(families["process_open_fds"].samples[0].value, 3)
            self.check_probes(port)
        finally:
            server.stop()

    def check_probes(self, port):
        def get(path):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                            timeout=T) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()
        self.assertEqual(get("/healthz"), (200, "ok\n"))
        self.assertEqual(get("/readyz"), (200, "ready\n"))
        # Without the function library on a primary, the instance is not ready; with it back,
        # it is. (The other instances may load it again on their own: then delete once more.)
        redis = self.env.redis
        primary = (redis.port if hasattr(redis, "port")
                   else next(n["port"] for n in redis.nodes() if n["master"]))
        listed = redis_call(primary, "FUNCTION", "LIST")
        library = next(lib[lib.index(b"library_name") + 1] for lib in listed
                       if lib[lib.index(b"library_name") + 1].startswith(b"onestory_"))
        dump = redis_call(primary, "FUNCTION", "DUMP")
        try:
            for _ in range(5):
                redis_call(primary, "FUNCTION", "DELETE", library)
                code, text = get("/readyz")
                if code != 200:
                    break
            self.assertEqual(code, 503, text)
            self.assertIn("function library %s is not loaded" % library.decode(), text)
        finally:
            redis_call(primary, "FUNCTION", "RESTORE", dump, "REPLACE")
        self.assertEqual(get("/readyz"), (200, "ready\n"))

    def test_metrics_port_file_without_metrics_listen_is_refused(self):
        port_file = os.path.join(H.new_tmp_dir("metrics-"), "metrics_port")
        s = H.Server(extra_args=("--metrics_port_file=" + port_file,), wait=False,
                     **self.env.redis.server_kwargs())
        self.assertNotEqual(s.proc.popen.wait(timeout=10), 0)
        self.assertIn("--metrics_port_file: needs --metrics_listen", s.proc.log_tail())


class RequestIdTest(E2ECase):
    """Every call's request id: the caller's x-request-id, a W3C traceparent's trace id, or one
    generated; returned as x-request-id, in error messages, in the audit log and the logs."""

    def get_context(self, server, metadata, **request):
        request.setdefault("tenant", self.tenant)
        return server.context().GetContext.with_call(context_pb2.GetContextRequest(**request),
                                                     metadata=metadata, timeout=T)

    def test_request_ids_reach_the_caller_the_audit_log_and_the_logs(self):
        from onestory.v1 import privacy_pb2, privacy_pb2_grpc
        ref = H.by_id(self.resolve(self.a, C.IDENTIFIER_TYPE_APP_USER_ID,
                                   H.unique("rid-")).customer_id)
        given = H.unique("ticket-4711-")
        _, call = self.get_context(self.a, [("x-request-id", given)], customer=ref)
        self.assertIn(("x-request-id", given), call.initial_metadata())

        trace = uuid.uuid4().hex
        _, call = self.get_context(self.a, [("traceparent", "00-%s-00f067aa0ba902b7-01" % trace)],
                                   customer=ref)
        self.assertIn(("x-request-id", trace), call.initial_metadata())

        _, call = self.get_context(self.a, [("x-request-id", "not usable")], customer=ref)
        generated = dict(call.initial_metadata())["x-request-id"]
        self.assertRegex(generated, r"^[0-9a-f]{32}$")

        failing = H.unique("ticket-bad-")
        with self.assertRaises(grpc.RpcError) as raised:
            self.get_context(self.a, [("x-request-id", failing)])  # no customer
        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(raised.exception.details().endswith(" [request_id=%s]" % failing),
                        raised.exception.details())
        self.assertIn(("x-request-id", failing), raised.exception.trailing_metadata())

        audit = privacy_pb2_grpc.AuditServiceStub(self.a.channel)

        def audited():
            entries = audit.ListAuditEntries(privacy_pb2.ListAuditEntriesRequest(
                tenant=self.tenant, customer_id=ref.customer_id, page_size=100),
                timeout=T).entries
            return {e.request_id for e in entries} >= {given, trace, generated}
        H.wait_until(audited, 5, what="the calls' audit entries with their request ids")

    def test_json_logs_carry_request_ids_and_grpc_lines(self):
        server = H.Server(extra_args=("--log_format=json", "--log_level=debug"),
                          **self.env.redis.server_kwargs())
        given = H.unique("ticket-json-")
        try:
            with self.assertRaises(grpc.RpcError):
                self.get_context(server, [("x-request-id", given)])
            # A request whose grpc-timeout header is garbage: gRPC's HTTP/2 parser logs it,
            # through OneStory's logger.
            import socket
            import struct

            def frame(kind, flags, stream, payload):
                return (struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) +
                        struct.pack(">I", stream) + payload)

            def header(name, value):  # HPACK literal without indexing, new name
                return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
            headers = b"".join(header(n, v) for n, v in (
                (b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"x"),
                (b":path", b"/onestory.v1.ContextService/GetContext"),
                (b"content-type", b"application/grpc"), (b"te", b"trailers"),
                (b"grpc-timeout", b"garbage")))
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") +
                             frame(1, 0x5, 1, headers))  # SETTINGS; HEADERS, END_STREAM|HEADERS
                H.wait_until(lambda: "grpc.log" in open(server.proc.log_path).read(), 5,
                             what="gRPC's line about the bad header")
        finally:
            server.stop()
        with open(server.proc.log_path) as f:
            lines = [line for line in f.read().splitlines() if line]
        records = []
        for line in lines:
            records.append(json.loads(line))  # every line is one JSON object
        self.assertTrue(all({"ts", "level", "event"} <= set(r) for r in records))
        done = [r for r in records if r.get("request_id") == given]
        self.assertEqual([(r["event"], r["code"]) for r in done],
                         [("call.done", "INVALID_ARGUMENT")], done)
        self.assertEqual(done[0]["method"], "onestory.v1.ContextService/GetContext")
        grpc_lines = [r for r in records if r["event"] == "grpc.log"]
        self.assertTrue(grpc_lines, "no line from gRPC itself:\n" + "\n".join(lines[-20:]))
        self.assertIn("hpack_parser", grpc_lines[0]["source"])
        self.assertIn("grpc-timeout", grpc_lines[0]["message"])


class IdempotencyAcrossInstancesWatchTest(E2ECase):
    """A retried append is not pushed twice to watchers."""

    def test_duplicate_append_is_not_pushed_again(self):
        cid = self.resolve(self.a, C.IDENTIFIER_TYPE_DEVICE_ID, H.unique("dev-")).customer_id
        ref = H.by_id(cid)
        e = H.event(C.CHANNEL_WEB, C.EVENT_KIND_PAGE_VIEW, event_id="pv-1")
        stored = self.append(self.a, ref, [e]).results[0].event
        watch = H.WatchReader(self.b.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ref, after_cursor=stored.cursor))
        try:
            self.assertTrue(self.append(self.b, ref, [e]).results[0].duplicate)
            self.assertTrue(self.append(self.a, ref, [e]).results[0].duplicate)
            marker = self.append(self.a, ref, [H.event(C.CHANNEL_WEB, C.EVENT_KIND_PAGE_VIEW,
                                                       event_id="pv-2")]).results[0].event
            self.assertEqual(watch.next_event(5).event_id, marker.event_id)
            watch.expect_quiet(0.3)
        finally:
            watch.cancel()


class SingleServiceBinariesTest(E2ECase):

    def test_each_binary_serves_its_service_and_health(self):
        redis = self.env.redis
        identity = H.Server(binary_name="onestory-identity", **redis.server_kwargs())
        timeline = H.Server(binary_name="onestory-timeline", **redis.server_kwargs())
        # onestory-context configured through the environment instead of flags.
        context = H.Server(None, "onestory-context", env_extra=redis.server_env())
        servers = (identity, timeline, context)
        for s in servers:
            self.assertEqual(H.health_check(s.channel), H.HEALTH_SERVING, s.name)

        cid = identity.identity().Resolve(identity_pb2.ResolveRequest(
            tenant=self.tenant, identifier=H.phone("+1 212 555 0199"), create_if_missing=True),
            timeout=T).customer_id
        ev = H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, body="order A777")
        appended = timeline.timeline().Append(timeline_pb2.AppendRequest(
            tenant=self.tenant, customer=H.by_ident(C.IDENTIFIER_TYPE_PHONE, "12125550199"),
            events=[ev]), timeout=T)
        self.assertEqual(appended.customer_id, cid)
        ctx = context.context().GetContext(context_pb2.GetContextRequest(
            tenant=self.tenant, customer=H.by_id(cid)), timeout=T)
        self.assertEqual(ids(ctx.recent_events), [ev.event_id])
        self.assertEqual(ctx.profile.identifiers[0].identifier.value, "12125550199")
        # Each serves its own service only.
        self.assertCode(grpc.StatusCode.UNIMPLEMENTED, identity.context().GetContext,
                        context_pb2.GetContextRequest(tenant=self.tenant, customer=H.by_id(cid)))
        self.assertCode(grpc.StatusCode.UNIMPLEMENTED, timeline.identity().GetProfile,
                        identity_pb2.GetProfileRequest(tenant=self.tenant,
                                                       customer=H.by_id(cid)))
        self.assertCode(grpc.StatusCode.UNIMPLEMENTED, context.timeline().List,
                        timeline_pb2.ListRequest(tenant=self.tenant, customer=H.by_id(cid)))
        for s in servers:
            self.assertEqual(s.stop(), 0, "%s exit code\n%s" % (s.name, s.proc.log_tail()))

    def test_single_service_binaries_require_redis(self):
        for name in ("onestory-identity", "onestory-timeline", "onestory-context"):
            s = H.Server(None, name, wait=False)
            try:
                code = s.proc.popen.wait(timeout=10)
            except Exception:
                s.proc.kill()
                raise
            self.assertNotEqual(code, 0, name)
            self.assertIn("redis", s.proc.log_tail().lower(), name)

    def test_redis_cluster_flag_is_checked(self):
        # Not with --redis; seeds must be host:port (also from ONESTORY_REDIS_CLUSTER).
        cases = [
            (["--redis_cluster=127.0.0.1:7000"], "127.0.0.1:6379", None,
             "--redis and --redis_cluster"),
            (["--redis_cluster=127.0.0.1:7000,unix:/tmp/r.sock"], None, None, "unix:/tmp/r.sock"),
            ([], None, {"ONESTORY_REDIS_CLUSTER": "127.0.0.1"}, "'127.0.0.1' is not host:port"),
        ]
        for extra, redis, env, wanted in cases:
            s = H.Server(redis, "onestory-timeline", extra_args=extra, wait=False, env_extra=env)
            try:
                code = s.proc.popen.wait(timeout=10)
            except Exception:
                s.proc.kill()
                raise
            self.assertNotEqual(code, 0, extra)
            self.assertIn("--redis_cluster", s.proc.log_tail(), extra)
            self.assertIn(wanted, s.proc.log_tail(), extra)

    def test_onestory_server_health(self):
        self.assertEqual(H.health_check(self.a.channel), H.HEALTH_SERVING)
        self.assertEqual(H.health_check(self.b.channel), H.HEALTH_SERVING)


class EmbeddedDefaultTest(E2ECase):
    """onestory-server without --redis: a supervised redis-server under --data_dir."""

    def start(self, data_dir):
        s = H.Server(None, "onestory-server", data_dir=data_dir)
        kids = [p for p in s.child_pids() if p in H.redis_servers_using(data_dir)]
        s.proc.extra_pids.extend(kids)  # killed in teardown whatever happens
        self.assertEqual(len(kids), 1, "one embedded redis-server child expected")
        self.assertEqual(H.health_check(s.channel), H.HEALTH_SERVING)
        return s, kids[0]

    def sigterm(self, s, data_dir, timeout):
        """SIGTERM; returns a list of problems (empty when the server exited 0 and its
        redis-server is gone). Whatever happens, nothing is left running afterwards."""
        problems = []
        s.close_channel()
        s.proc.popen.send_signal(15)
        try:
            code = s.proc.popen.wait(timeout=timeout)
            if code != 0:
                problems.append("exit code %s after SIGTERM" % code)
        except Exception:
            problems.append("onestory-server still running %.0fs after SIGTERM; last log "
                            "lines:\n%s" % (timeout, s.proc.log_tail(3)))
            s.proc.popen.kill()  # the embedded redis-server should follow (PDEATHSIG)
            s.proc.popen.wait(timeout=5)
        try:
            H.wait_until(lambda: not H.redis_servers_using(data_dir), 3,
                         what="the embedded redis-server to exit")
        except TimeoutError:
            left = H.redis_servers_using(data_dir)
            problems.append("redis-server %s still running for %s after onestory-server "
                            "exited (SigBlk %s)" % (left, data_dir, _sigblk(left[0])))
        s.proc.kill()  # SIGKILLs the recorded redis-server if it is still there
        H.wait_until(lambda: not H.redis_servers_using(data_dir), 5,
                     what="the leftover redis-server to die")
        return problems

    def test_sigterm_exits_0_and_stops_its_redis(self):
        data_dir = os.path.join(H.new_tmp_dir("emb-"), "data")
        s, _ = self.start(data_dir)
        self.append(s, H.by_ident(C.IDENTIFIER_TYPE_EMAIL, "x@example.com"),
                    [H.event(C.CHANNEL_EMAIL, C.EVENT_KIND_MESSAGE)], create=True)
        problems = self.sigterm(s, data_dir, timeout=5)
        if problems:
            self.fail("\n".join(problems))

    def test_sigkill_leaves_no_orphan_redis(self):
        # libs/embedded: "the child is also told to exit if OneStory dies (PR_SET_PDEATHSIG),
        # so no orphan keeps the data directory busy".
        data_dir = os.path.join(H.new_tmp_dir("emb-"), "data")
        s, redis_pid = self.start(data_dir)
        s.close_channel()
        s.proc.popen.kill()
        s.proc.popen.wait(timeout=5)
        try:
            H.wait_until(lambda: not H.redis_servers_using(data_dir), 3,
                         what="the orphaned redis-server to exit")
            orphan = None
        except TimeoutError:
            orphan = "redis-server %d still running for %s after onestory-server was killed " \
                     "(SigBlk %s)" % (redis_pid, data_dir, _sigblk(redis_pid))
        finally:
            s.proc.kill()  # SIGKILLs the recorded redis-server if it is still there
        if orphan:
            self.fail(orphan)

    def test_data_survives_a_restart(self):
        data_dir = os.path.join(H.new_tmp_dir("emb-"), "data")  # created by the server
        s, _ = self.start(data_dir)
        ref = H.by_ident(C.IDENTIFIER_TYPE_EMAIL, "Durable@Example.com")
        ev = H.event(C.CHANNEL_EMAIL, C.EVENT_KIND_MESSAGE, body="Please keep this",
                     event_id="durable-1")
        resp = self.append(s, ref, [ev], create=True)
        cid = resp.customer_id
        # A clean stop is test_sigterm_exits_0_and_stops_its_redis's business; here only the
        # data matters (a stop that hangs is ended by force, which keeps written AOF data).
        self.sigterm(s, data_dir, timeout=3)
        self.assertTrue(os.path.exists(os.path.join(data_dir, "appendonlydir")) or
                        os.path.exists(os.path.join(data_dir, "appendonly.aof")),
                        "no append-only file under %s: %s" % (data_dir, os.listdir(data_dir)))

        s, _ = self.start(data_dir)
        ctx = self.context(s, H.by_ident(C.IDENTIFIER_TYPE_EMAIL, "durable@example.com"))
        self.assertEqual(ctx.profile.customer_id, cid)
        self.assertEqual(ids(ctx.recent_events), ["durable-1"])
        self.assertEqual(ctx.recent_events[0].body, "Please keep this")
        self.assertEqual(ctx.recent_events[0].cursor, resp.results[0].event.cursor)
        self.assertTrue(self.append(s, ref, [ev]).results[0].duplicate)  # dedup survived too
        self.sigterm(s, data_dir, timeout=3)
        self.assertEqual(H.redis_servers_using(data_dir), [])


def _sigblk(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    return line.split()[1]
    except OSError:
        pass
    return "?"


class RedisAclTest(E2ECase):
    """OneStory authenticates to Redis as an ACL user (--redis_user, --redis_password) on every
    connection, the pub/sub one included; a wrong password serves nothing."""

    def setUp(self):
        super().setUp()
        self.redis = H.Redis(extra_args=["--user", "default", "off", "--user", "onestory", "on",
                                         ">s3cret-pw", "~os:*", "&*", "+@all"])

    def test_acl_user_can_append_and_watch(self):
        s = H.Server(self.redis.address, extra_args=["--redis_user=onestory",
                                                     "--redis_password=s3cret-pw"])
        timeline = s.timeline()
        customer = H.by_ident(C.IDENTIFIER_TYPE_PHONE, "+1 415 555 0123")
        first = timeline.Append(timeline_pb2.AppendRequest(
            tenant=self.tenant, customer=customer, create_if_missing=True,
            events=[H.event(C.CHANNEL_WEB_CHAT, C.EVENT_KIND_MESSAGE, summary="hi")]), timeout=T)
        watch = H.WatchReader(timeline, timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=H.by_id(first.customer_id),
            after_cursor=first.results[0].event.cursor))
        timeline.Append(timeline_pb2.AppendRequest(
            tenant=self.tenant, customer=customer,
            events=[H.event(C.CHANNEL_VOICE, C.EVENT_KIND_CALL_STARTED, summary="call")]),
            timeout=T)
        self.assertEqual(watch.next_event(timeout=10).summary, "call")  # pub/sub authenticated too
        watch.call.cancel()

    def test_wrong_password_serves_nothing(self):
        s = H.Server(self.redis.address, extra_args=["--redis_user=onestory",
                                                     "--redis_password=wrong",
                                                     "--redis_command_timeout_ms=1000"])
        self.assertEqual(H.health_check(s.channel), H.HEALTH_NOT_SERVING)
        with self.assertRaises(grpc.RpcError) as e:
            s.timeline().Append(timeline_pb2.AppendRequest(
                tenant=self.tenant, customer=H.by_ident(C.IDENTIFIER_TYPE_PHONE, "14155550124"),
                create_if_missing=True,
                events=[H.event(C.CHANNEL_WEB_CHAT, C.EVENT_KIND_MESSAGE, summary="x")]),
                timeout=T)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("WRONGPASS", s.proc.log_tail(200))


class StorageRulesTest(E2ECase):
    """What onestory-server does to data on its own, from its flags: card numbers and configured
    patterns masked before storage (--redact_patterns_file), retention (--retention_file: a
    timeline cut to max_events at append, a customer inactive past inactive_after erased by the
    sweep and the erase in the audit log as key "retention")."""

    def setUp(self):
        super().setUp()
        from onestory.v1 import privacy_pb2, privacy_pb2_grpc
        self.privacy_pb2 = privacy_pb2
        self.redis = H.Redis()
        d = H.new_tmp_dir("rules-")
        patterns = os.path.join(d, "patterns")
        with open(patterns, "w") as f:
            f.write("# name regex\norder_ref ORD-[0-9]{6}\n")
        rules = os.path.join(d, "retention")
        with open(rules, "w") as f:
            f.write("* max_events=100000\n%s max_events=5 inactive_after=3s\n" % self.tenant)
        self.server = H.Server(self.redis.address, extra_args=[
            "--redact_patterns_file=" + patterns, "--retention_file=" + rules,
            "--retention_sweep_interval_ms=200"])
        self.audit = privacy_pb2_grpc.AuditServiceStub(self.server.channel)

    def test_cards_and_patterns_are_masked_before_storage(self):
        tl = self.server.timeline()
        r = tl.Append(timeline_pb2.AppendRequest(
            tenant=self.tenant, customer=H.by_ident(C.IDENTIFIER_TYPE_EMAIL, "mask@example.com"),
            create_if_missing=True, events=[H.event(
                C.CHANNEL_WEB_CHAT, C.EVENT_KIND_MESSAGE,
                summary="pay with 4111 1111 1111 1111 for ORD-123456",
                body="card 5500-0055-5555-5559, order 4111111111111112 (not a card)")]),
            timeout=T)
        stored = tl.List(timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(r.customer_id)), timeout=T).events[0]
        self.assertEqual(stored.summary, "pay with **** **** **** 1111 for [order_ref]")
        self.assertEqual(stored.body, "card ****-****-****-5559, order 4111111111111112 (not a card)")
        # A correction is masked like an append.
        from onestory.v1 import privacy_pb2_grpc
        redacted = privacy_pb2_grpc.PrivacyServiceStub(self.server.channel).RedactEvent(
            self.privacy_pb2.RedactEventRequest(
                tenant=self.tenant, customer=H.by_id(r.customer_id), event_id=stored.event_id,
                summary="paid with 378282246310005", body="", reason="ticket 42"), timeout=T)
        self.assertEqual(redacted.event.summary, "paid with ***********0005")
        self.assertEqual(redacted.event.body, "")
        # Nowhere in Redis either.
        for key in self.redis_keys():
            self.assertNotIn(b"4111 1111 1111 1111", self.redis_dump(key), key)
            self.assertNotIn(b"378282246310005", self.redis_dump(key), key)

    def test_every_free_text_field_is_masked_through_the_binary(self):
        """Case topic and note, handoff reason, a fact value, a profile's display name: masked in
        the answer, on a retry, in every read and in every Redis key (the audit log too)."""
        from google.protobuf import field_mask_pb2
        from onestory.v1 import (case_pb2, case_pb2_grpc, conversation_pb2,
                                 conversation_pb2_grpc)
        said = "card 4111 1111 1111 1111 for ORD-654321"
        stored = "card **** **** **** 1111 for [order_ref]"
        cid = self.server.identity().Resolve(identity_pb2.ResolveRequest(
            tenant=self.tenant, identifier=C.Identifier(
                type=C.IDENTIFIER_TYPE_PHONE, value="14155550191"), create_if_missing=True),
            timeout=T).customer_id
        cases = case_pb2_grpc.CaseServiceStub(self.server.channel)
        opened = cases.OpenCase(case_pb2.OpenCaseRequest(
            tenant=self.tenant, customer=H.by_id(cid), case_id="case-1", topic=said,
            actor=C.Actor(type=C.Actor.TYPE_AGENT, id="a1"), channel=C.CHANNEL_VOICE),
            timeout=T)
        self.assertEqual(opened.case.topic, stored)
        update = case_pb2.UpdateCaseRequest(
            tenant=self.tenant, customer=H.by_id(cid), case_id="case-1", note=said,
            actor=C.Actor(type=C.Actor.TYPE_AGENT, id="a1"), channel=C.CHANNEL_VOICE,
            request_id="u-1")
        for duplicate in (False, True):  # the first call and its retry answer alike
            r = cases.UpdateCase(update, timeout=T)
            self.assertEqual(r.duplicate, duplicate)
            self.assertEqual(r.case.last_note, stored)
            self.assertEqual(r.event.body, stored)
        conv = conversation_pb2_grpc.ConversationServiceStub(self.server.channel)
        conv.StartConversation(conversation_pb2.StartConversationRequest(
            tenant=self.tenant, customer=H.by_id(cid), conversation_id="cv-1",
            channel=C.CHANNEL_CHATBOT, served_by=C.Actor(type=C.Actor.TYPE_BOT, id="b1")),
            timeout=T)
        handoff = conversation_pb2.HandoffRequest(
            tenant=self.tenant, customer=H.by_id(cid), conversation_id="cv-1",
            **{"from": C.Actor(type=C.Actor.TYPE_BOT, id="b1")},
            to=C.Actor(type=C.Actor.TYPE_AGENT, id="a1"), reason=said, request_id="h-1",
            collected=[C.Fact(type=C.FACT_TYPE_COLLECTED, name="card", value=said)])
        for duplicate in (False, True):
            r = conv.Handoff(handoff, timeout=T)
            self.assertEqual(r.duplicate, duplicate)
            self.assertEqual(r.event.attributes["reason"], stored)
        profile = self.server.identity().UpdateProfile(identity_pb2.UpdateProfileRequest(
            tenant=self.tenant, customer_id=cid, profile=identity_pb2.Profile(display_name=said),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"])), timeout=T).profile
        self.assertEqual(profile.display_name, stored)

        got = cases.GetCase(case_pb2.GetCaseRequest(
            tenant=self.tenant, customer=H.by_id(cid), case_id="case-1"), timeout=T)
        self.assertEqual((got.topic, got.last_note), (stored, stored))
        ctx = self.server.context().GetContext(context_pb2.GetContextRequest(
            tenant=self.tenant, customer=H.by_id(cid), recent_events=50,
            audience=C.AUDIENCE_SUPERVISOR), timeout=T)
        self.assertEqual(ctx.profile.display_name, stored)
        self.assertEqual(ctx.open_cases[0].last_note, stored)
        self.assertEqual([f.value for f in ctx.facts], [stored])
        for e in ctx.recent_events:
            text = e.summary + e.body + "".join(e.attributes.values())
            self.assertNotIn("4111 1111 1111 1111", text)
            self.assertNotIn("ORD-654321", text)
        self.redis_call("CONFIG", "SET", "rdbcompression", "no")  # DUMPs hold the text as is
        for key in self.redis_keys():
            self.assertNotIn(b"4111 1111 1111 1111", self.redis_dump(key), key)
            self.assertNotIn(b"ORD-654321", self.redis_dump(key), key)

    def test_max_events_and_inactive_customers_expire(self):
        tl = self.server.timeline()
        customer = H.by_ident(C.IDENTIFIER_TYPE_PHONE, "+1 415 555 0177")
        first = None
        for i in range(12):
            r = tl.Append(timeline_pb2.AppendRequest(
                tenant=self.tenant, customer=customer, create_if_missing=True,
                events=[H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, summary="m%d" % i)]),
                timeout=T)
            first = first or r.customer_id
        events = tl.List(timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(first), page_size=50), timeout=T).events
        self.assertEqual([e.summary for e in events], ["m%d" % i for i in range(11, 6, -1)])
        # Inactive for 3 s: the sweep (every 200 ms) erases it.
        H.wait_until(lambda: H.rpc_code(tl.List, timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(first)))[0] == grpc.StatusCode.NOT_FOUND,
            timeout=15, what="the inactive customer to be erased")
        code, details = H.rpc_code(tl.List, timeline_pb2.ListRequest(
            tenant=self.tenant, customer=customer))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)  # its phone is unknown now
        # The sweep records its erase in the audit log once the erase has finished, so the entry
        # may land just after the customer reads as gone.
        def audit():
            return self.audit.ListAuditEntries(self.privacy_pb2.ListAuditEntriesRequest(
                tenant=self.tenant, customer_id=first), timeout=T).entries
        H.wait_until(lambda: any(e.key_id == "retention" for e in audit()), timeout=15,
                     what="the retention erase in the audit log")
        entries = audit()
        erases = [e for e in entries if e.key_id == "retention"]
        self.assertEqual(len(erases), 1, entries)
        self.assertEqual(erases[0].method, "onestory.v1.PrivacyService/EraseCustomer")
        self.assertIn("reason=retention: inactive", erases[0].detail)
        for e in entries:  # the phone it was named by is nowhere in the log
            self.assertNotIn("5550177", e.customer_id + e.named_by + e.detail)
        leftovers = [k for k in self.redis_keys() if first.encode() in k]
        self.assertLessEqual(len(leftovers), 1, leftovers)  # at most the tombstone profile

    def redis_keys(self):
        return self.redis_call("KEYS", "*")

    def redis_dump(self, key):
        return self.redis_call("DUMP", key) or b""

    def redis_call(self, *argv):
        return redis_call(self.redis.port, *argv)


def redis_call(port, *argv):
    """One command to the redis-server at port, over RESP; its reply (errors raise)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        out = b"*%d\r\n" % len(argv)
        for a in argv:
            a = a if isinstance(a, bytes) else a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        f = s.makefile("rb")
        return _read_reply(f)


def _read_reply(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"*":
        n = int(rest)
        return [] if n < 0 else [_read_reply(f) for _ in range(n)]
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"-":
        raise RuntimeError(rest.decode())
    return rest


class ShutdownTest(E2ECase):

    def test_sigterm_ends_open_watch_with_unavailable_and_exits_0(self):
        s = H.Server(**self.env.redis.server_kwargs())
        cid = self.resolve(s, C.IDENTIFIER_TYPE_CRM_ID, H.unique("crm-")).customer_id
        ref = H.by_id(cid)
        e = self.append(s, ref, [H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE)]).results[0].event
        replay = H.WatchReader(s.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ref, from_start=True))
        live = H.WatchReader(s.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ref, after_cursor=e.cursor))
        try:
            self.assertEqual(replay.next_event(5).event_id, e.event_id)  # the watch is open
            e2 = self.append(self.a, ref, [H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE)])
            e2 = e2.results[0].event
            self.assertEqual(replay.next_event(5).event_id, e2.event_id)
            self.assertEqual(live.next_event(5).event_id, e2.event_id)
            started = time.monotonic()
            s.proc.popen.send_signal(15)
            for w in (replay, live):
                code, details = w.wait_end(timeout=5)
                self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, details)
            self.assertEqual(s.proc.popen.wait(timeout=10), 0, s.proc.log_tail())
            self.assertLess(time.monotonic() - started, 5.0, "shutdown took too long")
        finally:
            replay.cancel()
            live.cancel()
            s.stop()


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
