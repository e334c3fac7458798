#!/usr/bin/python3
"""OneStory's reference agent console (clients/console, served at /console/ on the HTTP listener
of onestory-server) in a real browser: headless Debian chromium driven by drive_page.mjs
(npm's playwright-core), against onestory-server on a real Redis. What the gRPC API writes shows
on the page (the screen pop, and live over Server-Sent Events), what the page writes is stored
as the token's agent, the stream comes back after a server restart, errors are shown in words,
and a supervisor merges a suggested customer and undoes it. No page may throw an uncaught
exception. Screenshots go to <build dir>/tests/browser/artifacts/.

Run through ctest (e2e_console) or alone, after bash tools/install-browser-tools.sh:
  /usr/bin/python3 tests/browser/console_test.py --build-dir build [-v] [-k screen_pop]
Options: --build-dir, --bin-dir (as the e2e tests), --browser-tools DIR (default
<build dir>/browser-tools: where playwright-core is installed). Exits 77 (skipped) when
/usr/bin/chromium or node is missing.
"""

import json
import os
import queue
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

CHROMIUM = "/usr/bin/chromium"
DRIVER = os.path.join(HERE, "drive_page.mjs")


def _take_browser_tools_option():
    """Removes --browser-tools DIR from sys.argv (the e2e runner does not know it); its value."""
    value = None
    for i, arg in enumerate(list(sys.argv)):
        if arg == "--browser-tools" and i + 1 < len(sys.argv):
            value = sys.argv[i + 1]
            del sys.argv[i:i + 2]
            break
        if arg.startswith("--browser-tools="):
            value = arg.split("=", 1)[1]
            del sys.argv[i]
            break
    return value


_TOOLS_OPTION = _take_browser_tools_option()
if not os.access(CHROMIUM, os.X_OK) or shutil.which("node") is None:
    sys.stdout.write("e2e_console skipped: %s not found; apt-get install -y chromium nodejs "
                     "(or bash tools/install-deps.sh --test), then "
                     "bash tools/install-browser-tools.sh\n"
                     % (CHROMIUM if not os.access(CHROMIUM, os.X_OK) else "node"))
    sys.exit(77)

import harness as H  # noqa: E402
from harness import C, E2ECase, identity_pb2, timeline_pb2  # noqa: E402
from agent_token_test import AGENT_SCOPES, b64url, mint  # noqa: E402

from onestory.v1 import conversation_pb2 as V, conversation_pb2_grpc  # noqa: E402

T = H.RPC_TIMEOUT
SUPERVISOR_SCOPES = AGENT_SCOPES + " context.read.supervisor identity.admin"
TOOLS = os.path.abspath(_TOOLS_OPTION or os.path.join(H.BUILD_DIR, "browser-tools"))
ARTIFACTS = os.path.join(H.BUILD_DIR, "tests", "browser", "artifacts")
LIVE = '#status[data-state="live"]'


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def q(value):
    """A CSS attribute value, quoted."""
    return json.dumps(value)


class Page:
    """One chromium page under drive_page.mjs: each method sends one command and reads its
    answer within the command's timeout (plus a margin for the browser itself). Page errors
    (uncaught exceptions) reported with any answer are kept in page_errors."""

    START_TIMEOUT_S = 30.0
    MARGIN_S = 15.0

    def __init__(self, url, log_path):
        self.url = url
        self.log_path = log_path
        self.page_errors = []
        self._id = 0
        self._lines = queue.Queue()
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            ["node", DRIVER, "--tools", TOOLS, "--url", url, "--screenshot-dir", ARTIFACTS],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            preexec_fn=H._die_with_parent, close_fds=True)
        threading.Thread(target=self._read_lines, daemon=True).start()
        ready = self._next(self.START_TIMEOUT_S)
        if not ready.get("ok"):
            self.close()
            raise AssertionError("the page driver could not open %s: %s\n%s" %
                                 (url, ready.get("error"), self.log_tail()))

    def _read_lines(self):
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace"))
        self._lines.put(None)

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _next(self, timeout):
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the page driver did not answer within %.0fs" % timeout)
        if line is None:
            raise AssertionError("the page driver exited (code %s):\n%s" %
                                 (self.proc.wait(), self.log_tail()))
        reply = json.loads(line)
        self.page_errors.extend(reply.get("page_errors", []))
        return reply

    def call(self, cmd, timeout_ms=5000, **fields):
        """Sends {"cmd": cmd, ...}; returns its answer (ok or not)."""
        self._id += 1
        fields.update(cmd=cmd, id=self._id, timeout_ms=timeout_ms)
        self.proc.stdin.write((json.dumps(fields) + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout_ms / 1000.0 + self.MARGIN_S
        while True:
            reply = self._next(max(0.1, deadline - time.monotonic()))
            if reply.get("id") == self._id:  # an earlier command's late answer is skipped
                return reply

    def must(self, cmd, **fields):
        reply = self.call(cmd, **fields)
        if not reply.get("ok"):
            raise AssertionError("%s %s failed: %s\n%s" % (cmd, fields, reply.get("error"),
                                                          self.describe()))
        return reply

    def describe(self):
        """What the page shows of its state, for a failure's message."""
        out = []
        try:
            for sel, name in (("#status", "data-state"),):
                r = self.call("attr", selector=sel, name=name, timeout_ms=500)
                out.append("%s[%s] = %s" % (sel, name, r.get("value", r.get("error"))))
            r = self.call("text", selector="#error", timeout_ms=500)
            out.append("#error text: %r" % r.get("text", r.get("error")))
            name = "failed-%s.png" % os.path.splitext(os.path.basename(self.log_path))[0]
            shot = self.call("screenshot", path=name, timeout_ms=5000)
            out.append("screenshot: %s" % shot.get("path", shot.get("error")))
            msgs = self.call("console").get("messages", [])[-8:]
            out.extend("console %s: %s %s" % (m["type"], m["text"], m["location"]) for m in msgs)
        except AssertionError as e:
            out.append("(no more: %s)" % e)
        if self.page_errors:
            out.append("page errors: %s" % self.page_errors)
        return "\n".join(out)

    def wait(self, selector, timeout_ms=5000, state=None):
        """Waits until selector matches (state: "attached" by default, "visible", "hidden",
        "detached"); returns the milliseconds the page took."""
        fields = {"selector": selector}
        if state:
            fields["state"] = state
        reply = self.call("wait", timeout_ms=timeout_ms, **fields)
        if not reply.get("ok"):
            raise AssertionError("waited %d ms for %s%s: %s\n%s" % (
                timeout_ms, selector, " (%s)" % state if state else "", reply.get("error"),
                self.describe()))
        return reply["ms"]

    def text(self, selector):
        return self.must("text", selector=selector)["text"]

    def texts(self, selector):
        return self.must("text", selector=selector, all=True)["texts"]

    def attr(self, selector, name):
        return self.must("attr", selector=selector, name=name)["value"]

    def attrs(self, selector, name):
        """The attribute of every match, in document order."""
        return [self.attr("%s >> nth=%d" % (selector, i), name)
                for i in range(self.count(selector))]

    def count(self, selector):
        return self.must("count", selector=selector)["count"]

    def visible(self, selector):
        return self.must("visible", selector=selector)["visible"]

    def fill(self, selector, value):
        self.must("fill", selector=selector, value=value)

    def select(self, selector, value):
        self.must("select", selector=selector, value=value)

    def click(self, selector):
        self.must("click", selector=selector)

    def screenshot(self, name):
        return self.must("screenshot", path=name)["path"]

    def uncaught_exceptions(self):
        """Every uncaught exception the page threw so far."""
        errors = self.must("console")["page_errors"]
        return errors or self.page_errors

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd":"quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class ConsoleTest(E2ECase):
    """One onestory-server with the HTTP listener on a port of its own (kept across a restart)
    and an HS256 agent-token key for the class's tenant."""

    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.dir = H.new_tmp_dir("console-")
        cls.tenant_ = H.tenant()
        cls.secret = b64url(secrets.token_bytes(32))
        cls.keys_path = os.path.join(cls.dir, "agent_token_keys")
        with open(cls.keys_path, "w") as f:
            f.write("# tenant kid alg key\n%s k1 HS256 %s\n" % (cls.tenant_, cls.secret))
        cls.pages = 0
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            cls.http_port = H.free_port()
            try:
                cls.server = cls.start_server()
                break
            except Exception:  # noqa: BLE001 (the server exits when its port is taken)
                if attempt == 2:
                    raise

    @classmethod
    def start_server(cls):
        """onestory-server listening for HTTP on cls.http_port; waits for the HTTP listener."""
        port_file = os.path.join(cls.dir, "http_port")
        if os.path.exists(port_file):
            os.remove(port_file)
        server = H.Server(extra_args=("--http_listen=127.0.0.1:%d" % cls.http_port,
                                      "--http_port_file=" + port_file,
                                      "--agent_token_keys_file=" + cls.keys_path,
                                      "--http_heartbeat_ms=1000"),
                          **H.env().redis.server_kwargs())
        H.wait_until(lambda: _read(port_file).strip(), 10, what="the HTTP port file")
        return server

    @classmethod
    def ensure_server(cls):
        """Starts the server again if a test stopped it and failed before starting it."""
        if not cls.server.proc.alive():
            cls.server.stop()
            cls.server = cls.start_server()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        super().setUp()
        self.tenant = self.tenant_

    @property
    def srv(self):
        return type(self).server  # the restart test replaces it

    # Helpers ---------------------------------------------------------------------------------

    def token(self, audience="AGENT", sub="agent-console-1", **claims):
        scope = SUPERVISOR_SCOPES if audience == "SUPERVISOR" else AGENT_SCOPES
        return mint(self.secret, self.tenant, sub=sub, audience=audience, scope=scope, **claims)

    def open(self, token=None, **query):
        """A page on the console for the customer named by query (phone=..., email=...)."""
        url = "http://127.0.0.1:%d/console/" % self.http_port
        if query:
            url += "?" + urllib.parse.urlencode(query)
        if token:
            url += "#access_token=" + token
        type(self).pages += 1
        page = Page(url, os.path.join(self.dir, "driver-%d.log" % self.pages))
        self.addCleanup(page.close)
        return page

    def assertNoUncaughtExceptions(self, page):
        self.assertEqual(page.uncaught_exceptions(), [], "the page threw")

    def new_phone(self):
        return "+1415%07d" % random.randint(2000000, 9999999)

    def conv(self):
        return conversation_pb2_grpc.ConversationServiceStub(self.srv.channel)

    def new_customer(self):
        """(customer id, phone as typed, phone as stored) of a new customer."""
        phone = self.new_phone()
        r = self.resolve(self.srv, C.IDENTIFIER_TYPE_PHONE, phone)
        self.assertTrue(r.created)
        return r.customer_id, phone, r.identifier.value

    def record_facts(self, cid, *facts):
        return self.conv().RecordFacts(V.RecordFactsRequest(
            tenant=self.tenant, customer=H.by_id(cid), channel=C.CHANNEL_CHATBOT,
            actor=C.Actor(type=C.Actor.TYPE_BOT, id="bot-1"), facts=list(facts)), timeout=T)

    def append_one(self, cid, channel=C.CHANNEL_VOICE, kind=C.EVENT_KIND_CALL_STARTED,
                   summary="called about the router"):
        e = H.event(channel, kind, summary=summary)
        self.append(self.srv, H.by_id(cid), [e])
        return e.event_id

    def merge_history(self, cid):
        return self.srv.identity().GetMergeHistory(identity_pb2.GetMergeHistoryRequest(
            tenant=self.tenant, customer_id=cid), timeout=T).merges

    # Tests -----------------------------------------------------------------------------------

    def test_a_screen_pop_shows_what_grpc_recorded_a_moment_before(self):
        cid, phone, stored_phone = self.new_customer()
        facts = self.record_facts(
            cid, C.Fact(type=C.FACT_TYPE_COLLECTED, name="order_number", value="A1234"),
            C.Fact(type=C.FACT_TYPE_STEP_TRIED, name="restart_router", value="no change"))
        call = self.append_one(cid)

        page = self.open(self.token(), phone=phone)
        page.wait(LIVE, 10000)
        print("console: screenshot %s" % page.screenshot("console.png"))
        self.assertEqual(page.attr("#profile", "data-customer-id"), cid)
        self.assertIn("A1234", page.text('#facts li[data-fact="FACT_TYPE_COLLECTED:order_number"]'))
        self.assertIn("no change",
                      page.text('#facts li[data-fact="FACT_TYPE_STEP_TRIED:restart_router"]'))
        page.wait("#identifiers li[data-identifier=%s]" % q("IDENTIFIER_TYPE_PHONE:" +
                                                             stored_phone))
        # Newest first: the call, then the FACTS_RECORDED event before it.
        shown = page.attrs("#timeline li[data-event-id]", "data-event-id")
        self.assertIn(call, shown)
        self.assertIn(facts.event.event_id, shown)
        self.assertLess(shown.index(call), shown.index(facts.event.event_id), shown)
        self.assertEqual(page.attr("#timeline li[data-event-id=%s]" % q(call), "data-channel"),
                         "CHANNEL_VOICE")
        self.assertIn("called about the router",
                      page.text("#timeline li[data-event-id=%s]" % q(call)))
        self.assertFalse(page.visible("#error"))
        self.assertIsNotNone(page.attr("#error", "hidden"), "#error is not hidden")
        self.assertFalse(page.visible("#token-form"), "#token-form shown with a token")
        self.assertNoUncaughtExceptions(page)

    def test_an_append_through_grpc_appears_in_the_open_page(self):
        cid, phone, _ = self.new_customer()
        page = self.open(self.token(), phone=phone)
        page.wait(LIVE, 10000)
        started = time.monotonic()
        event_id = self.append_one(cid, C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, "is it fixed?")
        page.wait("#timeline li[data-event-id=%s]" % q(event_id), 5000)
        print("console: gRPC append to page in %d ms" % ((time.monotonic() - started) * 1000))
        self.assertIn("is it fixed?", page.text("#timeline li[data-event-id=%s]" % q(event_id)))
        self.assertEqual(page.attr("#timeline li[data-event-id]", "data-event-id"), event_id,
                         "the newest event is not first")
        self.assertNoUncaughtExceptions(page)

    def test_channel_buttons_filter_the_timeline(self):
        cid, phone, _ = self.new_customer()
        voice = self.append_one(cid, C.CHANNEL_VOICE, C.EVENT_KIND_CALL_STARTED, "a call")
        sms = self.append_one(cid, C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, "a text")
        page = self.open(self.token(), phone=phone)
        page.wait(LIVE, 10000)
        voice_li = "#timeline li[data-event-id=%s]" % q(voice)
        sms_li = "#timeline li[data-event-id=%s]" % q(sms)
        page.wait(voice_li, state="visible")
        page.click('#channels button[data-channel="CHANNEL_SMS"]')
        page.wait(voice_li, 2000, state="hidden")
        page.wait(sms_li, 2000, state="visible")
        page.click('#channels button[data-channel="ALL"]')
        page.wait(voice_li, 2000, state="visible")
        page.wait(sms_li, 2000, state="visible")
        self.assertNoUncaughtExceptions(page)

    def test_a_note_and_a_fact_written_on_the_page_are_stored_as_the_agent(self):
        cid, phone, _ = self.new_customer()
        page = self.open(self.token(sub="agent-42"), phone=phone)
        page.wait(LIVE, 10000)
        page.fill("#note-text", "customer wants a callback after 5pm")
        page.click("#note-send")

        def stored_note():
            events = self.srv.timeline().List(timeline_pb2.ListRequest(
                tenant=self.tenant, customer=H.by_id(cid), page_size=50), timeout=T).events
            return next((e for e in events if e.kind == C.EVENT_KIND_NOTE), None)
        note = H.wait_until(stored_note, 5, interval=0.05, what="the note through gRPC")
        self.assertEqual((note.actor.type, note.actor.id), (C.Actor.TYPE_AGENT, "agent-42"))
        self.assertEqual(note.channel, C.CHANNEL_WEB)
        self.assertIn("customer wants a callback after 5pm", note.summary + note.body)
        page.wait("#timeline li[data-event-id=%s]" % q(note.event_id), 5000)
        self.assertIn("callback", page.text("#timeline li[data-event-id=%s]" % q(note.event_id)))

        page.select("#fact-type", "FACT_TYPE_STEP_TRIED")
        page.fill("#fact-name", "factory_reset")
        page.fill("#fact-value", "done, no change")
        page.click("#fact-send")

        def stored_fact():
            facts = self.context(self.srv, H.by_id(cid)).facts
            return next((f for f in facts if f.name == "factory_reset"), None)
        fact = H.wait_until(stored_fact, 5, interval=0.05, what="the fact through gRPC")
        self.assertEqual((fact.type, fact.value), (C.FACT_TYPE_STEP_TRIED, "done, no change"))
        self.assertEqual((fact.recorded_by.type, fact.recorded_by.id),
                         (C.Actor.TYPE_AGENT, "agent-42"))
        self.assertEqual(fact.channel, C.CHANNEL_WEB)
        page.wait('#facts li[data-fact="FACT_TYPE_STEP_TRIED:factory_reset"]', 5000)
        self.assertIn("done, no change",
                      page.text('#facts li[data-fact="FACT_TYPE_STEP_TRIED:factory_reset"]'))
        self.assertNoUncaughtExceptions(page)

    def test_errors_are_shown_in_words(self):
        _, phone, _ = self.new_customer()
        expired = self.open(self.token(exp=int(time.time()) - 120), phone=phone)
        expired.wait('#status[data-state="error"]', 10000)
        expired.wait("#error", state="visible")
        self.assertIn("expired", expired.text("#error"))
        self.assertNoUncaughtExceptions(expired)

        unknown = self.open(self.token(), phone=self.new_phone())
        unknown.wait('#status[data-state="error"]', 10000)
        self.assertIn("not found", unknown.text("#error").lower().replace("_", " "))
        self.assertNoUncaughtExceptions(unknown)

    def test_without_a_token_the_page_asks_for_one(self):
        cid, phone, _ = self.new_customer()
        page = self.open(phone=phone)
        page.wait("#token-form", state="visible")
        page.fill("#token-input", self.token())
        page.click("#token-submit")
        page.wait(LIVE, 10000)
        self.assertEqual(page.attr("#profile", "data-customer-id"), cid)
        self.assertNoUncaughtExceptions(page)

    def test_a_supervisor_merges_a_suggested_customer_and_undoes_it(self):
        email = H.unique("ann-") + "@example.com"
        known = self.resolve(self.srv, C.IDENTIFIER_TYPE_EMAIL, email).customer_id
        caller, phone, _ = self.new_customer()
        profile = identity_pb2.UpdateProfileRequest(tenant=self.tenant, customer_id=caller)
        profile.profile.attributes["email"] = email.upper()
        profile.update_mask.paths.append("attributes.email")
        self.srv.identity().UpdateProfile(profile, timeout=T)
        suggested = self.srv.identity().SuggestMerges(identity_pb2.SuggestMergesRequest(
            tenant=self.tenant, customer=H.by_id(caller)), timeout=T).suggestions
        self.assertEqual([s.customer_id for s in suggested], [known])

        page = self.open(self.token("SUPERVISOR", sub="sup-1"), phone=phone)
        page.wait(LIVE, 10000)
        page.wait("#supervisor", state="visible")
        candidate = "#suggestions li[data-customer-id=%s]" % q(known)
        page.wait(candidate, 5000)
        page.click(candidate + " button.merge")

        def merged():
            return next((m for m in self.merge_history(caller)
                         if m.state == identity_pb2.MergeRecord.STATE_MERGED), None)
        merge = H.wait_until(merged, 10, interval=0.05, what="the merge through gRPC")
        self.assertEqual((merge.source_customer_id, merge.target_customer_id), (known, caller))
        self.assertEqual(merge.actor.id, "sup-1")
        row = "#merge-history li[data-merge-id=%s]" % q(merge.merge_id)
        page.wait(row + '[data-state="STATE_MERGED"]', 5000)
        print("console: screenshot %s" % page.screenshot("console-supervisor.png"))

        page.click(row + " button.unmerge")
        H.wait_until(lambda: [m.state for m in self.merge_history(caller)] ==
                     [identity_pb2.MergeRecord.STATE_UNMERGED], 10, interval=0.05,
                     what="the unmerge through gRPC")
        page.wait(row + '[data-state="STATE_UNMERGED"]', 5000)
        self.assertEqual(page.count(row + " button.unmerge"), 0)
        self.assertNoUncaughtExceptions(page)

        # An agent's page of the same customer has no supervisor section.
        agent = self.open(self.token(), phone=phone)
        agent.wait(LIVE, 10000)
        self.assertFalse(agent.visible("#supervisor"))
        self.assertNoUncaughtExceptions(agent)

    def test_the_page_recovers_its_stream_after_a_server_restart(self):
        cid, phone, _ = self.new_customer()
        page = self.open(self.token(), phone=phone)
        page.wait(LIVE, 10000)
        self.addCleanup(self.ensure_server)
        stopping = type(self).server
        stopping.proc.popen.send_signal(signal.SIGTERM)  # the page sees the stream end now
        page.wait('#status[data-state="reconnecting"]', 10000)
        self.assertEqual(stopping.stop(), 0)
        type(self).server = self.start_server()  # the same HTTP port
        event_id = self.append_one(cid, C.CHANNEL_WEB_CHAT, C.EVENT_KIND_MESSAGE, "still there?")
        page.wait("#timeline li[data-event-id=%s]" % q(event_id), 15000)
        page.wait(LIVE, 15000)
        self.assertNoUncaughtExceptions(page)


if __name__ == "__main__":
    if not os.path.isdir(os.path.join(TOOLS, "node_modules", "playwright-core")):
        sys.stdout.write("e2e_console: playwright-core is not installed under %s: run bash "
                         "tools/install-browser-tools.sh (or pass --browser-tools DIR)\n" % TOOLS)
        sys.exit(1)
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
