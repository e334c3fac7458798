#!/usr/bin/python3
"""OneStory end-to-end tests: the real binaries, a real redis-server, Python's grpcio as client.

    /usr/bin/python3 tests/e2e/journey_test.py --build-dir build [-v] [-k pattern]

This file holds the cross-channel journey, idempotent retries, List paging and bad input over the
wire; lifecycle_test.py holds Watch across instances, the single-service binaries and health,
the embedded default and SIGTERM; fault_test.py kills onestory-server and redis-server mid-load.
Running this file runs all three and ends with one summary line:

    e2e: N passed, N failed

(exit code 0 only when nothing failed). The whole run takes well under a minute.
"""

import os
import signal
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402  (parses --build-dir and imports the generated stubs)
from harness import C, E2ECase, context_pb2, identity_pb2, ids, timeline_pb2  # noqa: E402

import grpc  # noqa: E402

T = H.RPC_TIMEOUT
NEWEST = timeline_pb2.ORDER_NEWEST_FIRST
OLDEST = timeline_pb2.ORDER_OLDEST_FIRST


class CrossChannelJourneyTest(E2ECase):
    """Chatbot on the web -> phone call -> store visit; GetContext at every switch."""

    def test_journey(self):
        base = int(time.time()) - 1800  # explicit occurred_at: half an hour ago, 1 s steps
        cookie = H.unique("Web-Cookie-")
        chat_conv = H.unique("chat-")
        call_conv = H.unique("call-")

        # 1. A new web visitor: the chat widget resolves its cookie, creating the customer.
        r = self.resolve(self.a, C.IDENTIFIER_TYPE_CHAT_SESSION, "  %s  " % cookie)
        self.assertTrue(r.created)
        self.assertEqual(r.identifier.value, cookie)  # trimmed, case kept
        cid = r.customer_id
        self.assertTrue(cid)
        again = self.resolve(self.b, C.IDENTIFIER_TYPE_CHAT_SESSION, cookie)
        self.assertEqual((again.customer_id, again.created), (cid, False))

        chat_ref = H.by_ident(C.IDENTIFIER_TYPE_CHAT_SESSION, cookie)
        bot = dict(actor_type=C.Actor.TYPE_BOT, actor_id="helpbot")
        chat = [
            H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, conversation_id=chat_conv,
                    occurred_at=base, summary="Where is my order?",
                    body="Hi, my order #A12345 has not arrived yet."),
            H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, conversation_id=chat_conv,
                    occurred_at=base + 20, summary="Bot: order shipped, tracking stalled",
                    body="Order A12345 shipped on Monday; tracking has not moved since. "
                         "I tried re-sending the tracking link.", **bot),
            H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, conversation_id=chat_conv,
                    occurred_at=base + 40, summary="Customer asks for a call back",
                    body="Please call me: +1 (415) 555-0100", case_id="order-A12345"),
        ]
        for e in chat:  # one message at a time, as a bot integration would
            resp = self.append(self.a, chat_ref, [e])
            self.assertEqual(resp.customer_id, cid)
            self.assertFalse(resp.results[0].duplicate)
            self.assertTrue(resp.results[0].event.cursor)

        # 2. The visitor gives a phone number: linked to the same customer, normalized.
        link = self.a.identity().Link(identity_pb2.LinkRequest(
            tenant=self.tenant, customer_id=cid, identifier=H.phone("+1 (415) 555-0100")),
            timeout=T)
        self.assertEqual(link.identifier.value, "14155550100")
        self.assertFalse(link.already_linked)
        relink = self.b.identity().Link(identity_pb2.LinkRequest(
            tenant=self.tenant, customer_id=cid, identifier=H.phone("14155550100")), timeout=T)
        self.assertTrue(relink.already_linked)

        # 3. The customer calls. The phone agent's console knows only the calling number, in
        #    another format, and asks instance B.
        caller = H.by_ident(C.IDENTIFIER_TYPE_PHONE, "14155550100")
        ctx = self.context(self.b, caller)
        self.assertEqual(ctx.profile.customer_id, cid)
        idents = {(i.identifier.type, i.identifier.value) for i in ctx.profile.identifiers}
        self.assertEqual(idents, {(C.IDENTIFIER_TYPE_CHAT_SESSION, cookie),
                                  (C.IDENTIFIER_TYPE_PHONE, "14155550100")})
        self.assertEqual(ids(ctx.recent_events), ids(reversed(chat)))  # newest first
        self.assertIn("A12345", ctx.recent_events[-1].body)
        self.assertEqual(ctx.recent_events[1].actor.id, "helpbot")
        self.assertTrue(all(e.customer_id == cid for e in ctx.recent_events))
        self.assertEqual(ctx.last_activity.channel, C.CHANNEL_CHATBOT)
        self.assertEqual(ctx.last_activity.at.seconds, base + 40)
        self.assertEqual([c.channel for c in ctx.channels], [C.CHANNEL_CHATBOT])
        self.assertEqual(len(ctx.open_conversations), 1)
        oc = ctx.open_conversations[0]
        self.assertEqual(oc.conversation_id, chat_conv)
        self.assertEqual(oc.channel, C.CHANNEL_CHATBOT)
        self.assertEqual(oc.event_count, 3)
        self.assertEqual(oc.started_at.seconds, base)
        self.assertEqual(oc.last_activity_at.seconds, base + 40)
        self.assertEqual(ctx.total_events, 3)
        self.assertEqual(ids(self.context(self.a, caller, recent=2).recent_events),
                         [chat[2].event_id, chat[1].event_id])

        # 4. The call, recorded through VOICE.
        agent = dict(actor_type=C.Actor.TYPE_AGENT, actor_id="agent-7")
        call = [
            H.event(C.CHANNEL_VOICE, C.EVENT_KIND_CALL_STARTED, conversation_id=call_conv,
                    occurred_at=base + 300, summary="Inbound call from 14155550100"),
            H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE, conversation_id=call_conv,
                    occurred_at=base + 360, case_id="order-A12345",
                    summary="Carrier lost parcel; replacement for A12345 sent express", **agent),
        ]
        self.append(self.b, caller, call)
        ctx = self.context(self.a, caller)
        self.assertEqual(ctx.profile.customer_id, cid)
        self.assertEqual(ctx.last_activity.channel, C.CHANNEL_VOICE)
        self.assertEqual([c.channel for c in ctx.channels], [C.CHANNEL_VOICE, C.CHANNEL_CHATBOT])
        self.assertEqual(ids(ctx.recent_events), ids(reversed(chat + call)))
        self.assertEqual([(c.conversation_id, c.channel, c.event_count)
                          for c in ctx.open_conversations],
                         [(call_conv, C.CHANNEL_VOICE, 2), (chat_conv, C.CHANNEL_CHATBOT, 3)])

        # The call ends: CALL_ENDED closes the call's conversation, the chat stays open.
        ended = H.event(C.CHANNEL_VOICE, C.EVENT_KIND_CALL_ENDED, conversation_id=call_conv,
                        occurred_at=base + 420, summary="Call ended", **agent)
        self.append(self.a, H.by_id(cid), [ended])
        ctx = self.context(self.b, caller)
        self.assertEqual([c.conversation_id for c in ctx.open_conversations], [chat_conv])
        self.assertEqual(ctx.last_activity.channel, C.CHANNEL_VOICE)
        self.assertEqual(ctx.recent_events[0].event_id, ended.event_id)
        self.assertEqual(ctx.total_events, 6)

        # The agent also closes the chat thread (CONVERSATION_ENDED): nothing is open now.
        close_chat = H.event(C.CHANNEL_VOICE, C.EVENT_KIND_CONVERSATION_ENDED,
                             conversation_id=chat_conv, occurred_at=base + 421,
                             actor_type=C.Actor.TYPE_SYSTEM)
        self.append(self.b, caller, [close_chat])
        ctx = self.context(self.a, caller)
        self.assertEqual(list(ctx.open_conversations), [])

        # 5. A store visit: the clerk links the loyalty card, then records the pick-up by card.
        link = self.a.identity().Link(identity_pb2.LinkRequest(
            tenant=self.tenant, customer_id=cid,
            identifier=H.ident(C.IDENTIFIER_TYPE_LOYALTY_ID, "ab-12 34")), timeout=T)
        self.assertEqual(link.identifier.value, "AB1234")
        card = H.by_ident(C.IDENTIFIER_TYPE_LOYALTY_ID, "AB 12-34")
        visit = H.event(C.CHANNEL_IN_STORE, C.EVENT_KIND_PURCHASE, occurred_at=base + 1500,
                        summary="Picked up replacement for A12345 at Market St store",
                        attributes={"store": "sf-market-st"})
        self.assertEqual(self.append(self.b, card, [visit]).customer_id, cid)
        for server, ref in ((self.a, card), (self.b, caller), (self.a, chat_ref)):
            ctx = self.context(server, ref)
            self.assertEqual(ctx.profile.customer_id, cid)
            self.assertEqual(ctx.last_activity.channel, C.CHANNEL_IN_STORE)
            self.assertEqual(ctx.last_activity.at.seconds, base + 1500)
            self.assertEqual([c.channel for c in ctx.channels],
                             [C.CHANNEL_IN_STORE, C.CHANNEL_VOICE, C.CHANNEL_CHATBOT])
            all_events = chat + call + [ended, close_chat, visit]
            self.assertEqual(ids(ctx.recent_events), ids(reversed(all_events)))
            self.assertEqual(ctx.recent_events[0].attributes["store"], "sf-market-st")
            self.assertEqual(ctx.total_events, len(all_events))
            self.assertEqual(list(ctx.open_conversations), [])
            self.assertEqual(len(ctx.profile.identifiers), 3)


class IdempotentRetryTest(E2ECase):

    def test_same_event_id_twice_is_stored_once(self):
        cid = self.resolve(self.a, C.IDENTIFIER_TYPE_APP_USER_ID, H.unique("app-")).customer_id
        ref = H.by_id(cid)
        e = H.event(C.CHANNEL_MOBILE_APP, C.EVENT_KIND_APP_VIEW, event_id="retry-1",
                    summary="Opened order page", body="first body")
        first = self.append(self.a, ref, [e]).results[0]
        self.assertFalse(first.duplicate)
        # A retry with the same id (even with other content) through A, then through B.
        retry = C.Event()
        retry.CopyFrom(e)
        retry.body = "a different body"
        for server in (self.a, self.b):
            again = self.append(server, ref, [retry]).results[0]
            self.assertTrue(again.duplicate, "retry through %s" % server.target)
            self.assertEqual(again.event.cursor, first.event.cursor)
            self.assertEqual(again.event.body, "first body")  # the stored event
            self.assertEqual(again.event.customer_id, cid)
        # A batch mixing a retried and a new event: only the new one is written.
        new = H.event(C.CHANNEL_MOBILE_APP, C.EVENT_KIND_APP_VIEW, event_id="retry-2")
        mixed = self.append(self.b, ref, [retry, new]).results
        self.assertEqual([r.duplicate for r in mixed], [True, False])
        listed, _ = self.list_all(self.a, ref, 50, OLDEST)
        self.assertEqual(ids(listed), ["retry-1", "retry-2"])
        self.assertEqual(self.context(self.b, ref).total_events, 2)


    def test_first_message_of_a_new_visitor_retried(self):
        # A bot records a new visitor's first message with create_if_missing, the answer is
        # lost, it retries through the other instance: one customer, one event.
        visitor = H.by_ident(C.IDENTIFIER_TYPE_CHAT_SESSION, H.unique("Visitor-"))
        first = H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, event_id="first-msg",
                        conversation_id="c1", body="hello?")
        r1 = self.append(self.a, visitor, [first], create=True)
        r2 = self.append(self.b, visitor, [first], create=True)
        self.assertEqual(r1.customer_id, r2.customer_id)
        self.assertEqual([r1.results[0].duplicate, r2.results[0].duplicate], [False, True])
        resolved = self.resolve(self.b, C.IDENTIFIER_TYPE_CHAT_SESSION,
                                visitor.identifier.value, create=False)
        self.assertEqual(resolved.customer_id, r1.customer_id)
        ctx = self.context(self.a, visitor)
        self.assertEqual(ids(ctx.recent_events), ["first-msg"])
        self.assertEqual(ctx.open_conversations[0].event_count, 1)  # not counted twice


class ListPagingTest(E2ECase):

    def test_pages_chain_through_every_event_once(self):
        cid = self.resolve(self.a, C.IDENTIFIER_TYPE_EMAIL,
                           "%s@Example.COM" % H.unique("pager")).customer_id
        ref = H.by_id(cid)
        events = [H.event(C.CHANNEL_SMS if i % 3 == 0 else C.CHANNEL_EMAIL,
                          C.EVENT_KIND_MESSAGE, event_id="page-%02d" % i,
                          summary="message %d" % i) for i in range(25)]
        appended = ids(events)
        sms = {e.event_id for e in events if e.channel == C.CHANNEL_SMS}
        # Through both instances, in two batches, in order.
        self.append(self.a, ref, events[:12])
        self.append(self.b, ref, events[12:])

        newest, pages = self.list_all(self.a, ref, 10, NEWEST)
        self.assertEqual(pages, 3)
        self.assertEqual(ids(newest), list(reversed(appended)))
        oldest, pages = self.list_all(self.b, ref, 10, OLDEST)
        self.assertEqual(pages, 3)
        self.assertEqual(ids(oldest), appended)

        # First page sizes: 10, 10, 5 and no token after the last.
        first = self.a.timeline().List(timeline_pb2.ListRequest(
            tenant=self.tenant, customer=ref, page_size=10), timeout=T)
        self.assertEqual(ids(first.events), list(reversed(appended))[:10])
        self.assertTrue(first.next_page_token)

        # Channel filter, both orders, small pages.
        want = [x for x in appended if x in sms]
        got, _ = self.list_all(self.a, ref, 3, OLDEST, channels=[C.CHANNEL_SMS])
        self.assertEqual(ids(got), want)
        got, _ = self.list_all(self.b, ref, 4, NEWEST, channels=[C.CHANNEL_SMS])
        self.assertEqual(ids(got), list(reversed(want)))
        self.assertTrue(all(e.channel == C.CHANNEL_SMS for e in got))
        got, _ = self.list_all(self.a, ref, 0, NEWEST, channels=[C.CHANNEL_VOICE])
        self.assertEqual(got, [])


class BadInputTest(E2ECase):
    """Bad input from a non-C++ client gets the documented status code, and changes nothing."""

    INVALID = grpc.StatusCode.INVALID_ARGUMENT

    def test_bad_tenant(self):
        for bad in ("a:b", "", "x" * 65, "a b", "{a}"):
            req = identity_pb2.ResolveRequest(tenant=bad, create_if_missing=True,
                                              identifier=H.phone("14155550199"))
            details = self.assertCode(self.INVALID, self.a.identity().Resolve, req, repr(bad))
            self.assertIn("tenant", details)
        self.assertCode(self.INVALID, self.a.context().GetContext, context_pb2.GetContextRequest(
            tenant="a:b", customer=H.by_id("cus_x")))
        self.assertCode(self.INVALID, self.b.timeline().Append, timeline_pb2.AppendRequest(
            tenant="a:b", customer=H.by_id("cus_x"),
            events=[H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE)]))

    def test_bad_identifier(self):
        for bad in (H.ident(C.IDENTIFIER_TYPE_EMAIL, ""), H.ident(C.IDENTIFIER_TYPE_PHONE, ""),
                    H.ident(C.IDENTIFIER_TYPE_CHAT_SESSION, "   "),
                    H.ident(C.IDENTIFIER_TYPE_UNSPECIFIED, "x"),
                    H.ident(C.IDENTIFIER_TYPE_PHONE, "123"),
                    H.ident(C.IDENTIFIER_TYPE_EMAIL, "no-at-sign")):
            req = identity_pb2.ResolveRequest(tenant=self.tenant, identifier=bad,
                                              create_if_missing=True)
            details = self.assertCode(self.INVALID, self.a.identity().Resolve, req, str(bad))
            self.assertIn("identifier", details)
        # Through a CustomerRef the error names the request field.
        details = self.assertCode(self.INVALID, self.a.context().GetContext,
                                  context_pb2.GetContextRequest(
                                      tenant=self.tenant,
                                      customer=H.by_ident(C.IDENTIFIER_TYPE_EMAIL, "")))
        self.assertIn("customer", details)
        self.assertCode(self.INVALID, self.a.context().GetContext, context_pb2.GetContextRequest(
            tenant=self.tenant))  # no customer at all

    def test_unknown_customer_is_not_found(self):
        ghost = H.by_id("cus_doesnotexist")
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.a.context().GetContext,
                        context_pb2.GetContextRequest(tenant=self.tenant, customer=ghost))
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.a.identity().GetProfile,
                        identity_pb2.GetProfileRequest(tenant=self.tenant, customer=ghost))
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.b.timeline().List,
                        timeline_pb2.ListRequest(tenant=self.tenant, customer=ghost))
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.b.timeline().Append,
                        timeline_pb2.AppendRequest(
                            tenant=self.tenant, customer=ghost,
                            events=[H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE)]))
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.a.identity().Link,
                        identity_pb2.LinkRequest(tenant=self.tenant,
                                                 customer_id="cus_doesnotexist",
                                                 identifier=H.phone("14155550142")))
        # The failed Link claimed nothing: the phone still resolves to nobody.
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.a.identity().Resolve,
                        identity_pb2.ResolveRequest(tenant=self.tenant,
                                                    identifier=H.phone("14155550142")))
        # An identifier nobody owns, without create_if_missing.
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.b.context().GetContext,
                        context_pb2.GetContextRequest(
                            tenant=self.tenant,
                            customer=H.by_ident(C.IDENTIFIER_TYPE_PHONE, "14155550143")))
        reader = H.WatchReader(self.a.timeline(), timeline_pb2.WatchRequest(
            tenant=self.tenant, customer=ghost, from_start=True), timeout=10)
        code, details = reader.wait_end(timeout=5)
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)

    def test_link_of_a_phone_owned_by_another_customer(self):
        owner = self.resolve(self.a, C.IDENTIFIER_TYPE_PHONE, "+44 20 7946 0000").customer_id
        other = self.resolve(self.a, C.IDENTIFIER_TYPE_EMAIL, "other@example.com").customer_id
        self.assertNotEqual(owner, other)
        details = self.assertCode(
            grpc.StatusCode.FAILED_PRECONDITION, self.b.identity().Link,
            identity_pb2.LinkRequest(tenant=self.tenant, customer_id=other,
                                     identifier=H.phone("0044 (20) 7946-0000")))
        self.assertIn(owner, details)
        # Nothing changed: the phone is still the owner's, the other customer did not get it.
        r = self.resolve(self.b, C.IDENTIFIER_TYPE_PHONE, "442079460000", create=False)
        self.assertEqual(r.customer_id, owner)
        prof = self.a.identity().GetProfile(identity_pb2.GetProfileRequest(
            tenant=self.tenant, customer=H.by_id(other)), timeout=T).profile
        self.assertEqual([i.identifier.type for i in prof.identifiers],
                         [C.IDENTIFIER_TYPE_EMAIL])

    def test_bad_page_tokens_and_cursors(self):
        mine = self.resolve(self.a, C.IDENTIFIER_TYPE_CRM_ID, H.unique("crm-")).customer_id
        theirs = self.resolve(self.a, C.IDENTIFIER_TYPE_CRM_ID, H.unique("crm-")).customer_id
        evs = [H.event(C.CHANNEL_EMAIL, C.EVENT_KIND_MESSAGE) for _ in range(3)]
        self.append(self.a, H.by_id(mine), evs)
        their_cursor = self.append(self.a, H.by_id(theirs), [
            H.event(C.CHANNEL_EMAIL, C.EVENT_KIND_MESSAGE)]).results[0].event.cursor
        list_req = timeline_pb2.ListRequest(tenant=self.tenant, customer=H.by_id(mine))
        for garbage in ("garbage!", "not-base64-%%%", "AAAA", "x" * 600):
            list_req.page_token = garbage
            self.assertCode(self.INVALID, self.b.timeline().List, list_req, repr(garbage[:20]))
        # A real token, used for another customer or another order.
        token = self.a.timeline().List(timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(mine), page_size=1), timeout=T).next_page_token
        self.assertTrue(token)
        self.assertCode(self.INVALID, self.a.timeline().List, timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(theirs), page_size=1, page_token=token))
        self.assertCode(self.INVALID, self.a.timeline().List, timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(mine), page_size=1, page_token=token,
            order=OLDEST))
        self.assertCode(self.INVALID, self.a.timeline().List, timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(mine), page_size=501))
        self.assertCode(self.INVALID, self.a.context().GetContext, context_pb2.GetContextRequest(
            tenant=self.tenant, customer=H.by_id(mine), recent_events=201))
        # Watch after another customer's cursor, or garbage.
        for cursor in (their_cursor, "garbage!"):
            reader = H.WatchReader(self.b.timeline(), timeline_pb2.WatchRequest(
                tenant=self.tenant, customer=H.by_id(mine), after_cursor=cursor), timeout=10)
            code, details = reader.wait_end(timeout=5)
            self.assertEqual(code, self.INVALID, details)
            self.assertIn("cursor", details)

    def test_rejected_append_writes_nothing(self):
        visitor = H.unique("cookie-")
        good = H.event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, body="hello")
        bad = H.event(C.CHANNEL_UNSPECIFIED, C.EVENT_KIND_MESSAGE)
        ref = H.by_ident(C.IDENTIFIER_TYPE_CHAT_SESSION, visitor)
        details = self.assertCode(self.INVALID, self.a.timeline().Append,
                                  timeline_pb2.AppendRequest(tenant=self.tenant, customer=ref,
                                                             create_if_missing=True,
                                                             events=[good, bad]))
        self.assertIn("events[1]", details)
        # No customer was created for the visitor, no event was stored.
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.a.identity().Resolve,
                        identity_pb2.ResolveRequest(tenant=self.tenant,
                                                    identifier=ref.identifier))
        for bad_event in (
                H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, actor_type=C.Actor.TYPE_AGENT),
                H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, event_id="has space"),
                H.event(C.CHANNEL_SMS, C.EVENT_KIND_CONVERSATION_ENDED),
                H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, occurred_at=time.time() + 7200)):
            self.assertCode(self.INVALID, self.b.timeline().Append, timeline_pb2.AppendRequest(
                tenant=self.tenant, customer=ref, create_if_missing=True, events=[bad_event]))
        self.assertCode(self.INVALID, self.b.timeline().Append, timeline_pb2.AppendRequest(
            tenant=self.tenant, customer=ref, create_if_missing=True, events=[]))
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.b.identity().Resolve,
                        identity_pb2.ResolveRequest(tenant=self.tenant,
                                                    identifier=ref.identifier))


# --------------------------------------------------------------------------------------------
# Runner


def _on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(only=None):
    argv = [sys.argv[0]]
    skip = False
    for arg in sys.argv[1:]:  # harness read its own options; the rest are the runner's
        if skip:
            skip = False
            continue
        if arg in H.OWN_OPTIONS:
            skip = True
            continue
        if arg.split("=", 1)[0] in H.OWN_OPTIONS:
            continue
        argv.append(arg)
    signal.signal(signal.SIGTERM, _on_signal)

    loader = unittest.TestLoader()
    args = argv[1:]
    if "-h" in args or "--help" in args:
        sys.stdout.write(__doc__)
        return 0
    verbosity = 2 if ("-v" in args or "--verbose" in args) else 1
    patterns = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-k"]
    if patterns:
        loader.testNamePatterns = ["*%s*" % p if "*" not in p else p for p in patterns]
    suite = unittest.TestSuite()
    if only is not None:
        suite.addTests(loader.loadTestsFromModule(only))
    else:
        import fault_test
        import lifecycle_test
        suite.addTests(loader.loadTestsFromModule(sys.modules[__name__]))
        suite.addTests(loader.loadTestsFromModule(lifecycle_test))
        suite.addTests(loader.loadTestsFromModule(fault_test))

    started = time.monotonic()
    result = None
    try:
        runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=verbosity)
        result = runner.run(suite)
    except KeyboardInterrupt as e:
        sys.stdout.write("e2e: interrupted (%s)\n" % e)
    finally:
        failed_run = result is None or not result.wasSuccessful()
        try:
            if failed_run:
                H.print_logs(sys.stdout)
        finally:
            H.stop_all()
            if not failed_run:
                H.remove_tmp()
            elif H._tmp_root:
                sys.stdout.write("e2e: logs kept under %s\n" % H._tmp_root)
    if result is None:
        sys.stdout.write("e2e: 0 passed, 1 failed\n")
        return 1
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    sys.stdout.write("e2e: %d tests in %.1fs against %s\n" %
                     (result.testsRun, time.monotonic() - started, H.BUILD_DIR))
    sys.stdout.write("e2e: %d passed, %d failed\n" % (passed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
