#!/usr/bin/python3
"""OneStory end-to-end tests of merging customers, through the real onestory-server binary.

- MergeJourneyTest: a chatbot visitor and a caller turn out to be one person; an agent merges
  them. Every read through the source's id or identifiers then shows one timeline (in
  occurred_at order, each event once, all the target's), a Watch opened on the source keeps
  streaming the target's events, appends through the source land on the target, both histories
  list the merge, a retry answers already_merged, and an Unmerge gives every event back to its
  owner (with what was appended through the source meanwhile).
- MergeReadersTest: the target's cursors and page tokens held before a merge stay valid; a
  chain (A into B into C) redirects and unwinds in order; appends racing a merge are stored
  exactly once or refused with ABORTED; watches through the source's id (from the start, or
  resumed with a cursor of either customer) miss nothing; a merge meeting another running merge
  answers ABORTED.
- MergeKillTest: onestory-server dies (ONESTORY_FAILPOINT=<step>: _exit(137) just before that
  step) in the middle of a merge or an unmerge, against an external redis-server that survives;
  the work is finished by a restarted server's start-up recovery or by a retry of the call on
  a live instance, and afterwards every event (including appends made through a live instance
  while the work was interrupted) is stored exactly once with the right owner and every
  identifier resolves to it. One test per step and way of finishing.

ONESTORY_E2E_REDIS=cluster (ctest e2e_merge_cluster) runs the same on a local Redis Cluster
(harness.RedisCluster): every step of a merge and an unmerge in one hash slot.

Bounded: a few hundred events per test, ~40 server starts; about 10 s on two cores.
Run by ctest as e2e_merge; alone:
  /usr/bin/python3 tests/e2e/merge_test.py --build-dir build [-v] [-k pattern]
"""

import collections
import os
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402  (parses --build-dir and imports the generated stubs)
from harness import C, E2ECase, identity_pb2, ids, timeline_pb2  # noqa: E402

import grpc  # noqa: E402
from onestory.v1 import alert_pb2, alert_pb2_grpc  # noqa: E402
from onestory.v1 import case_pb2, case_pb2_grpc  # noqa: E402

T = H.RPC_TIMEOUT
OLDEST = timeline_pb2.ORDER_OLDEST_FIRST
NEWEST = timeline_pb2.ORDER_NEWEST_FIRST
REC = identity_pb2.MergeRecord
RECOVERY_TIMEOUT = 15.0  # seconds a restarted server gets to finish an interrupted merge

MERGE_STEPS = ("merge.lock", "merge.stage", "merge.swap", "merge.identifiers", "merge.mark",
               "merge.finish")
UNMERGE_STEPS = ("unmerge.lock", "unmerge.return", "unmerge.remove", "unmerge.identifiers",
                 "unmerge.release", "unmerge.finish")


def agent(agent_id="agent-42"):
    return C.Actor(type=C.Actor.TYPE_AGENT, id=agent_id)


class MergeCase(E2ECase):
    """Helpers shared by the merge tests; `server` is any H.Server."""

    def merge(self, server, source, target, reason="same person: confirmed by phone",
              take_from_source=()):
        return server.identity().Merge(identity_pb2.MergeRequest(
            tenant=self.tenant, source_customer_id=source, target_customer_id=target,
            reason=reason, actor=agent(), take_from_source=list(take_from_source)), timeout=T)

    def update_profile(self, server, customer_id, paths, **fields):
        return server.identity().UpdateProfile(identity_pb2.UpdateProfileRequest(
            tenant=self.tenant, customer_id=customer_id, profile=identity_pb2.Profile(**fields),
            update_mask={"paths": list(paths)}), timeout=T).profile

    def unmerge(self, server, merge_id, reason="two different people"):
        return server.identity().Unmerge(identity_pb2.UnmergeRequest(
            tenant=self.tenant, merge_id=merge_id, reason=reason, actor=agent()), timeout=T)

    def history(self, server, customer_id):
        return list(server.identity().GetMergeHistory(identity_pb2.GetMergeHistoryRequest(
            tenant=self.tenant, customer_id=customer_id), timeout=T).merges)

    def profile(self, server, ref):
        return server.identity().GetProfile(identity_pb2.GetProfileRequest(
            tenant=self.tenant, customer=ref), timeout=T).profile

    def owner(self, server, identifier):
        return server.identity().Resolve(identity_pb2.ResolveRequest(
            tenant=self.tenant, identifier=identifier), timeout=T).customer_id

    def timeline(self, server, ref, order=OLDEST):
        events, _ = self.list_all(server, ref, 500, order)
        return events

    def assertOnce(self, events, expected_ids, msg=""):
        counts = collections.Counter(e.event_id for e in events)
        dupes = sorted(i for i, n in counts.items() if n > 1)
        self.assertFalse(dupes, "%s: events stored more than once: %s" % (msg, dupes[:10]))
        missing = sorted(set(expected_ids) - set(counts))
        extra = sorted(set(counts) - set(expected_ids))
        self.assertFalse(missing, "%s: events missing: %s" % (msg, missing[:10]))
        self.assertFalse(extra, "%s: unexpected events: %s" % (msg, extra[:10]))

    def assertOccurredOrder(self, events, msg=""):
        times = [(e.occurred_at.seconds, e.occurred_at.nanos) for e in events]
        self.assertEqual(times, sorted(times), "%s: not in occurred_at order: %s" %
                         (msg, ids(events)))


# --------------------------------------------------------------------------------------------
# The journey


class MergeJourneyTest(MergeCase):

    def test_chatbot_visitor_and_caller_merged_by_an_agent_then_unmerged(self):
        base = int(time.time()) - 3600
        cookie = H.unique("cookie-")
        phone_raw = "+1 (415) 555-%04d" % (int(H.unique()[:4], 16) % 10000)
        chat_conv, call_conv = H.unique("chat-"), H.unique("call-")
        chat_ident = H.ident(C.IDENTIFIER_TYPE_CHAT_SESSION, cookie)
        chat_ref = H.by_ident(C.IDENTIFIER_TYPE_CHAT_SESSION, cookie)

        # The chatbot visitor (the source) and the caller (the target), interleaved in time.
        src = self.resolve(self.a, C.IDENTIFIER_TYPE_CHAT_SESSION, cookie).customer_id
        bot = dict(actor_type=C.Actor.TYPE_BOT, actor_id="helpbot")
        chat = [
            H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, event_id="chat-1",
                    conversation_id=chat_conv, occurred_at=base, summary="My parcel is late"),
            H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, event_id="chat-2",
                    conversation_id=chat_conv, occurred_at=base + 20,
                    summary="Bot: tracking stalled", **bot),
            H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, event_id="chat-3",
                    conversation_id=chat_conv, occurred_at=base + 40,
                    summary="Please call me back"),
        ]
        # An event both will hold (a CRM case imported into each): the target's copy wins.
        shared_src = H.event(C.CHANNEL_EMAIL, C.EVENT_KIND_CASE_UPDATE, event_id="shared",
                             actor_type=C.Actor.TYPE_SYSTEM, occurred_at=base + 4,
                             summary="case opened (chat copy)")
        for e in (chat[0], shared_src, chat[1]):
            self.assertEqual(self.append(self.a, chat_ref, [e]).customer_id, src)
        self.update_profile(self.a, src, ["display_name", "language", "attributes"],
                            display_name="Ann Lee", language="en",
                            attributes={"postal_code": "94105"})
        email = self.a.identity().Link(identity_pb2.LinkRequest(
            tenant=self.tenant, customer_id=src,
            identifier=H.ident(C.IDENTIFIER_TYPE_EMAIL, H.unique("ann.") + "@example.com"),
            channel=C.CHANNEL_CHATBOT, verification=identity_pb2.VERIFICATION_ASSERTED,
            actor=C.Actor(type=C.Actor.TYPE_BOT, id="helpbot")), timeout=T).identifier

        tgt_resolved = self.resolve(self.b, C.IDENTIFIER_TYPE_PHONE, phone_raw)
        tgt, phone = tgt_resolved.customer_id, tgt_resolved.identifier
        agent_call = dict(actor_type=C.Actor.TYPE_AGENT, actor_id="agent-42")
        voice = [
            H.event(C.CHANNEL_EMAIL, C.EVENT_KIND_CASE_UPDATE, event_id="shared",
                    actor_type=C.Actor.TYPE_SYSTEM, occurred_at=base + 5,
                    summary="case opened (phone copy)"),
            H.event(C.CHANNEL_VOICE, C.EVENT_KIND_CALL_STARTED, event_id="call-1",
                    conversation_id=call_conv, occurred_at=base + 10, summary="Inbound call"),
            H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE, event_id="call-2",
                    conversation_id=call_conv, occurred_at=base + 30,
                    summary="Caller says they chatted earlier", **agent_call),
            H.event(C.CHANNEL_VOICE, C.EVENT_KIND_CALL_ENDED, event_id="call-3",
                    conversation_id=call_conv, occurred_at=base + 50, summary="Call ended"),
        ]
        self.assertEqual(self.append(self.b, H.by_id(tgt), voice).customer_id, tgt)
        self.update_profile(self.b, tgt, ["language", "tier"], language="fr", tier="gold")
        self.assertNotEqual(src, tgt)

        # A watcher on the source, opened before the merge on the other instance, from the
        # newest event it has shown (a watch without a cursor starts wherever the head is once it
        # is subscribed, which would race the append below).
        last_shown = self.append(self.a, chat_ref, [chat[1]]).results[0].event.cursor
        watch = H.WatchReader(self.b.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=H.by_id(src), after_cursor=last_shown))
        try:
            # The chat goes on while the watcher is open: it is live on the source.
            self.assertEqual(self.append(self.a, chat_ref, [chat[2]]).customer_id, src)
            self.assertEqual(ids([watch.next_event(5)]), ["chat-3"])
            merged = self.merge(self.a, src, tgt, take_from_source=["language"])
            self.assertFalse(merged.already_merged)
            m = merged.merge
            self.assertEqual((m.source_customer_id, m.target_customer_id, m.state),
                             (src, tgt, REC.STATE_MERGED))
            self.assertEqual((m.events_moved, m.events_skipped), (3, 1))
            self.assertEqual(list(m.take_from_source), ["language"])
            self.assertFalse(m.automatic)
            self.assertEqual(m.actor.id, "agent-42")
            self.assertEqual(sorted(li.identifier.value for li in m.source_identifiers),
                             sorted([cookie, email.value]))
            merge_id = m.merge_id

            # One timeline, through the source's id, the source's identifier and the target.
            everything = ids(sorted(chat + voice, key=lambda e: e.occurred_at.seconds))
            for server in (self.a, self.b):
                for label, ref in (("source id", H.by_id(src)), ("chat session", chat_ref),
                                   ("target id", H.by_id(tgt))):
                    events = self.timeline(server, ref)
                    self.assertEqual(ids(events), everything, label)
                    self.assertEqual({e.customer_id for e in events}, {tgt}, label)
                    self.assertOccurredOrder(events, label)
                    newest = self.timeline(server, ref, NEWEST)
                    self.assertEqual(ids(newest), everything[::-1], label)
            page = self.a.timeline().List(timeline_pb2.ListRequest(
                tenant=self.tenant, customer=H.by_id(src), page_size=2, order=OLDEST), timeout=T)
            self.assertEqual(ids(page.events), everything[:2])
            rest = self.a.timeline().List(timeline_pb2.ListRequest(
                tenant=self.tenant, customer=H.by_id(src), page_size=10, order=OLDEST,
                page_token=page.next_page_token), timeout=T)
            self.assertEqual(ids(rest.events), everything[2:])

            # The screen pop through the chat session: the target, with both identifiers.
            ctx = self.context(self.b, chat_ref, recent=20)
            self.assertEqual(ctx.profile.customer_id, tgt)
            self.assertEqual(ctx.total_events, 7)
            self.assertEqual(ids(ctx.recent_events).count("shared"), 1)
            # The source filled the target's empty fields and, where asked, won.
            self.assertEqual((ctx.profile.display_name, ctx.profile.language, ctx.profile.tier),
                             ("Ann Lee", "en", "gold"))
            self.assertEqual(dict(ctx.profile.attributes), {"postal_code": "94105"})
            self.assertEqual([c.conversation_id for c in ctx.open_conversations], [chat_conv])
            self.assertEqual(ids(ctx.recent_events), everything[::-1])
            by_value = {li.identifier.value: li for li in ctx.profile.identifiers}
            self.assertEqual(set(by_value), {cookie, phone.value, email.value})
            for moved in (cookie, email.value):
                ev = by_value[moved].evidence
                self.assertEqual((ev.merge_id, ev.merged_from), (merge_id, src), moved)
                self.assertTrue(ev.first_seen.seconds, moved)
            self.assertEqual(by_value[email.value].evidence.channel, C.CHANNEL_CHATBOT)
            self.assertEqual(by_value[email.value].evidence.verification,
                             identity_pb2.VERIFICATION_ASSERTED)
            self.assertEqual(by_value[email.value].evidence.linked_by.id, "helpbot")
            own = by_value[phone.value].evidence
            self.assertEqual((own.merge_id, own.merged_from), ("", ""))
            self.assertEqual(ctx.last_activity.channel, C.CHANNEL_VOICE)  # call-3 is the latest
            self.assertEqual(self.profile(self.a, H.by_id(src)).customer_id, tgt)
            for identifier in (chat_ident, email, phone):
                self.assertEqual(self.owner(self.a, identifier), tgt, identifier.value)
            # Event ids of both are remembered: retries through either answer duplicate.
            for ref, e, summary in ((chat_ref, chat[0], chat[0].summary),
                                    (H.by_id(src), shared_src, "case opened (phone copy)"),
                                    (H.by_id(tgt), voice[1], voice[1].summary)):
                dup = self.append(self.b, ref, [e]).results[0]
                self.assertTrue(dup.duplicate, e.event_id)
                self.assertEqual(dup.event.summary, summary)
                self.assertEqual(dup.event.customer_id, tgt)

            # The watcher on the source follows: an append to the target reaches it.
            after = H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE, event_id="after-merge",
                            occurred_at=base + 60, summary="Callback scheduled", **agent_call)
            self.append(self.a, H.by_id(tgt), [after])
            seen = self.watch_until(watch, "after-merge")
            self.assertEqual(seen[-1].customer_id, tgt)

            # An append through the source's identifier lands on the target.
            via_src = H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, event_id="chat-4",
                              conversation_id=chat_conv, occurred_at=base + 70,
                              summary="Thanks for the call")
            resp = self.append(self.b, chat_ref, [via_src])
            self.assertEqual(resp.customer_id, tgt)
            self.assertEqual(resp.results[0].event.customer_id, tgt)
            seen += self.watch_until(watch, "chat-4")
            counts = collections.Counter(ids(seen))
            self.assertFalse([i for i, n in counts.items() if n > 1],
                             "the watcher got an event twice: %s" % ids(seen))
            self.assertEqual({e.customer_id for e in seen}, {tgt})
            self.assertEqual(ids(self.timeline(self.a, H.by_id(src))),
                             everything + ["after-merge", "chat-4"])
        finally:
            watch.cancel()

        # Both histories list the merge; a retry answers already_merged with the same record.
        for who in (src, tgt):
            hist = self.history(self.b, who)
            self.assertEqual([(h.merge_id, h.state) for h in hist],
                             [(merge_id, REC.STATE_MERGED)], who)
        retry = self.merge(self.b, src, tgt)
        self.assertTrue(retry.already_merged)
        self.assertEqual(retry.merge.merge_id, merge_id)
        self.assertEqual(retry.merge.state, REC.STATE_MERGED)

        # Unmerge: the source comes back with its events and what was appended through it.
        um = self.unmerge(self.a, merge_id).merge
        self.assertEqual((um.merge_id, um.state), (merge_id, REC.STATE_UNMERGED))
        # Counted as the events the source lacked: the one appended through it while merged
        # (its own three stayed in its keys).
        self.assertEqual(um.events_returned, 1)
        self.assertEqual(um.unmerged_by.id, "agent-42")
        for server in (self.a, self.b):
            src_events = self.timeline(server, H.by_id(src))
            self.assertEqual(ids(src_events), ["chat-1", "shared", "chat-2", "chat-3", "chat-4"])
            self.assertEqual(src_events[1].summary, "case opened (chat copy)")
            self.assertEqual({e.customer_id for e in src_events}, {src})
            self.assertEqual(ids(self.timeline(server, chat_ref)), ids(src_events))
            tgt_events = self.timeline(server, H.by_id(tgt))
            self.assertEqual(ids(tgt_events),
                             ["shared", "call-1", "call-2", "call-3", "after-merge"])
            self.assertEqual(tgt_events[0].summary, "case opened (phone copy)")
            self.assertEqual({e.customer_id for e in tgt_events}, {tgt})
        self.assertEqual(self.owner(self.a, chat_ident), src)
        self.assertEqual(self.owner(self.a, email), src)
        self.assertEqual(self.owner(self.a, phone), tgt)
        self.assertEqual(self.profile(self.b, H.by_id(src)).customer_id, src)
        src_ctx = self.context(self.a, chat_ref)
        self.assertEqual(src_ctx.profile.customer_id, src)
        self.assertEqual(src_ctx.total_events, 5)
        self.assertEqual((src_ctx.profile.display_name, src_ctx.profile.language),
                         ("Ann Lee", "en"))
        self.assertEqual([c.conversation_id for c in src_ctx.open_conversations], [chat_conv])
        self.assertEqual({li.identifier.value for li in src_ctx.profile.identifiers},
                         {cookie, email.value})
        tgt_ctx = self.context(self.a, H.by_id(tgt))
        self.assertEqual(tgt_ctx.total_events, 5)
        # The target's fields the merge changed are back.
        self.assertEqual((tgt_ctx.profile.display_name, tgt_ctx.profile.language,
                          tgt_ctx.profile.tier), ("", "fr", "gold"))
        self.assertEqual(dict(tgt_ctx.profile.attributes), {})
        self.assertEqual(list(tgt_ctx.open_conversations), [])
        self.assertEqual({li.identifier.value for li in tgt_ctx.profile.identifiers},
                         {phone.value})
        for who in (src, tgt):
            hist = self.history(self.a, who)
            self.assertEqual([(h.merge_id, h.state) for h in hist],
                             [(merge_id, REC.STATE_UNMERGED)], who)
        code, details = H.rpc_code(self.a.identity().Unmerge, identity_pb2.UnmergeRequest(
            tenant=self.tenant, merge_id=merge_id, reason="again", actor=agent()))
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)

    def watch_until(self, watch, event_id, timeout=5.0):
        """Events from the watch up to and including event_id."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            e = watch.next_event(max(0.05, deadline - time.monotonic()))
            got.append(e)
            if e.event_id == event_id:
                return got

    def test_an_open_case_and_its_promise_follow_the_merge_and_come_back(self):
        """The source's open case (in a journey stage, with a promise) moves to the target with
        its entries in the tenant's journey and due-promise index: the journey counts it once,
        the overdue promise raises one alert, naming the target; an Unmerge gives the case back,
        still counted once."""
        cases = case_pb2_grpc.CaseServiceStub(self.a.channel)
        cases.SetJourney(case_pb2.SetJourneyRequest(tenant=self.tenant,
                                                    stages=["ordered", "shipped"]), timeout=T)
        src = self.resolve(self.a, C.IDENTIFIER_TYPE_CHAT_SESSION,
                           H.unique("cookie-")).customer_id
        tgt = self.resolve(self.b, C.IDENTIFIER_TYPE_PHONE, "+1 (415) 555-%04d" %
                           (int(H.unique()[:4], 16) % 10000)).customer_id
        case_id = H.unique("case-")
        cases.OpenCase(case_pb2.OpenCaseRequest(
            tenant=self.tenant, customer=H.by_id(src), case_id=case_id, topic="late parcel",
            actor=agent(), channel=C.CHANNEL_CHATBOT), timeout=T)
        due = int(time.time()) + 3
        update = case_pb2.UpdateCaseRequest(
            tenant=self.tenant, customer=H.by_id(src), case_id=case_id, actor=agent(),
            channel=C.CHANNEL_CHATBOT, stage="shipped", promise="a call back")
        update.promised_by.seconds = due
        cases.UpdateCase(update, timeout=T)

        def open_cases():
            stats = cases.GetJourneyStats(case_pb2.GetJourneyStatsRequest(tenant=self.tenant),
                                          timeout=T)
            return [st.open_cases for st in stats.stages]

        H.wait_until(lambda: open_cases() == [0, 1], 10, what="the case counted in shipped")
        rec = self.merge(self.b, src, tgt).merge
        self.assertEqual(rec.state, REC.STATE_MERGED)
        case = cases.GetCase(case_pb2.GetCaseRequest(tenant=self.tenant, customer=H.by_id(tgt),
                                                     case_id=case_id), timeout=T)
        self.assertEqual((case.stage, case.promise.text), ("shipped", "a call back"))
        self.assertEqual(open_cases(), [0, 1])

        # The promise moved to the target: its overdue alert names the target, once.
        alerts = alert_pb2_grpc.AlertServiceStub(self.b.channel)

        def overdue():
            return [a for a in alerts.ListAlerts(alert_pb2.ListAlertsRequest(
                tenant=self.tenant, page_size=100, include_acknowledged=True), timeout=T).alerts
                if a.kind == alert_pb2.ALERT_KIND_PROMISE_OVERDUE]

        H.wait_until(lambda: overdue(), 15, what="the overdue alert")
        time.sleep(1.5)  # both instances scan every second: still one alert
        self.assertEqual([(a.customer_id, a.alert_id) for a in overdue()],
                         [(tgt, "promise_overdue:%s:%s:%d" % (tgt, case_id, due * 1000))])

        self.unmerge(self.a, rec.merge_id)
        back = cases.GetCase(case_pb2.GetCaseRequest(tenant=self.tenant, customer=H.by_id(src),
                                                     case_id=case_id), timeout=T)
        self.assertEqual(back.stage, "shipped")
        self.assertEqual(H.rpc_code(cases.GetCase, case_pb2.GetCaseRequest(
            tenant=self.tenant, customer=H.by_id(tgt), case_id=case_id))[0],
            grpc.StatusCode.NOT_FOUND)
        H.wait_until(lambda: open_cases() == [0, 1], 10, what="the case counted once")
        time.sleep(0.3)
        self.assertEqual(open_cases(), [0, 1])



# --------------------------------------------------------------------------------------------
# Cursors, page tokens and watches across a merge; merge chains; appends racing a merge

class MergeReadersTest(MergeCase):

    def pair(self, server=None):
        """A chat visitor (source: chat-0..2 at t+0, 20, 40) and a caller (target: call-0..2 at
        t+10, 30, 50), each appended in occurred_at order. Returns (src, tgt, cookie, source
        append results, target append results)."""
        server = server or self.a
        base = int(time.time()) - 3600
        cookie = H.unique("cookie-")
        src = self.resolve(server, C.IDENTIFIER_TYPE_CHAT_SESSION, cookie).customer_id
        tgt = self.resolve(server, C.IDENTIFIER_TYPE_PHONE,
                           "+1 650 555 %04d" % (int(H.unique()[:4], 16) % 10000)).customer_id
        s = self.append(server, H.by_id(src), [
            H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, event_id="chat-%d" % i,
                    occurred_at=base + 20 * i) for i in range(3)]).results
        t = self.append(server, H.by_id(tgt), [
            H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE, event_id="call-%d" % i,
                    actor_type=C.Actor.TYPE_AGENT, actor_id="agent-1",
                    occurred_at=base + 10 + 20 * i) for i in range(3)]).results
        return src, tgt, cookie, [r.event for r in s], [r.event for r in t]

    def watch(self, server, ref, **kw):
        return H.WatchReader(server.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ref, **kw), timeout=20)

    def drain(self, watch, until, timeout=5.0):
        got = []
        deadline = time.monotonic() + timeout
        while not got or got[-1].event_id != until:
            got.append(watch.next_event(max(0.05, deadline - time.monotonic())))
        return ids(got)

    def test_target_cursors_and_page_tokens_held_before_the_merge_stay_valid(self):
        src, tgt, _, _, t = self.pair()
        page = self.a.timeline().List(timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(tgt), page_size=1, order=OLDEST), timeout=T)
        self.assertEqual(ids(page.events), ["call-0"])
        self.merge(self.a, src, tgt)
        merged_order = ["chat-0", "call-0", "chat-1", "call-1", "chat-2", "call-2"]
        self.assertEqual(ids(self.timeline(self.b, H.by_id(tgt))), merged_order)
        rest = self.b.timeline().List(timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(tgt), page_size=10, order=OLDEST,
            page_token=page.next_page_token), timeout=T)
        self.assertEqual(ids(rest.events), merged_order[2:])
        # A target watcher resuming from call-0's cursor: what follows call-0 now, then live.
        w = self.watch(self.b, H.by_id(tgt), after_cursor=t[0].cursor)
        try:
            self.append(self.a, H.by_id(tgt), [H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE,
                                                       event_id="live")])
            self.assertEqual(self.drain(w, "live"), merged_order[2:] + ["live"])
        finally:
            w.cancel()

    def test_watch_from_start_through_the_merged_source_id_replays_the_merged_timeline(self):
        """A Watch with from_start=true opened through the merged source's customer_id replays
        the whole merged timeline, like the same Watch through the target's id or the source's
        identifier (once a bug: it replayed nothing and started at the merge's head)."""
        src, tgt, cookie, _, _ = self.pair()
        self.merge(self.a, src, tgt)
        self.append(self.a, H.by_id(tgt), [H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE,
                                                   event_id="live")])
        w = self.watch(self.b, H.by_id(src), from_start=True)
        try:
            self.assertEqual(self.drain(w, "live"),
                             ["chat-0", "call-0", "chat-1", "call-1", "chat-2", "call-2", "live"])
        finally:
            w.cancel()

    def test_watch_on_the_source_resumes_with_the_last_cursor_it_delivered(self):
        """A Watch on the source follows the merge and delivers the target's events with the
        target's cursors; a client reconnecting through the same source id with the last cursor
        it received resumes there (once a bug: INVALID_ARGUMENT "belongs to another customer")."""
        src, tgt, _, s, _ = self.pair()
        w = self.watch(self.b, H.by_id(src), after_cursor=s[-1].cursor)
        try:
            self.append(self.a, H.by_id(src), [H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE,
                                                       event_id="chat-9")])
            self.assertEqual(w.next_event(5).event_id, "chat-9")  # live on the source
            self.merge(self.a, src, tgt)
            self.append(self.a, H.by_id(tgt), [H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE,
                                                       event_id="live-1")])
            last = w.next_event(5)
            self.assertEqual((last.event_id, last.customer_id), ("live-1", tgt))
        finally:
            w.cancel()
        self.append(self.a, H.by_id(tgt), [H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE,
                                                   event_id="live-2")])
        w = self.watch(self.b, H.by_id(src), after_cursor=last.cursor)
        try:
            self.assertEqual(self.drain(w, "live-2"), ["live-2"])
        finally:
            w.cancel()

    def test_watch_resumed_with_a_source_cursor_from_before_the_merge_has_no_gap(self):
        """A watcher of the source that received chat-0, then disconnected, reconnects after the
        merge with chat-0's cursor: chat-1 and chat-2 (appended to the source before the merge,
        never delivered) come next (once a bug: skipped silently, the watch started at the
        merge's head)."""
        src, tgt, _, s, _ = self.pair()
        self.merge(self.a, src, tgt)
        self.append(self.a, H.by_id(tgt), [H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE,
                                                   event_id="live")])
        w = self.watch(self.b, H.by_id(src), after_cursor=s[0].cursor)
        try:
            got = self.drain(w, "live")
        finally:
            w.cancel()
        self.assertNotIn("chat-0", got)
        self.assertEqual(len(got), len(set(got)), got)
        self.assertLessEqual({"chat-1", "chat-2"}, set(got), "events never delivered: %s" % got)

    def chain(self):
        """A into B, then B into C; each with one event. Returns (a, b, c, m1, m2, a's email)."""
        email = H.ident(C.IDENTIFIER_TYPE_EMAIL, H.unique("a.") + "@example.com")
        a = self.resolve(self.a, email.type, email.value).customer_id
        b = self.resolve(self.a, C.IDENTIFIER_TYPE_APP_USER_ID, H.unique("user-")).customer_id
        c = self.resolve(self.a, C.IDENTIFIER_TYPE_CRM_ID, H.unique("crm-")).customer_id
        base = int(time.time()) - 600
        for n, who in enumerate((a, b, c)):
            self.append(self.a, H.by_id(who), [H.event(C.CHANNEL_WEB, C.EVENT_KIND_PAGE_VIEW,
                                                       event_id="ev-%s" % "abc"[n],
                                                       occurred_at=base + n)])
        m1 = self.merge(self.a, a, b).merge.merge_id
        m2 = self.merge(self.b, b, c).merge.merge_id
        return a, b, c, m1, m2, email

    def test_a_chain_of_merges_redirects_and_unwinds_in_order(self):
        a, b, c, m1, m2, email = self.chain()
        for ref in (H.by_id(a), H.by_id(b), H.by_ident(email.type, email.value)):
            self.assertEqual(ids(self.timeline(self.b, ref)), ["ev-a", "ev-b", "ev-c"])
            self.assertEqual(self.profile(self.a, ref).customer_id, c)
        self.assertEqual(self.owner(self.a, email), c)
        # A merged source's own history is not redirected.
        self.assertEqual([h.merge_id for h in self.history(self.a, a)], [m1])
        self.assertEqual([h.merge_id for h in self.history(self.a, b)], [m2, m1])
        self.assertEqual([h.merge_id for h in self.history(self.a, c)], [m2])
        # A into C directly: A was merged (into B).
        code, details = H.rpc_code(self.a.identity().Merge, identity_pb2.MergeRequest(
            tenant=self.tenant, source_customer_id=a, target_customer_id=c, reason="x",
            actor=agent()))
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)
        self.assertIn(b, details)
        # The first merge cannot be undone while its target is merged on.
        code, details = H.rpc_code(self.a.identity().Unmerge, identity_pb2.UnmergeRequest(
            tenant=self.tenant, merge_id=m1, reason="x", actor=agent()))
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)
        self.assertIn(m2, details)
        self.unmerge(self.b, m2)
        self.assertEqual(ids(self.timeline(self.a, H.by_id(a))), ["ev-a", "ev-b"])
        self.assertEqual(ids(self.timeline(self.a, H.by_id(c))), ["ev-c"])
        self.assertEqual(self.owner(self.a, email), b)
        self.unmerge(self.a, m1)
        for who, want in ((a, ["ev-a"]), (b, ["ev-b"]), (c, ["ev-c"])):
            self.assertEqual(ids(self.timeline(self.b, H.by_id(who))), want)
            self.assertEqual(self.profile(self.b, H.by_id(who)).customer_id, who)
        self.assertEqual(self.owner(self.a, email), a)

    def test_appends_through_the_first_source_of_a_chain_go_back_to_it(self):
        """With A merged into B and B into C, an event appended through A's id (or A's
        identifier) carries both merges: unmerging B from C gives it to B, and unmerging A from
        B gives it to A — "the events appended after the merge through the source's id or one
        of its identifiers" (once a bug: only the last hop's merge was kept)."""
        a, b, c, m1, m2, email = self.chain()
        self.assertEqual(self.append(self.a, H.by_id(a), [H.event(
            C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, event_id="via-a-id")]).customer_id, c)
        self.assertEqual(self.append(self.a, H.by_ident(email.type, email.value), [H.event(
            C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, event_id="via-a-email")]).customer_id, c)
        self.unmerge(self.a, m2)
        self.unmerge(self.a, m1)
        self.assertEqual(ids(self.timeline(self.a, H.by_id(b))), ["ev-b"])
        self.assertEqual(ids(self.timeline(self.a, H.by_id(a))),
                         ["ev-a", "via-a-id", "via-a-email"])

    def test_appends_racing_a_merge_are_stored_once_or_refused_with_aborted(self):
        src, tgt, cookie, s, t = self.pair()
        refs = {"src-id": (self.a, H.by_id(src)),
                "src-cookie": (self.b, H.by_ident(C.IDENTIFIER_TYPE_CHAT_SESSION, cookie)),
                "tgt-id": (self.b, H.by_id(tgt))}
        acked = collections.defaultdict(list)
        refused = collections.Counter()
        errors = []
        merged = threading.Event()
        stop = threading.Event()

        def appender(name):
            server, ref = refs[name]
            n, deadline = 0, time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline and n < 300:
                e = H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, event_id="%s-%03d" % (name, n))
                while time.monotonic() < deadline:  # retried with the same event id
                    try:
                        resp = self.append(server, ref, [e])
                    except grpc.RpcError as err:
                        if err.code() != grpc.StatusCode.ABORTED:
                            errors.append((name, err.code(), err.details()))
                            return
                        refused[name] += 1
                        time.sleep(0.002)
                        continue
                    acked[name].append((e.event_id, resp.customer_id))
                    break
                n += 1
                if merged.is_set() and n % 20 == 0:
                    stop.set()

        threads = [threading.Thread(target=appender, args=(name,)) for name in refs]
        for th in threads:
            th.start()
        try:
            time.sleep(0.1)
            rec = self.merge(self.a, src, tgt).merge
            merged.set()
        finally:
            for th in threads:
                th.join(timeout=30)
            stop.set()
        self.assertFalse(errors)
        all_acked = [i for name in refs for i, _ in acked[name]]
        self.assertOnce(self.timeline(self.b, H.by_id(tgt)), ids(s) + ids(t) + all_acked)
        # Acknowledged through the source before the merge locked it: moved with the source.
        src_before = [i for name in ("src-id", "src-cookie") for i, who in acked[name]
                      if who == src]
        self.assertEqual(rec.events_moved, len(s) + len(src_before))
        self.assertTrue(all(who in (src, tgt) for name in refs for _, who in acked[name]))

    def test_a_merge_call_meeting_a_running_merge_answers_aborted(self):
        """Merge(B into A) while A into B is staging finds B held and answers ABORTED without
        touching the running merge, which completes (once a bug: it drove the other merge too,
        two drivers raced on the staging stream and one call answered INTERNAL)."""
        a = self.resolve(self.a, C.IDENTIFIER_TYPE_APP_USER_ID, H.unique("user-")).customer_id
        b = self.resolve(self.a, C.IDENTIFIER_TYPE_CRM_ID, H.unique("crm-")).customer_id
        for who, label in ((a, "a"), (b, "b")):
            for k in range(20):
                self.append(self.a, H.by_id(who), [
                    H.event(C.CHANNEL_WEB, C.EVENT_KIND_PAGE_VIEW,
                            event_id="%s%02d-%03d" % (label, k, i)) for i in range(500)])
        answers = {}

        def call(name, server, source, target):
            code, details = H.rpc_code(server.identity().Merge, identity_pb2.MergeRequest(
                tenant=self.tenant, source_customer_id=source, target_customer_id=target,
                reason="x", actor=agent()), timeout=30)
            answers[name] = (code, details)

        main = threading.Thread(target=call, args=("a-into-b", self.a, a, b))
        main.start()
        probes_stored = []

        def b_is_locked():
            code = H.rpc_code(self.b.timeline().Append, timeline_pb2.AppendRequest(
                tenant=self.tenant, customer=H.by_id(b), events=[H.event(
                    C.CHANNEL_WEB, C.EVENT_KIND_PAGE_VIEW)]))[0]
            if code == grpc.StatusCode.OK:
                probes_stored.append(1)  # appended before the merge locked B: merged too
            return code == grpc.StatusCode.ABORTED

        H.wait_until(b_is_locked, 10, interval=0.001, what="the merge to lock B")
        others = [threading.Thread(target=call, args=("b-into-a-%d" % i, self.b, b, a))
                  for i in range(3)]
        for th in others:
            th.start()
        for th in [main] + others:
            th.join(timeout=40)
        self.assertEqual(answers["a-into-b"][0], grpc.StatusCode.OK, answers)
        for name, (code, details) in answers.items():
            if name != "a-into-b":
                self.assertIn(code, (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION),
                              "%s: %s" % (name, details))
        self.assertEqual(len(self.timeline(self.b, H.by_id(a))), 20000 + len(probes_stored))


# --------------------------------------------------------------------------------------------
# kill -9 in the middle of a merge or an unmerge


EVENTS_EACH = 50


class MergeKillTest(MergeCase):
    """Each test has its own redis-server, which outlives the onestory-servers it kills, and a
    long-lived instance `live` started first (its periodic recovery only takes merges idle for
    10 s, so it leaves the interrupted one alone): during the gap between the death and the
    restart it shows what clients see."""

    cluster = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # On a cluster, one for the class (a cluster per test would take most of the suite's
        # time): each test's customers are its own and each test finishes its merge, so a
        # server's start-up recovery finds nothing of another test (the shared environment's
        # cluster holds the other suites' merges).
        if H.ON_CLUSTER:
            cls.cluster = H.RedisCluster()

    @classmethod
    def tearDownClass(cls):
        if cls.cluster:
            for proc in cls.cluster.procs:
                proc.kill()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.redis = self.cluster or H.Redis()
        self.servers = []
        self.live = self.start()

    def tearDown(self):
        for s in self.servers:
            s.close_channel()
            s.proc.kill()
        if not self.cluster:
            self.redis.proc.kill()

    def start(self, failpoint=None):
        server = H.Server(env_extra={"ONESTORY_FAILPOINT": failpoint} if failpoint else None,
                          **self.redis.server_kwargs())
        self.servers.append(server)
        return server

    def populate(self, server, label):
        """Two customers, a chat visitor (source) and a caller (target), with EVENTS_EACH events
        each, interleaved by occurred_at. Returns (source, target, identifiers by owner,
        source event ids, target event ids)."""
        base = int(time.time()) - 7200
        cookie = H.unique("cookie-")
        phone_raw = "+44 20 7946 %04d" % (int(H.unique()[:4], 16) % 10000)
        src = self.resolve(server, C.IDENTIFIER_TYPE_CHAT_SESSION, cookie).customer_id
        device = H.ident(C.IDENTIFIER_TYPE_DEVICE_ID, H.unique("dev-"))
        server.identity().Link(identity_pb2.LinkRequest(
            tenant=self.tenant, customer_id=src, identifier=device), timeout=T)
        t = self.resolve(server, C.IDENTIFIER_TYPE_PHONE, phone_raw)
        tgt = t.customer_id
        src_events = [H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE,
                              event_id="%s-s%02d" % (label, i), occurred_at=base + 2 * i,
                              summary="chat %d" % i) for i in range(EVENTS_EACH)]
        tgt_events = [H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE, actor_type=C.Actor.TYPE_AGENT,
                              actor_id="agent-1", event_id="%s-t%02d" % (label, i),
                              occurred_at=base + 2 * i + 1, summary="call %d" % i)
                      for i in range(EVENTS_EACH)]
        self.append(server, H.by_id(src), src_events)
        self.append(server, H.by_id(tgt), tgt_events)
        identifiers = {"source": [H.ident(C.IDENTIFIER_TYPE_CHAT_SESSION, cookie), device],
                       "target": [t.identifier]}
        return src, tgt, identifiers, ids(src_events), ids(tgt_events)

    def expect_death(self, server, call, step):
        """call() answers UNAVAILABLE and the server exits with 137 at the failpoint."""
        code, details = grpc.StatusCode.OK, ""
        try:
            call()
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE,
                         "%s: the call answered %s (%s)" % (step, code, details))
        try:
            rc = server.proc.popen.wait(timeout=10)
        except Exception:
            self.fail("%s: the server did not die:\n%s" % (step, server.proc.log_tail()))
        self.assertEqual(rc, 137, "%s: exit code %s:\n%s" % (step, rc, server.proc.log_tail()))
        self.assertIn("failpoint.hit step=" + step, server.proc.log_tail(50))
        server.close_channel()

    def gap_writes(self, src, tgt, identifiers, label):
        """Through `live`, while the merge or unmerge is interrupted: appends to the source by
        id, to the source by identifier and to the target. Each is stored or answers ABORTED
        (a customer held by a merge). Returns {ref label: (ref, event, acknowledged)}."""
        ident = identifiers["source"][0]
        out = {}
        for name, ref in (("src-id", H.by_id(src)), ("src-ident", H.by_ident(ident.type,
                                                                           ident.value)),
                          ("tgt-id", H.by_id(tgt))):
            e = H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, event_id="%s-gap-%s" % (label, name),
                        summary="sent while the server was down")
            code, details = H.rpc_code(self.live.timeline().Append, timeline_pb2.AppendRequest(
                tenant=self.tenant, customer=ref, events=[e]))
            self.assertIn(code, (grpc.StatusCode.OK, grpc.StatusCode.ABORTED),
                          "%s: append to %s answered %s (%s)" % (label, name, code, details))
            out[name] = (ref, e, code == grpc.StatusCode.OK)
        return out

    def retry_gap_writes(self, server, gap):
        """Appends again every gap event (the refused ones and the stored ones: a retry of a
        stored one must answer duplicate); returns {label: customer_id it landed on}."""
        landed = {}
        for name, (ref, e, acked) in gap.items():
            resp = self.append(server, ref, [e])
            self.assertEqual(resp.results[0].duplicate, acked,
                             "%s: a retry of an %s append" % (name, "acknowledged" if acked else
                                                              "refused"))
            landed[name] = resp.customer_id
        return landed

    def wait_merged(self, server, src, tgt):
        def redirected():
            done = [h for h in self.history(server, src)
                    if h.state == REC.STATE_MERGED and h.target_customer_id == tgt]
            return done and self.profile(server, H.by_id(src)).customer_id == tgt and done[0]
        return H.wait_until(redirected, RECOVERY_TIMEOUT, interval=0.1,
                            what="the interrupted merge of %s into %s to finish" % (src, tgt))

    def wait_unmerged(self, server, merge_id, tgt):
        def unmerged():
            hist = [h for h in self.history(server, tgt) if h.merge_id == merge_id]
            return hist and hist[0].state == REC.STATE_UNMERGED and hist[0]
        return H.wait_until(unmerged, RECOVERY_TIMEOUT, interval=0.1,
                            what="the interrupted unmerge of %s to finish" % merge_id)

    def assert_merged(self, server, src, tgt, identifiers, all_ids, step):
        for ref in (H.by_id(src), H.by_id(tgt)):
            events = self.timeline(server, ref)
            self.assertOnce(events, all_ids, step)
            self.assertEqual({e.customer_id for e in events}, {tgt}, step)
            self.assertEqual(len({e.cursor for e in events}), len(events), step)
        for ident in identifiers["source"] + identifiers["target"]:
            self.assertEqual(self.owner(server, ident), tgt, "%s: %s" % (step, ident.value))
            self.assertEqual(self.profile(server, H.by_ident(ident.type, ident.value)).customer_id,
                             tgt, step)
        ctx = self.context(server, H.by_id(src))
        self.assertEqual((ctx.profile.customer_id, ctx.total_events), (tgt, len(all_ids)), step)
        self.assertEqual(len(ctx.profile.identifiers), 3, step)

    def assert_unmerged(self, server, src, tgt, identifiers, src_ids, tgt_ids, step):
        for who, own, role in ((src, src_ids, "source"), (tgt, tgt_ids, "target")):
            events = self.timeline(server, H.by_id(who))
            self.assertOnce(events, own, "%s %s" % (step, role))
            self.assertEqual({e.customer_id for e in events}, {who}, step)
            for ident in identifiers[role]:
                self.assertEqual(self.owner(server, ident), who, "%s: %s" % (step, ident.value))
            self.assertEqual(self.profile(server, H.by_id(who)).customer_id, who, step)
            ctx = self.context(server, H.by_id(who))
            self.assertEqual(ctx.total_events, len(own), "%s %s" % (step, role))
            self.assertEqual({li.identifier.value for li in ctx.profile.identifiers},
                             {i.value for i in identifiers[role]}, "%s %s" % (step, role))

    def kill_merge(self, step, finish_by):
        """A merge dies before `step`; `finish_by` is "restart" (start-up recovery) or "retry"
        (the same Merge again, on the live instance)."""
        label = step.replace(".", "-")
        src, tgt, identifiers, src_ids, tgt_ids = self.populate(self.live, label)
        doomed = self.start(failpoint=step)
        self.expect_death(doomed, lambda: self.merge(doomed, src, tgt), step)
        gap = self.gap_writes(src, tgt, identifiers, label)

        if finish_by == "restart":
            server = self.start()  # its start-up recovery finishes the merge
            rec = self.wait_merged(server, src, tgt)
        else:
            server = self.live
            retried = self.merge(server, src, tgt)
            rec = retried.merge
            self.assertEqual(rec.state, REC.STATE_MERGED, step)
            self.assertEqual(self.profile(server, H.by_id(src)).customer_id, tgt, step)
        landed = self.retry_gap_writes(server, gap)
        self.assertEqual(set(landed.values()), {tgt}, "%s: gap appends landed on %s" %
                         (step, landed))
        acked_src = [e.event_id for name, (_, e, acked) in gap.items()
                     if acked and name != "tgt-id"]
        self.assertEqual(rec.events_moved, EVENTS_EACH + len(acked_src), step)
        all_ids = src_ids + tgt_ids + [e.event_id for _, e, _ in gap.values()]
        self.assert_merged(server, src, tgt, identifiers, all_ids, step)
        again = self.merge(server, src, tgt)
        self.assertTrue(again.already_merged, step)
        self.assertEqual(again.merge.merge_id, rec.merge_id, step)
        for who in (src, tgt):
            self.assertEqual([(h.merge_id, h.state) for h in self.history(server, who)],
                             [(rec.merge_id, REC.STATE_MERGED)], "%s: history of %s" % (step, who))
        # The record left the pending set: no server has anything of this tenant left to recover
        # (on a cluster shared by the class, a record an earlier test left behind -- the one a
        # server died with before merge.lock, superseded by the retry's merge -- is dropped by
        # this test's servers at start-up).
        self.assertNotIn("event=merge.recovering tenant=%s " % self.tenant,
                         self.live.proc.log_tail(200))

    def kill_unmerge(self, step, finish_by):
        label = step.replace(".", "-")
        src, tgt, identifiers, src_ids, tgt_ids = self.populate(self.live, label)
        merge_id = self.merge(self.live, src, tgt).merge.merge_id
        # Appended through the source's identifier while merged: it goes back with the source.
        ident = identifiers["source"][0]
        late = H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, event_id=label + "-late")
        self.assertEqual(self.append(self.live, H.by_ident(ident.type, ident.value),
                                     [late]).customer_id, tgt)

        doomed = self.start(failpoint=step)
        self.expect_death(doomed, lambda: self.unmerge(doomed, merge_id), step)
        gap = self.gap_writes(src, tgt, identifiers, label)

        if finish_by == "restart":
            server = self.start()
            rec = self.wait_unmerged(server, merge_id, tgt)
        else:
            server = self.live
            rec = self.unmerge(server, merge_id).merge
            self.assertEqual(rec.state, REC.STATE_UNMERGED, step)
        landed = self.retry_gap_writes(server, gap)
        self.assertEqual(landed, {"src-id": src, "src-ident": src, "tgt-id": tgt}, step)
        self.assert_unmerged(
            server, src, tgt, identifiers,
            src_ids + [late.event_id, gap["src-id"][1].event_id, gap["src-ident"][1].event_id],
            tgt_ids + [gap["tgt-id"][1].event_id], step)
        code, details = H.rpc_code(server.identity().Unmerge, identity_pb2.UnmergeRequest(
            tenant=self.tenant, merge_id=merge_id, reason="again", actor=agent()))
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)
        self.assertIn("already unmerged", details)
        # Merging them again works (nothing of the first merge is left in the way).
        again = self.merge(server, src, tgt)
        self.assertFalse(again.already_merged)
        self.assertNotEqual(again.merge.merge_id, merge_id)
        self.assertOnce(self.timeline(server, H.by_id(src)),
                        src_ids + tgt_ids + [late.event_id] + [e.event_id for _, e, _ in
                                                               gap.values()], step + " remerged")


def _add_kill_tests():
    """One test per step and way of finishing: test_kill_before_merge_stage_then_restart, ..."""
    for steps, runner in ((MERGE_STEPS, MergeKillTest.kill_merge),
                          (UNMERGE_STEPS, MergeKillTest.kill_unmerge)):
        for step in steps:
            for finish_by in ("restart", "retry"):
                def test(self, step=step, finish_by=finish_by, runner=runner):
                    runner(self, step, finish_by)
                name = "test_kill_before_%s_then_%s" % (step.replace(".", "_"), finish_by)
                test.__name__ = name
                test.__doc__ = "kill -9 before %s; the %s finishes it" % (step, finish_by)
                setattr(MergeKillTest, name, test)


_add_kill_tests()


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
