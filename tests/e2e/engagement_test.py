#!/usr/bin/python3
"""OneStory end-to-end tests of the engagement services (ConversationService, CaseService,
AlertService and what GetContext shows of them), through the real onestory-server binary.

- EngagementJourneyTest: the journey of the issue. A customer chats with a bot on the web (the
  bot records a verification, the order number and a step already tried, and opens the case
  "order 1234 not delivered" in the tenant's journey at stage "shipped"); the bot hands off to a
  human agent on web chat with the transcript and what it collected (a retry of the handoff is a
  duplicate); the agent promises a refund and writes an internal note that neither the bot nor
  the customer's app ever sees; the next day the customer calls: the phone agent, who knows only
  the calling number, sees "contacting again about order 1234 not delivered", the facts, the case
  and its promise; then the customer walks into a store with a loyalty card: third contact, one
  REPEAT_CONTACT alert, acknowledged by a supervisor.
- EngagementAlertsTest: a negative sentiment streak raises one NEGATIVE_STREAK alert, seen by a
  WatchAlerts stream opened before; an overdue promise raises one PROMISE_OVERDUE alert although
  two instances look for due promises, and a promise followed by an update raises none.
- EngagementBadInputTest: unknown case, stage not in the journey, promised_by in the past, facts
  of unknown type, a handoff of an ended conversation, ... each refused with its code, and each
  followed by a check that nothing changed (the timeline, GetContext, the case).

The chat happens with occurred_at ~25 hours in the past and the call now (occurred_at may be at
most an hour ahead), so the call is "the next day".

One redis-server and two onestory-server instances on it (flags: --repeat_contact_days=7
--alert_repeat_contacts=3 --alert_negative_streak=3 --promise_scan_interval_ms=100); a fresh
tenant per test. About 6 s. Run by ctest as e2e_engagement; alone:
  /usr/bin/python3 tests/e2e/engagement_test.py --build-dir build [-v] [-k pattern]
"""

import os
import queue
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402  (parses --build-dir and imports the generated stubs)
from harness import C, context_pb2, identity_pb2, timeline_pb2  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from onestory.v1 import alert_pb2 as A, alert_pb2_grpc  # noqa: E402
from onestory.v1 import case_pb2 as K, case_pb2_grpc  # noqa: E402
from onestory.v1 import conversation_pb2 as V, conversation_pb2_grpc  # noqa: E402

T = H.RPC_TIMEOUT
DAY = 24 * 3600
STAGES = ["ordered", "shipped", "delivered", "return_requested", "refunded"]
TOPIC = "order 1234 not delivered"
AGAIN = "contacting again about " + TOPIC

SERVER_FLAGS = ("--repeat_contact_days=7", "--alert_repeat_contacts=3",
                "--alert_negative_streak=3", "--promise_scan_interval_ms=100")

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED = grpc.StatusCode.FAILED_PRECONDITION

CUSTOMER_A = C.AUDIENCE_CUSTOMER
BOT_A = C.AUDIENCE_BOT
AGENT_A = C.AUDIENCE_AGENT
SUPERVISOR_A = C.AUDIENCE_SUPERVISOR

VER, COL, STEP, PROM = (C.FACT_TYPE_VERIFICATION, C.FACT_TYPE_COLLECTED, C.FACT_TYPE_STEP_TRIED,
                        C.FACT_TYPE_PROMISE)


def actor(type_, id_=""):
    return C.Actor(type=type_, id=id_)


BOT = actor(C.Actor.TYPE_BOT, "helpbot")
CUSTOMER = actor(C.Actor.TYPE_CUSTOMER)
CHAT_AGENT = actor(C.Actor.TYPE_AGENT, "agent-ann")
PHONE_AGENT = actor(C.Actor.TYPE_AGENT, "agent-bob")
STORE_AGENT = actor(C.Actor.TYPE_AGENT, "store-7-carl")
SUPERVISOR = actor(C.Actor.TYPE_AGENT, "supervisor-sue")


def ts(seconds):
    return H.ts(seconds)


def fact(type_, name, value="", visibility=C.AUDIENCE_UNSPECIFIED, expires_at=None, due_at=None,
         **kw):
    f = C.Fact(type=type_, name=name, value=value, visibility=visibility, **kw)
    if expires_at is not None:
        f.expires_at.CopyFrom(ts(expires_at))
    if due_at is not None:
        f.due_at.CopyFrom(ts(due_at))
    return f


def keys(facts):
    return [(f.type, f.name) for f in facts]


def text(msg):
    return text_format.MessageToString(msg, as_utf8=True)


def paths_holding(msg, needle, prefix=""):
    """The fields of `msg` (recursively) whose string value contains `needle`, as paths like
    "open_cases[0].last_note"; empty when none."""
    found = []
    for field, value in msg.ListFields():
        name = prefix + field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            found.extend("%s[%r]" % (name, k) for k, v in value.items()
                         if needle in str(k) or needle in str(v))
            continue
        items = list(value) if field.label == field.LABEL_REPEATED else [value]
        for i, item in enumerate(items):
            path = "%s[%d]" % (name, i) if field.label == field.LABEL_REPEATED else name
            if field.message_type is not None:
                found.extend(paths_holding(item, needle, path + "."))
            elif isinstance(item, str) and needle in item:
                found.append(path)
    return found


# --------------------------------------------------------------------------------------------
# The servers: one redis-server and two onestory-server instances, shared by every test here.


# ONESTORY_E2E_REDIS=cluster: the same tests on a local Redis Cluster (3 primaries, 3 replicas;
# ctest e2e_engagement_cluster), where each call's keys, the tenant's alerts and journey, the
# due-promise index and the outbox marks live on different primaries.
ON_CLUSTER = H.ON_CLUSTER


class _Env:
    def __init__(self):
        self.redis = H.RedisCluster() if ON_CLUSTER else H.Redis()
        self.a = H.Server(extra_args=SERVER_FLAGS, **self.redis.server_kwargs())
        self.b = H.Server(extra_args=SERVER_FLAGS, **self.redis.server_kwargs())


_env = None
_env_error = None


def env():
    global _env, _env_error
    if _env_error is not None:
        raise RuntimeError("the engagement e2e environment failed to start: %s" % _env_error)
    if _env is None:
        try:
            _env = _Env()
        except Exception as e:
            _env_error = e
            raise
    return _env


class AlertWatch:
    """Reads a WatchAlerts stream on a thread; the test takes alerts with timeouts."""

    def __init__(self, stub, request, timeout=60.0):
        self.call = stub.WatchAlerts(request, timeout=timeout)
        self.q = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for alert in self.call:
                self.q.put(("alert", alert))
            self.q.put(("end", grpc.StatusCode.OK, ""))
        except grpc.RpcError as e:
            self.q.put(("end", e.code(), e.details()))
        except Exception as e:  # pragma: no cover
            self.q.put(("end", None, repr(e)))

    def next_alert(self, timeout=5.0):
        try:
            item = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no alert on WatchAlerts within %.1fs" % timeout)
        if item[0] == "end":
            raise AssertionError("WatchAlerts ended with %s (%s) while an alert was expected" %
                                 (item[1], item[2]))
        return item[1]

    def expect_quiet(self, seconds):
        try:
            item = self.q.get(timeout=seconds)
        except queue.Empty:
            return
        if item[0] == "alert":
            raise AssertionError("unexpected alert on WatchAlerts:\n%s" % text(item[1]))
        raise AssertionError("WatchAlerts ended unexpectedly with %s (%s)" % (item[1], item[2]))

    def cancel(self):
        self.call.cancel()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# Helpers shared by the tests


class EngagementCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        e = env()
        self.a, self.b = e.a, e.b
        self.tenant = H.tenant()

    # Stubs ------------------------------------------------------------------------------------

    @staticmethod
    def conv(server):
        return conversation_pb2_grpc.ConversationServiceStub(server.channel)

    @staticmethod
    def cases(server):
        return case_pb2_grpc.CaseServiceStub(server.channel)

    @staticmethod
    def alerts(server):
        return alert_pb2_grpc.AlertServiceStub(server.channel)

    # Calls ------------------------------------------------------------------------------------

    def set_journey(self, server, stages):
        return self.cases(server).SetJourney(K.SetJourneyRequest(tenant=self.tenant,
                                                                 stages=stages), timeout=T)

    def start_req(self, ref, conversation_id, channel, served_by, occurred_at=None,
                  create=False, case_id="", summary="", visibility=C.AUDIENCE_UNSPECIFIED):
        req = V.StartConversationRequest(
            tenant=self.tenant, customer=ref, create_if_missing=create,
            conversation_id=conversation_id, channel=channel, served_by=served_by,
            case_id=case_id, summary=summary, visibility=visibility)
        if occurred_at is not None:
            req.occurred_at.CopyFrom(ts(occurred_at))
        return req

    def start(self, server, *args, **kwargs):
        return self.conv(server).StartConversation(self.start_req(*args, **kwargs), timeout=T)

    def facts_req(self, ref, who, channel, facts, request_id="", create=False):
        return V.RecordFactsRequest(tenant=self.tenant, customer=ref, actor=who, channel=channel,
                                    facts=facts, request_id=request_id, create_if_missing=create)

    def record_facts(self, server, *args, **kwargs):
        return self.conv(server).RecordFacts(self.facts_req(*args, **kwargs), timeout=T)

    def handoff_req(self, ref, conversation_id, frm, to, to_channel=C.CHANNEL_UNSPECIFIED,
                    reason="customer asked for a human", summary="", transcript="",
                    collected=(), request_id="", visibility=C.AUDIENCE_UNSPECIFIED):
        return V.HandoffRequest(tenant=self.tenant, customer=ref,
                                conversation_id=conversation_id, to=to, to_channel=to_channel,
                                reason=reason, summary=summary, transcript=transcript,
                                collected=list(collected), request_id=request_id,
                                visibility=visibility, **{"from": frm})

    def handoff(self, server, *args, **kwargs):
        return self.conv(server).Handoff(self.handoff_req(*args, **kwargs), timeout=T)

    def end(self, server, ref, conversation_id, who, outcome="", wrap_up_code="", summary=""):
        return self.conv(server).EndConversation(V.EndConversationRequest(
            tenant=self.tenant, customer=ref, conversation_id=conversation_id, actor=who,
            outcome=outcome, wrap_up_code=wrap_up_code, summary=summary), timeout=T)

    def open_case_req(self, ref, case_id, who, channel, topic=TOPIC, stage="",
                      conversation_id="", visibility=C.AUDIENCE_UNSPECIFIED, owner=None):
        req = K.OpenCaseRequest(tenant=self.tenant, customer=ref, case_id=case_id, topic=topic,
                                stage=stage, actor=who, channel=channel,
                                conversation_id=conversation_id, visibility=visibility)
        if owner is not None:
            req.owner.CopyFrom(owner)
        return req

    def open_case(self, server, *args, **kwargs):
        return self.cases(server).OpenCase(self.open_case_req(*args, **kwargs), timeout=T)

    def update_req(self, ref, case_id, who, channel, stage="", owner=None, reassign_reason="",
                   promise="", promised_by=None, note="", request_id="",
                   visibility=C.AUDIENCE_UNSPECIFIED):
        req = K.UpdateCaseRequest(tenant=self.tenant, customer=ref, case_id=case_id, actor=who,
                                  channel=channel, stage=stage, reassign_reason=reassign_reason,
                                  promise=promise, note=note, request_id=request_id,
                                  visibility=visibility)
        if owner is not None:
            req.owner.CopyFrom(owner)
        if promised_by is not None:
            req.promised_by.CopyFrom(ts(promised_by))
        return req

    def update_case(self, server, *args, **kwargs):
        return self.cases(server).UpdateCase(self.update_req(*args, **kwargs), timeout=T)

    def get_case(self, server, ref, case_id):
        return self.cases(server).GetCase(K.GetCaseRequest(tenant=self.tenant, customer=ref,
                                                           case_id=case_id), timeout=T)

    def context(self, server, ref, audience=C.AUDIENCE_UNSPECIFIED, recent=50):
        return server.context().GetContext(context_pb2.GetContextRequest(
            tenant=self.tenant, customer=ref, recent_events=recent, audience=audience),
            timeout=T)

    def append(self, server, ref, events):
        return server.timeline().Append(timeline_pb2.AppendRequest(
            tenant=self.tenant, customer=ref, events=events), timeout=T)

    def timeline(self, server, ref, audience=SUPERVISOR_A, kinds=()):
        """Every event (oldest first) the audience may see."""
        out, token = [], ""
        for _ in range(50):
            resp = server.timeline().List(timeline_pb2.ListRequest(
                tenant=self.tenant, customer=ref, page_size=500, page_token=token,
                order=timeline_pb2.ORDER_OLDEST_FIRST, kinds=list(kinds), audience=audience),
                timeout=T)
            out.extend(resp.events)
            token = resp.next_page_token
            if not token:
                return out
        self.fail("List page tokens never end")

    def list_alerts(self, server, include_acknowledged=False):
        out, token = [], ""
        for _ in range(50):
            resp = self.alerts(server).ListAlerts(A.ListAlertsRequest(
                tenant=self.tenant, page_size=500, page_token=token,
                include_acknowledged=include_acknowledged), timeout=T)
            out.extend(resp.alerts)
            token = resp.next_page_token
            if not token:
                return out
        self.fail("ListAlerts page tokens never end")

    def alerts_of(self, server, kind, customer_id, include_acknowledged=True):
        return [a for a in self.list_alerts(server, include_acknowledged)
                if a.kind == kind and a.customer_id == customer_id]

    def watch_alerts(self, server, from_start=True, after_cursor=""):
        return AlertWatch(self.alerts(server), A.WatchAlertsRequest(
            tenant=self.tenant, from_start=from_start, after_cursor=after_cursor))

    # Assertions -------------------------------------------------------------------------------

    def assertCode(self, expected, fn, request, what):
        code, details = H.rpc_code(fn, request)
        self.assertEqual(code, expected, "%s: expected %s, got %s (%s)" %
                         (what, expected.name, code.name if code else code, details))
        return details

    def snapshot(self, server, ref, case_ids=()):
        """What a refused request must leave unchanged: the whole timeline, the agent's (and the
        supervisor's) GetContext and the cases, as text (a difference shows as a diff)."""
        parts = []
        events = self.timeline(server, ref)
        parts.append("timeline: %d events" % len(events))
        parts.extend("  %s %s %s" % (e.event_id, C.EventKind.Name(e.kind), e.summary)
                     for e in events)
        for audience in (AGENT_A, SUPERVISOR_A):
            ctx = self.context(server, ref, audience, recent=200)
            ctx.signals.ClearField("since_case_opened")  # grows with the clock
            parts.append("context %s:\n%s" % (C.Audience.Name(audience), text(ctx)))
        for case_id in case_ids:
            parts.append("case %s:\n%s" % (case_id, text(self.get_case(server, ref, case_id))))
        parts.append("alerts:\n%s" % "".join(text(a) for a in self.list_alerts(server, True)))
        return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# The journey


class EngagementJourneyTest(EngagementCase):

    def test_chatbot_then_agent_then_phone_next_day_then_store(self):
        now = int(time.time())
        base = now - 25 * 3600  # the chat: yesterday; the call and the store visit: now
        cookie = H.unique("Web-Cookie-")
        chat_ref = H.by_ident(C.IDENTIFIER_TYPE_CHAT_SESSION, cookie)
        chat_conv, call_conv, store_conv = (H.unique("chat-"), H.unique("call-"),
                                            H.unique("store-"))
        case_id = H.unique("case-")
        phone_raw = "+1 (415) 555-%04d" % (int(H.unique()[:4], 16) % 10000)
        loyalty_raw = "ls-%s %s" % (H.unique()[:4], H.unique()[:4])
        note_marker = H.unique("NOTE-")
        note = ("%s internal: carrier confirms the parcel is lost; refund approved, do not tell "
                "the customer about the carrier dispute" % note_marker)
        promised_by = now + 3 * DAY
        verified_until = now + 600

        journey = self.set_journey(self.a, STAGES)
        self.assertEqual(list(journey.stages), STAGES)
        got = self.cases(self.b).GetJourney(K.GetJourneyRequest(tenant=self.tenant), timeout=T)
        self.assertEqual(list(got.stages), STAGES)

        # 1. Web chat with the bot, yesterday. -------------------------------------------------
        started = self.start(self.a, chat_ref, chat_conv, C.CHANNEL_CHATBOT, BOT,
                             occurred_at=base, create=True, summary="Where is my order?",
                             visibility=CUSTOMER_A)
        cid = started.customer_id
        self.assertTrue(cid)
        self.assertFalse(started.already_started)
        self.assertFalse(started.HasField("repeat_contact"), "a first contact is no repeat")
        c = started.conversation
        self.assertEqual((c.conversation_id, c.customer_id, c.channel, c.state, c.handoffs,
                          c.repeat_contact),
                         (chat_conv, cid, C.CHANNEL_CHATBOT, V.CONVERSATION_STATE_OPEN, 0, False))
        self.assertEqual((c.served_by.type, c.served_by.id), (BOT.type, BOT.id))
        self.assertEqual(c.started_at.seconds, base)
        ev = started.event
        self.assertEqual((ev.kind, ev.conversation_id, ev.customer_id, ev.occurred_at.seconds,
                          ev.channel),
                         (C.EVENT_KIND_CONVERSATION_STARTED, chat_conv, cid, base,
                          C.CHANNEL_CHATBOT))
        # A retry of the start (the widget reconnected) is recognised and changes nothing.
        retried = self.start(self.b, chat_ref, chat_conv, C.CHANNEL_CHATBOT, BOT,
                             occurred_at=base, create=True, summary="Where is my order?",
                             visibility=CUSTOMER_A)
        self.assertTrue(retried.already_started)
        self.assertEqual(retried.customer_id, cid)

        said = [
            (CUSTOMER, base + 5, "Hi, my order 1234 never arrived"),
            (BOT, base + 10, "Sorry to hear that! To check, I'll text you a code."),
            (CUSTOMER, base + 20, "The code is 482913"),
            (BOT, base + 30, "Thanks, you're verified. Is the order number 1234?"),
            (CUSTOMER, base + 40, "Yes. The tracking page doesn't load, I restarted my router"),
            (BOT, base + 50, "Tracking stalled at 'shipped'. Let me get you a colleague."),
        ]
        messages = [H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, actor_type=who.type,
                            actor_id=who.id, occurred_at=at, conversation_id=chat_conv,
                            summary=words, body=words, visibility=CUSTOMER_A,
                            event_id="chat-msg-%d" % i)
                     for i, (who, at, words) in enumerate(said)]
        appended = self.append(self.a, chat_ref, messages)
        self.assertEqual(appended.customer_id, cid)
        transcript = "\n".join("%s: %s" % ("Bot" if who.type == C.Actor.TYPE_BOT else "Customer",
                                           words) for who, _, words in said)

        recorded = self.record_facts(self.a, chat_ref, BOT, C.CHANNEL_CHATBOT, [
            fact(VER, "identity", "one_time_code", BOT_A, expires_at=verified_until,
                 conversation_id=chat_conv),
            fact(COL, "order_number", "1234", CUSTOMER_A, conversation_id=chat_conv),
            fact(STEP, "restart_router", "no change", CUSTOMER_A, conversation_id=chat_conv),
        ], request_id=H.unique("facts-"))
        self.assertEqual(recorded.customer_id, cid)
        self.assertFalse(recorded.duplicate)
        self.assertEqual(keys(recorded.facts), [(VER, "identity"), (COL, "order_number"),
                                                (STEP, "restart_router")])
        for f in recorded.facts:
            self.assertEqual((f.recorded_by.type, f.recorded_by.id, f.channel, f.times_stated),
                             (BOT.type, BOT.id, C.CHANNEL_CHATBOT, 1), f.name)
            self.assertTrue(f.recorded_at.seconds, f.name)
        self.assertEqual(recorded.facts[0].expires_at.seconds, verified_until)
        self.assertEqual(recorded.event.kind, C.EVENT_KIND_FACTS_RECORDED)
        self.assertEqual(recorded.event.customer_id, cid)

        opened = self.open_case(self.a, chat_ref, case_id, BOT, C.CHANNEL_CHATBOT,
                                stage="shipped", conversation_id=chat_conv,
                                visibility=CUSTOMER_A)
        self.assertFalse(opened.already_open)
        case = opened.case
        self.assertEqual((case.case_id, case.customer_id, case.topic, case.stage, case.state),
                         (case_id, cid, TOPIC, "shipped", K.CASE_STATE_OPEN))
        self.assertEqual((case.contacts, case.repeat_contacts), (1, 0),
                         "OpenCase counts as the case's first contact")
        self.assertEqual(case.last_channel, C.CHANNEL_CHATBOT)
        self.assertEqual((opened.event.kind, opened.event.case_id),
                         (C.EVENT_KIND_CASE_OPENED, case_id))
        again = self.open_case(self.b, chat_ref, case_id, BOT, C.CHANNEL_CHATBOT,
                               stage="shipped", conversation_id=chat_conv,
                               visibility=CUSTOMER_A)
        self.assertTrue(again.already_open)
        self.assertEqual((again.case.contacts, again.case.stage), (1, "shipped"))

        # 2. The bot hands off to a human agent on web chat. -----------------------------------
        handoff_id = H.unique("handoff-")
        handoff_args = dict(
            to_channel=C.CHANNEL_WEB_CHAT, reason="customer asked for a human",
            summary="Order 1234 stuck at shipped; identity verified by one-time code",
            transcript=transcript, request_id=handoff_id, visibility=BOT_A,
            collected=[fact(COL, "delivery_address", "12 Elm St, Springfield",
                            conversation_id=chat_conv)])
        handed = self.handoff(self.a, H.by_id(cid), chat_conv, BOT, CHAT_AGENT, **handoff_args)
        self.assertFalse(handed.duplicate)
        self.assertEqual(handed.customer_id, cid)
        c = handed.conversation
        self.assertEqual((c.conversation_id, c.channel, c.state, c.handoffs, c.case_id),
                         (chat_conv, C.CHANNEL_WEB_CHAT, V.CONVERSATION_STATE_OPEN, 1, case_id))
        self.assertEqual((c.served_by.type, c.served_by.id), (CHAT_AGENT.type, CHAT_AGENT.id))
        hev = handed.event
        self.assertEqual((hev.kind, hev.conversation_id, hev.body, hev.visibility),
                         (C.EVENT_KIND_HANDOFF, chat_conv, transcript, BOT_A))
        # The widget retries the handoff (its answer was lost): a duplicate, even though the
        # bot no longer serves the conversation.
        dup = self.handoff(self.b, H.by_id(cid), chat_conv, BOT, CHAT_AGENT, **handoff_args)
        self.assertTrue(dup.duplicate, "a retry of an applied handoff (same request_id)")
        self.assertEqual(dup.event.event_id, hev.event_id)
        self.assertEqual(dup.conversation.handoffs, 1)

        # The agent's screen at the switch: verification first, the case, the transcript.
        expected_facts = [(VER, "identity"), (COL, "delivery_address"), (COL, "order_number"),
                          (STEP, "restart_router")]
        ctx = self.context(self.b, chat_ref, AGENT_A)
        self.assertEqual(ctx.profile.customer_id, cid)
        self.assertEqual(keys(ctx.facts), expected_facts,
                         "verifications first, then collected values (latest first), then steps")
        by_name = {f.name: f for f in ctx.facts}
        v = by_name["identity"]
        self.assertEqual((v.value, v.recorded_by.id, v.channel, v.expires_at.seconds),
                         ("one_time_code", BOT.id, C.CHANNEL_CHATBOT, verified_until))
        self.assertEqual(by_name["order_number"].value, "1234")
        d = by_name["delivery_address"]
        self.assertEqual((d.value, d.recorded_by.type, d.recorded_by.id, d.conversation_id),
                         ("12 Elm St, Springfield", BOT.type, BOT.id, chat_conv),
                         "facts collected in a handoff have the handoff's from as provenance")
        self.assertEqual([oc.case_id for oc in ctx.open_cases], [case_id])
        oc = ctx.open_cases[0]
        self.assertEqual((oc.topic, oc.stage, oc.contacts, oc.channel_switches, oc.last_channel),
                         (TOPIC, "shipped", 1, 1, C.CHANNEL_WEB_CHAT),
                         "the handoff chatbot -> web chat is a channel switch of the case")
        handoffs = [e for e in ctx.recent_events if e.kind == C.EVENT_KIND_HANDOFF]
        self.assertEqual([e.event_id for e in handoffs], [hev.event_id])
        self.assertEqual(handoffs[0].body, transcript)
        self.assertIn("chat-msg-0", [e.event_id for e in ctx.recent_events])
        open_convs = {o.conversation_id: o for o in ctx.open_conversations}
        self.assertIn(chat_conv, open_convs)
        o = open_convs[chat_conv]
        self.assertEqual((o.served_by.id, o.case_id, o.handoffs), (CHAT_AGENT.id, case_id, 1))
        self.assertFalse(ctx.HasField("repeat_contact"))
        s = ctx.signals
        self.assertEqual((s.contacts_7d, s.contacts_30d, s.distinct_channels_30d,
                          s.channel_switches, s.repeat_contacts),
                         (1, 1, 1, 1, 0),
                         "one contact (the chat: its appended messages and the handoff are no "
                         "new contacts)")
        self.assertTrue(s.HasField("since_case_opened"))
        unset = self.context(self.a, chat_ref)  # an unset audience reads as AGENT
        self.assertEqual(keys(unset.facts), expected_facts)

        # The agent takes the case, promises a refund and writes an internal note.
        updated = self.update_case(self.a, chat_ref, case_id, CHAT_AGENT, C.CHANNEL_WEB_CHAT,
                                   owner=CHAT_AGENT, promise="refund by Friday",
                                   promised_by=promised_by, note=note,
                                   request_id=H.unique("upd-"), visibility=AGENT_A)
        self.assertFalse(updated.duplicate)
        case = updated.case
        self.assertEqual((case.promise.text, case.promise.promised_by.seconds,
                          case.promise.made_by.id),
                         ("refund by Friday", promised_by, CHAT_AGENT.id))
        self.assertEqual((case.owner.type, case.owner.id), (CHAT_AGENT.type, CHAT_AGENT.id))
        self.assertEqual((len(case.owner_history), case.owner_changes), (1, 1))
        self.assertFalse(case.owner_history[0].HasField("from"), "the first owner has no from")
        self.assertEqual(case.last_note, note)
        self.assertEqual((updated.event.kind, updated.event.case_id, updated.event.visibility),
                         (C.EVENT_KIND_CASE_UPDATE, case_id, AGENT_A))

        agent_ctx = self.context(self.b, chat_ref, AGENT_A)
        self.assertTrue(paths_holding(agent_ctx, note_marker),
                        "the agent sees the internal note")
        self.assertEqual(agent_ctx.open_cases[0].promise.text, "refund by Friday")

        # The bot (and the customer's app) never see the agent's note.
        bot_ctx = self.context(self.b, chat_ref, BOT_A)
        self.assertEqual(paths_holding(bot_ctx, note_marker), [],
                         "GetContext(AUDIENCE_BOT) shows the agent's note (visibility AGENT)")
        self.assertEqual(keys(bot_ctx.facts),
                         [(VER, "identity"), (COL, "order_number"), (STEP, "restart_router")],
                         "the bot sees CUSTOMER and BOT facts, not the AGENT (unset) one")
        self.assertEqual([e.event_id for e in bot_ctx.recent_events
                          if e.kind == C.EVENT_KIND_HANDOFF], [hev.event_id],
                         "the handoff (visibility BOT) is visible to the bot")
        self.assertEqual([oc.case_id for oc in bot_ctx.open_cases], [case_id])
        bot_events = self.timeline(self.a, chat_ref, audience=BOT_A)
        self.assertEqual([e.event_id for e in bot_events if paths_holding(e, note_marker)], [],
                         "List(AUDIENCE_BOT) shows the agent's note (visibility AGENT)")
        cust_ctx = self.context(self.a, chat_ref, CUSTOMER_A)
        self.assertEqual(paths_holding(cust_ctx, note_marker), [],
                         "GetContext(AUDIENCE_CUSTOMER) shows the agent's note (visibility AGENT)")
        self.assertEqual([e.event_id for e in cust_ctx.recent_events
                          if e.kind == C.EVENT_KIND_HANDOFF or e.body == transcript], [],
                         "the handoff transcript (visibility BOT) reached AUDIENCE_CUSTOMER")
        self.assertEqual(keys(cust_ctx.facts), [(COL, "order_number"), (STEP, "restart_router")],
                         "the customer sees only CUSTOMER facts")
        self.assertIn("chat-msg-0", [e.event_id for e in cust_ctx.recent_events],
                      "the customer sees their own chat (visibility CUSTOMER)")
        for e in cust_ctx.recent_events:
            self.assertEqual(e.visibility, CUSTOMER_A, "AUDIENCE_CUSTOMER read %s" % text(e))
        for e in bot_ctx.recent_events:
            self.assertIn(e.visibility, (CUSTOMER_A, BOT_A), "AUDIENCE_BOT read %s" % text(e))

        # The agent links the customer's phone and ends the chat.
        linked = self.a.identity().Link(identity_pb2.LinkRequest(
            tenant=self.tenant, customer_id=cid, identifier=H.phone(phone_raw),
            channel=C.CHANNEL_WEB_CHAT, verification=identity_pb2.VERIFICATION_ASSERTED,
            actor=CHAT_AGENT), timeout=T)
        self.assertFalse(linked.already_linked)
        ended = self.end(self.a, chat_ref, chat_conv, CHAT_AGENT, outcome="refund promised",
                         wrap_up_code="REFUND_PENDING")
        self.assertFalse(ended.duplicate)
        self.assertEqual((ended.conversation.state, ended.conversation.outcome,
                          ended.conversation.wrap_up_code),
                         (V.CONVERSATION_STATE_ENDED, "refund promised", "REFUND_PENDING"))
        self.assertTrue(ended.conversation.ended_at.seconds)
        self.assertEqual(ended.event.kind, C.EVENT_KIND_CONVERSATION_ENDED)
        self.assertTrue(self.end(self.b, chat_ref, chat_conv, CHAT_AGENT,
                                 outcome="refund promised").duplicate)
        # A late retry of the handoff, after the end: still the stored result.
        late = self.handoff(self.b, H.by_id(cid), chat_conv, BOT, CHAT_AGENT, **handoff_args)
        self.assertTrue(late.duplicate, "a retry of an applied handoff after the end")
        self.assertEqual(late.event.event_id, hev.event_id)
        self.assertEqual(self.alerts_of(self.a, A.ALERT_KIND_REPEAT_CONTACT, cid), [])

        # 3. The next day: a phone call; the agent knows only the calling number. ------------
        phone_ref = H.by_ident(C.IDENTIFIER_TYPE_PHONE, phone_raw)
        resolved = self.b.identity().Resolve(identity_pb2.ResolveRequest(
            tenant=self.tenant, identifier=H.phone(phone_raw)), timeout=T)
        self.assertEqual(resolved.customer_id, cid)
        call = self.start(self.b, phone_ref, call_conv, C.CHANNEL_VOICE, PHONE_AGENT,
                          summary="Caller asks where order 1234 is")
        self.assertEqual(call.customer_id, cid)
        self.assertFalse(call.already_started)
        self.assertEqual((call.conversation.repeat_contact, call.conversation.case_id),
                         (True, case_id))
        rc = call.repeat_contact
        self.assertEqual((rc.case_id, rc.topic, rc.message, rc.contacts, rc.case_open,
                          rc.conversation_id),
                         (case_id, TOPIC, AGAIN, 2, True, call_conv))

        ctx = self.context(self.a, phone_ref, AGENT_A)
        self.assertEqual(ctx.profile.customer_id, cid)
        rc = ctx.repeat_contact
        self.assertEqual((rc.case_id, rc.message, rc.contacts, rc.case_open, rc.conversation_id),
                         (case_id, AGAIN, 2, True, call_conv))
        self.assertEqual(keys(ctx.facts), expected_facts, "the facts the bot collected")
        self.assertEqual([f.value for f in ctx.facts],
                         ["one_time_code", "12 Elm St, Springfield", "1234", "no change"])
        self.assertEqual([oc.case_id for oc in ctx.open_cases], [case_id])
        oc = ctx.open_cases[0]
        self.assertEqual((oc.promise.text, oc.promise.promised_by.seconds),
                         ("refund by Friday", promised_by))
        self.assertEqual((oc.contacts, oc.repeat_contacts, oc.channel_switches, oc.last_channel),
                         (2, 1, 2, C.CHANNEL_VOICE))
        self.assertEqual(oc.owner.id, CHAT_AGENT.id)
        s = ctx.signals
        self.assertEqual((s.contacts_7d, s.contacts_30d, s.distinct_channels_30d),
                         (2, 2, 2), "contacts: the chat yesterday and this call")
        self.assertEqual((s.repeat_contacts, s.channel_switches), (1, 2))
        self.assertIn(hev.event_id, [e.event_id for e in ctx.recent_events],
                      "the phone agent sees the chat's handoff with the transcript")

        # The phone agent links the loyalty card the customer reads out, and ends the call.
        loyalty = self.b.identity().Link(identity_pb2.LinkRequest(
            tenant=self.tenant, customer_id=cid,
            identifier=H.ident(C.IDENTIFIER_TYPE_LOYALTY_ID, loyalty_raw),
            channel=C.CHANNEL_VOICE, verification=identity_pb2.VERIFICATION_ASSERTED,
            actor=PHONE_AGENT), timeout=T).identifier
        self.end(self.b, phone_ref, call_conv, PHONE_AGENT, outcome="refund still pending")
        self.assertEqual(self.alerts_of(self.a, A.ALERT_KIND_REPEAT_CONTACT, cid), [],
                         "two contacts: no REPEAT_CONTACT alert yet")

        # 4. A store visit: the loyalty card. Third contact: one REPEAT_CONTACT alert. ---------
        loyalty_ref = H.by_ident(C.IDENTIFIER_TYPE_LOYALTY_ID, loyalty_raw)
        visit = self.start(self.a, loyalty_ref, store_conv, C.CHANNEL_IN_STORE, STORE_AGENT,
                           summary="At the service desk about order 1234")
        self.assertEqual(visit.customer_id, cid)
        rc = visit.repeat_contact
        self.assertEqual((rc.case_id, rc.message, rc.contacts, rc.case_open, rc.conversation_id),
                         (case_id, AGAIN, 3, True, store_conv))
        retry = self.start(self.b, loyalty_ref, store_conv, C.CHANNEL_IN_STORE, STORE_AGENT,
                           summary="At the service desk about order 1234")
        self.assertTrue(retry.already_started)

        ctx = self.context(self.b, H.by_ident(C.IDENTIFIER_TYPE_LOYALTY_ID, loyalty.value),
                           AGENT_A)
        self.assertEqual(ctx.profile.customer_id, cid)
        self.assertEqual((ctx.repeat_contact.message, ctx.repeat_contact.contacts,
                          ctx.repeat_contact.conversation_id), (AGAIN, 3, store_conv))
        self.assertEqual(keys(ctx.facts), expected_facts)
        oc = ctx.open_cases[0]
        self.assertEqual([c.case_id for c in ctx.open_cases], [case_id])
        self.assertEqual((oc.promise.text, oc.promise.promised_by.seconds),
                         ("refund by Friday", promised_by))
        self.assertEqual((oc.contacts, oc.repeat_contacts, oc.channel_switches, oc.last_channel),
                         (3, 2, 3, C.CHANNEL_IN_STORE), "the retried start counted once")
        s = ctx.signals
        self.assertEqual((s.contacts_7d, s.contacts_30d, s.distinct_channels_30d,
                          s.repeat_contacts, s.channel_switches), (3, 3, 3, 2, 3))

        def raised():
            return self.alerts_of(self.a, A.ALERT_KIND_REPEAT_CONTACT, cid, False)
        H.wait_until(raised, 5, interval=0.05, what="the REPEAT_CONTACT alert")
        found = self.alerts_of(self.b, A.ALERT_KIND_REPEAT_CONTACT, cid)
        self.assertEqual(len(found), 1, "exactly one REPEAT_CONTACT alert: %s" %
                         [text(a) for a in found])
        alert = found[0]
        self.assertEqual((alert.alert_id, alert.case_id, alert.acknowledged),
                         ("repeat_contact:%s:%s" % (cid, case_id), case_id, False))
        self.assertTrue(alert.message and alert.cursor and alert.raised_at.seconds)
        acked = self.alerts(self.a).AckAlert(A.AckAlertRequest(
            tenant=self.tenant, alert_id=alert.alert_id, actor=SUPERVISOR), timeout=T)
        self.assertTrue(acked.acknowledged)
        self.assertEqual(acked.acknowledged_by.id, SUPERVISOR.id)
        self.assertTrue(acked.acknowledged_at.seconds)
        self.assertEqual(self.alerts_of(self.b, A.ALERT_KIND_REPEAT_CONTACT, cid, False), [],
                         "an acknowledged alert is no longer listed as open")
        listed = self.alerts_of(self.b, A.ALERT_KIND_REPEAT_CONTACT, cid, True)
        self.assertEqual([(a.alert_id, a.acknowledged) for a in listed],
                         [(alert.alert_id, True)])
        twice = self.alerts(self.b).AckAlert(A.AckAlertRequest(
            tenant=self.tenant, alert_id=alert.alert_id, actor=STORE_AGENT), timeout=T)
        self.assertEqual(text(twice), text(acked), "acknowledging again changes nothing")
        self.assertCode(NOT_FOUND, self.alerts(self.a).AckAlert, A.AckAlertRequest(
            tenant=self.tenant, alert_id="repeat_contact:nobody:nothing", actor=SUPERVISOR),
            "AckAlert of an unknown alert")

        # The timeline holds each step once; the case and the journey statistics agree.
        events = self.timeline(self.a, H.by_id(cid))
        kinds = [e.kind for e in events]
        self.assertEqual(kinds.count(C.EVENT_KIND_HANDOFF), 1, "one HANDOFF after 3 calls")
        self.assertEqual(kinds.count(C.EVENT_KIND_CONVERSATION_STARTED), 3)
        self.assertEqual(kinds.count(C.EVENT_KIND_CONVERSATION_ENDED), 2)
        self.assertEqual(kinds.count(C.EVENT_KIND_CASE_OPENED), 1)
        self.assertEqual(kinds.count(C.EVENT_KIND_FACTS_RECORDED), 1)
        self.assertEqual(len(self.timeline(self.a, H.by_id(cid),
                                           kinds=[C.EVENT_KIND_HANDOFF])), 1)
        case = self.get_case(self.b, phone_ref, case_id)
        self.assertEqual((case.state, case.stage, case.contacts, case.repeat_contacts,
                          case.channel_switches, case.promise.text),
                         (K.CASE_STATE_OPEN, "shipped", 3, 2, 3, "refund by Friday"))
        stats = self.cases(self.a).GetJourneyStats(K.GetJourneyStatsRequest(
            tenant=self.tenant), timeout=T)
        self.assertEqual([st.stage for st in stats.stages], STAGES)
        shipped = stats.stages[1]
        self.assertEqual((shipped.open_cases, shipped.entered, shipped.repeat_contacts,
                          shipped.channel_switches), (1, 1, 2, 3))
        for st in stats.stages:
            if st.stage != "shipped":
                self.assertEqual((st.open_cases, st.entered), (0, 0), st.stage)
        self.end(self.a, loyalty_ref, store_conv, STORE_AGENT, outcome="refund issued at desk")


# --------------------------------------------------------------------------------------------
# Alerts


class EngagementAlertsTest(EngagementCase):

    def test_negative_streak_raises_one_alert_seen_by_a_watcher(self):
        watch = self.watch_alerts(self.b)  # from_start on a fresh tenant: misses nothing
        try:
            conv_id = H.unique("sms-")
            ref = H.by_ident(C.IDENTIFIER_TYPE_PHONE,
                             "+44 20 7946 %04d" % (int(H.unique()[:4], 16) % 10000))
            cid = self.start(self.a, ref, conv_id, C.CHANNEL_SMS, PHONE_AGENT,
                             create=True).customer_id

            def say(sentiment, i):
                e = H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, conversation_id=conv_id,
                            event_id="sms-%d" % i, summary="message %d" % i,
                            sentiment=sentiment)
                self.append(self.a if i % 2 else self.b, ref, [e])

            # positive, two negatives, a neutral one (ends the streak), two negatives: no alert.
            for i, sentiment in enumerate((0.6, -0.5, -0.7, 0.0, -0.4, -0.9)):
                say(sentiment, i)
            watch.expect_quiet(0.5)
            say(-0.3, 6)  # the third negative in a row
            alert = watch.next_alert(5)
            self.assertEqual((alert.kind, alert.customer_id, alert.case_id, alert.acknowledged),
                             (A.ALERT_KIND_NEGATIVE_STREAK, cid, "", False))
            self.assertTrue(alert.alert_id.startswith("negative_streak:%s:" % cid),
                            alert.alert_id)
            self.assertTrue(alert.message and alert.cursor)
            say(-0.6, 7)  # the streak goes on: the same streak raises nothing more
            watch.expect_quiet(1.0)
            listed = self.alerts_of(self.a, A.ALERT_KIND_NEGATIVE_STREAK, cid)
            self.assertEqual([a.alert_id for a in listed], [alert.alert_id])
            # A retried append (same event_id) is no new interaction.
            say(-0.6, 7)
            s = self.context(self.a, ref, AGENT_A).signals
            self.assertEqual((s.negative_streak, s.negative_30d, s.positive_30d), (4, 6, 1))
            self.assertTrue(s.HasField("positive_to_negative"))
            self.assertAlmostEqual(s.positive_to_negative, 1 / 6, places=3)
            watch.expect_quiet(0.3)
            # A watcher resuming after the alert's cursor gets nothing old.
            resumed = self.watch_alerts(self.a, from_start=False, after_cursor=alert.cursor)
            try:
                resumed.expect_quiet(0.3)
            finally:
                resumed.cancel()
        finally:
            watch.cancel()

    def test_overdue_promise_raises_one_alert_across_two_instances(self):
        watch = self.watch_alerts(self.a)
        try:
            ref = H.by_ident(C.IDENTIFIER_TYPE_EMAIL, H.unique("pat.") + "@example.com")
            cid = self.start(self.a, ref, H.unique("mail-"), C.CHANNEL_EMAIL, CHAT_AGENT,
                             create=True).customer_id
            kept, forgotten = H.unique("case-kept-"), H.unique("case-late-")
            for case_id in (forgotten, kept):
                self.open_case(self.a, ref, case_id, CHAT_AGENT, C.CHANNEL_EMAIL,
                               topic="callback about invoice " + case_id)
            due = int(time.time()) + 2
            for case_id in (forgotten, kept):
                self.update_case(self.b, ref, case_id, CHAT_AGENT, C.CHANNEL_EMAIL,
                                 promise="call back in two seconds", promised_by=due)
            # An update right after the promise (within the same millisecond, often): that case
            # was taken care of.
            self.update_case(self.a, ref, kept, CHAT_AGENT, C.CHANNEL_EMAIL,
                             note="called back", visibility=AGENT_A)
            watch.expect_quiet(max(0.0, due - time.time() - 0.3))  # nothing before it is due
            alert = watch.next_alert(5)
            self.assertEqual((alert.kind, alert.customer_id, alert.case_id),
                             (A.ALERT_KIND_PROMISE_OVERDUE, cid, forgotten), text(alert))
            self.assertEqual(alert.alert_id,
                             "promise_overdue:%s:%s:%d" % (cid, forgotten, due * 1000))
            self.assertGreaterEqual(alert.raised_at.seconds, due)
            watch.expect_quiet(1.5)  # two instances scan every 100 ms: still one alert
            listed = self.alerts_of(self.b, A.ALERT_KIND_PROMISE_OVERDUE, cid)
            self.assertEqual([a.alert_id for a in listed], [alert.alert_id])
        finally:
            watch.cancel()


# --------------------------------------------------------------------------------------------
# Bad input


class EngagementBadInputTest(EngagementCase):

    def test_refusals_change_nothing(self):
        now = int(time.time())
        self.set_journey(self.a, STAGES)
        cookie = H.unique("cookie-")
        ref = H.by_ident(C.IDENTIFIER_TYPE_CHAT_SESSION, cookie)
        chat_conv, case_id = H.unique("chat-"), H.unique("case-")
        cid = self.start(self.a, ref, chat_conv, C.CHANNEL_CHATBOT, BOT,
                         create=True).customer_id
        self.record_facts(self.a, ref, BOT, C.CHANNEL_CHATBOT,
                          [fact(COL, "order_number", "1234", CUSTOMER_A)])
        self.open_case(self.a, ref, case_id, BOT, C.CHANNEL_CHATBOT, stage="shipped",
                       conversation_id=chat_conv)
        self.update_case(self.a, ref, case_id, CHAT_AGENT, C.CHANNEL_CHATBOT,
                         promise="refund by Friday", promised_by=now + 3 * DAY)
        self.handoff(self.a, ref, chat_conv, BOT, CHAT_AGENT, to_channel=C.CHANNEL_WEB_CHAT,
                     transcript="Customer: where is my order?")
        self.end(self.a, ref, chat_conv, CHAT_AGENT, outcome="refund promised")
        before = self.snapshot(self.a, ref, [case_id])

        conv, cases = self.conv(self.a), self.cases(self.b)
        refusals = [
            ("UpdateCase of an unknown case", NOT_FOUND, cases.UpdateCase,
             self.update_req(ref, "case-that-never-was", CHAT_AGENT, C.CHANNEL_WEB_CHAT,
                             note="hello?"), None),
            ("UpdateCase to a stage not in the journey", INVALID, cases.UpdateCase,
             self.update_req(ref, case_id, CHAT_AGENT, C.CHANNEL_WEB_CHAT,
                             stage="lost_in_transit"), "stage"),
            ("UpdateCase with promised_by in the past", INVALID, cases.UpdateCase,
             self.update_req(ref, case_id, CHAT_AGENT, C.CHANNEL_WEB_CHAT,
                             promise="refund yesterday", promised_by=now - 3600,
                             note="also this note"), "promised_by"),
            ("RecordFacts with a fact of unknown type (99) after a valid one", INVALID,
             conv.RecordFacts,
             self.facts_req(ref, BOT, C.CHANNEL_CHATBOT,
                            [fact(COL, "gift_wrap", "yes"), fact(99, "mood", "annoyed")]),
             "facts[1]"),
            ("RecordFacts with a fact of type UNSPECIFIED", INVALID, conv.RecordFacts,
             self.facts_req(ref, BOT, C.CHANNEL_CHATBOT,
                            [fact(C.FACT_TYPE_UNSPECIFIED, "mood", "annoyed")]), "facts[0]"),
            ("Handoff of an ended conversation", FAILED, conv.Handoff,
             self.handoff_req(ref, chat_conv, CHAT_AGENT, PHONE_AGENT,
                              to_channel=C.CHANNEL_VOICE, request_id=H.unique("ho-")), None),
            ("StartConversation about an unknown case", NOT_FOUND, conv.StartConversation,
             self.start_req(ref, H.unique("call-"), C.CHANNEL_VOICE, PHONE_AGENT,
                            case_id="case-that-never-was"), None),
            ("OpenCase in a stage not in the journey", INVALID, cases.OpenCase,
             self.open_case_req(ref, H.unique("case-"), CHAT_AGENT, C.CHANNEL_WEB_CHAT,
                                topic="another topic", stage="teleported"), "stage"),
            ("a VERIFICATION without expires_at", INVALID, conv.RecordFacts,
             self.facts_req(ref, BOT, C.CHANNEL_CHATBOT,
                            [fact(VER, "identity", "one_time_code")]), "facts[0]"),
        ]
        failures = []
        for what, code, fn, request, mention in refusals:
            got, details = H.rpc_code(fn, request)
            if got != code:
                failures.append("%s: expected %s, got %s (%s)" %
                                (what, code.name, got.name if got else got, details))
            elif mention and mention not in details:
                failures.append("%s: %s does not name %r: %r" % (what, code.name, mention,
                                                                   details))
            after = self.snapshot(self.a, ref, [case_id])
            if after != before:
                failures.append("%s (%s) changed state:\n%s" % (
                    what, got.name if got else got, _diff(before, after)))
                before = after  # report each change once
        self.assertEqual(failures, [], "\n".join(failures))
        self.assertEqual(self.context(self.b, H.by_id(cid)).profile.customer_id, cid)


def _diff(before, after):
    import difflib
    return "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(), "before",
                                          "after", lineterm="", n=1))


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
