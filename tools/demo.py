#!/usr/bin/python3
"""OneStory demo: one customer, three channels, and nobody asks them to repeat their story.

    build/services/onestory-server --listen=127.0.0.1:50051 &     # embedded Redis by default
    tools/demo.py --target 127.0.0.1:50051 [--tenant demo]

Plays a journey against a running server and prints what each side sees:
  1. a visitor chats with the bot on the website and mentions an order number; the bot opens a
     case and records the order number and the step it tried as facts,
  2. gives a phone number, which the bot links to the same customer, and the chat ends,
  3. calls: the phone agent's console asks GetContext with nothing but the calling number and
     gets the whole story first ("contacting again about ...", the facts, the open case), then
     the profile, identifiers, the chat, and follows the call live with Watch,
  4. the call is logged; the agent takes the case and promises a replacement by Friday,
  5. the agent's console suggests that Dana's mobile-app account (which the app backend created
     days ago, with her purchase) is the same person; one Merge makes it one story, in
     occurred_at order, with the evidence for every identifier.

Needs Debian's python3-grpcio and python3-protobuf (/usr/bin/python3) and the Python stubs the
build generates (--python-dir, default: ../build/python next to this script). Every run uses
new identifiers, so it can be re-run against the same server.
"""

import argparse
import datetime
import os
import queue
import random
import sys
import threading
import time
import uuid


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target", default="127.0.0.1:50051",
                   help="host:port of onestory-server (default %(default)s)")
    p.add_argument("--tenant", default="demo", help="tenant to write to (default %(default)s)")
    p.add_argument("--python-dir", default=os.path.join(here, "..", "build", "python"),
                   help="directory holding the generated onestory/v1/*_pb2.py "
                        "(default: ../build/python relative to this script)")
    p.add_argument("--timeout", type=float, default=5.0, help="per-call deadline in seconds")
    p.add_argument("--api-key", default=os.environ.get("ONESTORY_API_KEY", ""),
                   help="the API key (default: $ONESTORY_API_KEY, else the key the embedded "
                        "default made in --key-file)")
    p.add_argument("--key-file", default=os.path.join(here, "..", "onestory-data", "api_key"),
                   help="file holding the key (default: ../onestory-data/api_key)")
    p.add_argument("--phone-file", default="",
                   help="write the demo customer's phone number here (for the console's URL)")
    args = p.parse_args()
    if not args.api_key and os.path.exists(args.key_file):
        with open(args.key_file) as f:
            args.api_key = f.read().strip()
    if not args.api_key:
        p.error("no API key: pass --api-key, set ONESTORY_API_KEY, or run the embedded default "
                "(it writes onestory-data/api_key)")
    return args


ARGS = parse_args()
PYTHON_DIR = os.path.abspath(ARGS.python_dir)
if not os.path.isdir(os.path.join(PYTHON_DIR, "onestory", "v1")):
    sys.exit("demo: no generated stubs in %s (build the project, e.g. `cmake --build build`, "
             "or pass --python-dir)" % PYTHON_DIR)
sys.path.insert(0, PYTHON_DIR)
try:
    import grpc
    from google.protobuf import field_mask_pb2
    from onestory.v1 import common_pb2 as C
    from onestory.v1 import case_pb2, case_pb2_grpc
    from onestory.v1 import context_pb2, context_pb2_grpc
    from onestory.v1 import conversation_pb2, conversation_pb2_grpc
    from onestory.v1 import identity_pb2, identity_pb2_grpc
    from onestory.v1 import timeline_pb2, timeline_pb2_grpc
except ImportError as e:
    sys.exit("demo: %s. Run it with Debian's /usr/bin/python3 (python3-grpcio, "
             "python3-protobuf)." % e)

T = ARGS.timeout
TENANT = ARGS.tenant
RUN = uuid.uuid4().hex[:6]

# ---------------------------------------------------------------------------------------------
# Printing


def enum_name(enum, value, prefix):
    return enum.Name(value)[len(prefix):] if value in enum.values() else str(value)


def channel_name(ch):
    return enum_name(C.Channel, ch, "CHANNEL_")


def kind_name(k):
    return enum_name(C.EventKind, k, "EVENT_KIND_")


def id_type_name(t):
    return enum_name(C.IdentifierType, t, "IDENTIFIER_TYPE_")


def local_time(ts):
    return datetime.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9).strftime("%H:%M:%S")


def ago(ts):
    secs = max(0, int(time.time() - ts.seconds))
    if secs < 90:
        return "%ds ago" % secs
    if secs < 90 * 60:
        return "%d min ago" % round(secs / 60)
    if secs < 48 * 3600:
        return "%d h ago" % round(secs / 3600)
    return "%d days ago" % round(secs / 86400)


def who(actor):
    kind = enum_name(C.Actor.Type, actor.type, "TYPE_").lower()
    return "%s %s" % (kind, actor.id) if actor.id else kind


def say(text=""):
    print(text, flush=True)


def step(n, text):
    say()
    say("%d. %s" % (n, text))
    say("-" * (len(text) + 3))


def show_event(e, indent="   "):
    text = e.body or e.summary
    if len(text) > 72:
        text = text[:69] + "..."
    say("%s%s  %-8s %-18s %-16s %s" % (indent, local_time(e.occurred_at), channel_name(e.channel),
                                      kind_name(e.kind), who(e.actor), text))


def show_context(ctx):
    p = ctx.profile
    say("   +-- what the agent sees before saying hello " + "-" * 30)
    if ctx.HasField("repeat_contact"):
        rc = ctx.repeat_contact
        say("   | !! %s (contact %d about it)" % (rc.message, rc.contacts))
    for f in ctx.facts:
        kind = enum_name(C.FactType, f.type, "FACT_TYPE_").lower()
        extra = ""
        if f.HasField("expires_at"):
            extra = ", valid until %s" % local_time(f.expires_at)
        say("   | Already told  %-12s %s = %s (%s on %s%s)" % (
            kind, f.name, f.value, who(f.recorded_by), channel_name(f.channel), extra))
    for c in ctx.open_cases:
        say("   | Open case     %s: %s [stage %s, owner %s, %d contacts, %d channel switches]" % (
            c.case_id, c.topic, c.stage or "-", who(c.owner) if c.HasField("owner") else "nobody",
            c.contacts, c.channel_switches))
        if c.HasField("promise"):
            by = datetime.datetime.fromtimestamp(c.promise.promised_by.seconds)
            say("   |               promised: %s (by %s)" % (c.promise.text,
                                                             by.strftime("%a %d %b %H:%M")))
    sig = ctx.signals
    say("   | Effort        %d contacts in 7 days on %d channels; sentiment +%d/-%d" % (
        sig.contacts_7d, sig.distinct_channels_30d, sig.positive_30d, sig.negative_30d))
    say("   | Customer      %s%s" % (p.display_name or "(no name)",
                                     "   [%s]" % p.customer_id))
    if p.language or p.tier:
        say("   | Language/tier %s / %s" % (p.language or "-", p.tier or "-"))
    for n, i in enumerate(p.identifiers):
        ev = i.evidence
        how = enum_name(identity_pb2.Verification, ev.verification, "VERIFICATION_").lower()
        if ev.channel:
            how += " on " + channel_name(ev.channel)
        if ev.merge_id:
            how += ", came with merge " + ev.merge_id
        say("   | %s %s %s (%s)" % ("Known as     " if n == 0 else "             ",
                                    id_type_name(i.identifier.type), i.identifier.value, how))
    if ctx.HasField("last_activity"):
        say("   | Last channel  %s (%s)" % (channel_name(ctx.last_activity.channel),
                                            ago(ctx.last_activity.at)))
    say("   | Channels      " + ", ".join("%s %s" % (channel_name(c.channel), ago(c.at))
                                          for c in ctx.channels))
    if ctx.open_conversations:
        for c in ctx.open_conversations:
            say("   | Open          %s on %s: %d events since %s, last %s" % (
                c.conversation_id, channel_name(c.channel), c.event_count,
                local_time(c.started_at), ago(c.last_activity_at)))
    else:
        say("   | Open          (no open conversation)")
    say("   | Recent events (%d of %d, newest first):" % (len(ctx.recent_events),
                                                          ctx.total_events))
    for e in ctx.recent_events:
        show_event(e, indent="   |   ")
    say("   +" + "-" * 75)


# ---------------------------------------------------------------------------------------------
# The journey


def event(channel, kind, actor_type, actor_id="", occurred=None, **fields):
    e = C.Event(event_id="demo-%s-%s" % (RUN, uuid.uuid4().hex[:8]), channel=channel, kind=kind,
                actor=C.Actor(type=actor_type, id=actor_id), **fields)
    if occurred is not None:
        e.occurred_at.FromSeconds(int(occurred))
    return e


def free_phone(identity):
    """A fictional number nobody in the tenant owns yet (earlier runs keep theirs)."""
    for _ in range(50):
        typed = "+1 (415) 555-%04d" % random.randint(0, 9999)
        try:
            identity.Resolve(identity_pb2.ResolveRequest(
                tenant=TENANT, identifier=C.Identifier(type=C.IDENTIFIER_TYPE_PHONE, value=typed)),
                timeout=T)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return typed
            raise
    sys.exit("demo: no free phone number left in tenant %r; pass another --tenant" % TENANT)


class _Details(grpc.ClientCallDetails):
    def __init__(self, d, metadata):
        self.method, self.timeout, self.credentials = d.method, d.timeout, d.credentials
        self.metadata = metadata
        self.wait_for_ready = getattr(d, "wait_for_ready", None)
        self.compression = getattr(d, "compression", None)


class ApiKey(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Sends "authorization: Bearer <key>" with every call."""

    def __init__(self, key):
        self.metadata = ("authorization", "Bearer " + key)

    def _details(self, d):
        return _Details(d, list(d.metadata or []) + [self.metadata])

    def intercept_unary_unary(self, continuation, d, request):
        return continuation(self._details(d), request)

    def intercept_unary_stream(self, continuation, d, request):
        return continuation(self._details(d), request)


def main():
    channel = grpc.intercept_channel(grpc.insecure_channel(ARGS.target), ApiKey(ARGS.api_key))
    try:
        grpc.channel_ready_future(channel).result(timeout=5)
    except grpc.FutureTimeoutError:
        sys.exit("demo: cannot reach OneStory at %s. Start one, e.g.\n"
                 "  build/services/onestory-server --listen=%s" % (ARGS.target, ARGS.target))
    identity = identity_pb2_grpc.IdentityServiceStub(channel)
    timeline = timeline_pb2_grpc.TimelineServiceStub(channel)
    context = context_pb2_grpc.ContextServiceStub(channel)
    conversations = conversation_pb2_grpc.ConversationServiceStub(channel)
    cases = case_pb2_grpc.CaseServiceStub(channel)
    cases.SetJourney(case_pb2.SetJourneyRequest(
        tenant=TENANT, stages=["ordered", "shipped", "delivered", "return_requested", "refunded"]),
        timeout=T)

    say("OneStory demo: tenant %r on %s (run %s)" % (TENANT, ARGS.target, RUN))

    # 0. Days ago, the mobile app's backend recorded Dana's purchase under her app login ------
    now = time.time()
    app_login = "dana-%s" % RUN
    app = identity.Resolve(identity_pb2.ResolveRequest(
        tenant=TENANT, identifier=C.Identifier(type=C.IDENTIFIER_TYPE_APP_USER_ID, value=app_login),
        create_if_missing=True), timeout=T).customer_id
    cookie = "web-%s-%s" % (RUN, uuid.uuid4().hex[:10])
    chat_id = "chat-%s" % RUN
    step(1, "Dana opens the chat on the website (25 minutes ago)")
    r = identity.Resolve(identity_pb2.ResolveRequest(
        tenant=TENANT, identifier=C.Identifier(type=C.IDENTIFIER_TYPE_CHAT_SESSION, value=cookie),
        create_if_missing=True), timeout=T)
    customer_id = r.customer_id
    say("   chat widget: Resolve(CHAT_SESSION %s) -> %s customer %s" % (
        cookie, "new" if r.created else "known", customer_id))
    identity.UpdateProfile(identity_pb2.UpdateProfileRequest(
        tenant=TENANT, customer_id=customer_id,
        profile=identity_pb2.Profile(display_name="Dana", language="en"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name", "language"])), timeout=T)

    typed = free_phone(identity)
    if ARGS.phone_file:
        with open(ARGS.phone_file, "w") as f:
            f.write(typed + "\n")
    # The app knows her phone number as a profile attribute (typed at sign-up, not verified).
    identity.UpdateProfile(identity_pb2.UpdateProfileRequest(
        tenant=TENANT, customer_id=app,
        profile=identity_pb2.Profile(display_name="Dana K.", tier="gold",
                                     attributes={"phone": typed}),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name", "tier", "attributes.phone"])),
        timeout=T)
    order = "A-%05d" % random.randint(10000, 99999)
    timeline.Append(timeline_pb2.AppendRequest(
        tenant=TENANT, customer=C.CustomerRef(customer_id=app),
        events=[event(C.CHANNEL_MOBILE_APP, C.EVENT_KIND_PURCHASE, C.Actor.TYPE_CUSTOMER,
                      occurred=now - 3 * 86400, summary="Bought birthday present, order %s" % order,
                      case_id="order-" + order)]), timeout=T)
    start = now - 25 * 60
    cust = C.Actor.TYPE_CUSTOMER
    bot = C.Actor.TYPE_BOT
    chat = [
        (cust, "", "Hi, I'm Dana. My order %s was due Tuesday and still isn't here." % order),
        (bot, "helpbot", "Sorry about that, Dana! Order %s left our warehouse on Monday; the "
                         "carrier has not scanned it since. I re-sent the tracking link." % order),
        (cust, "", "The link shows nothing either. It's a birthday present, I need it by "
                   "Saturday."),
        (bot, "helpbot", "I can't reroute parcels myself. Shall an agent call you back?"),
        (cust, "", "Yes please: %s ... or I'll just call you." % typed),
    ]
    ref = C.CustomerRef(identifier=C.Identifier(type=C.IDENTIFIER_TYPE_CHAT_SESSION, value=cookie))
    helpbot = C.Actor(type=bot, id="helpbot")
    started = conversation_pb2.StartConversationRequest(
        tenant=TENANT, customer=ref, conversation_id=chat_id, channel=C.CHANNEL_CHATBOT,
        served_by=helpbot, summary="Website chat")
    started.occurred_at.FromSeconds(int(start - 5))
    conversations.StartConversation(started, timeout=T)
    for i, (actor, actor_id, text) in enumerate(chat):
        e = event(C.CHANNEL_CHATBOT, C.EVENT_KIND_MESSAGE, actor, actor_id,
                  occurred=start + i * 45, conversation_id=chat_id, body=text,
                  case_id="order-" + order)
        stored = timeline.Append(timeline_pb2.AppendRequest(
            tenant=TENANT, customer=ref, events=[e]), timeout=T).results[0].event
        show_event(stored)
    case_id = "order-" + order
    cases.OpenCase(case_pb2.OpenCaseRequest(
        tenant=TENANT, customer=ref, case_id=case_id, topic="order %s not delivered" % order,
        stage="shipped", actor=helpbot, channel=C.CHANNEL_CHATBOT, conversation_id=chat_id,
        visibility=C.AUDIENCE_CUSTOMER), timeout=T)
    conversations.RecordFacts(conversation_pb2.RecordFactsRequest(
        tenant=TENANT, customer=ref, actor=helpbot, channel=C.CHANNEL_CHATBOT,
        request_id="facts-" + chat_id, facts=[
            C.Fact(type=C.FACT_TYPE_COLLECTED, name="order_number", value=order, case_id=case_id,
                   visibility=C.AUDIENCE_CUSTOMER),
            C.Fact(type=C.FACT_TYPE_STEP_TRIED, name="resend_tracking_link",
                   value="tracking shows nothing", case_id=case_id,
                   visibility=C.AUDIENCE_CUSTOMER)]), timeout=T)
    say("   the bot opened case %s and recorded the order number and the step it tried" % case_id)

    # 2. The phone number ------------------------------------------------------------------------
    step(2, "The bot links the phone number Dana typed to the same customer")
    link = identity.Link(identity_pb2.LinkRequest(
        tenant=TENANT, customer_id=customer_id,
        identifier=C.Identifier(type=C.IDENTIFIER_TYPE_PHONE, value=typed),
        channel=C.CHANNEL_CHATBOT, verification=identity_pb2.VERIFICATION_ASSERTED,
        actor=C.Actor(type=C.Actor.TYPE_BOT, id="helpbot")), timeout=T)
    phone = link.identifier.value
    say("   Link(PHONE %r) -> normalized and stored as %s" % (typed, phone))
    conversations.EndConversation(conversation_pb2.EndConversationRequest(
        tenant=TENANT, customer=ref, conversation_id=chat_id, actor=helpbot,
        outcome="customer will call"), timeout=T)

    # 3. The call ----------------------------------------------------------------------------------
    step(3, "Dana calls from %s. The phone system knows only the calling number." % phone)
    call_id = "call-%s" % RUN
    agent = C.Actor.TYPE_AGENT
    phone_ref = C.CustomerRef(identifier=C.Identifier(type=C.IDENTIFIER_TYPE_PHONE, value=phone))
    conversations.StartConversation(conversation_pb2.StartConversationRequest(
        tenant=TENANT, customer=phone_ref, conversation_id=call_id, channel=C.CHANNEL_VOICE,
        served_by=C.Actor(type=agent, id="agent-ana"), summary="Inbound call from %s" % phone),
        timeout=T)
    say("   agent console: GetContext(PHONE %s)" % phone)
    ctx = context.GetContext(context_pb2.GetContextRequest(
        tenant=TENANT, customer=C.CustomerRef(
            identifier=C.Identifier(type=C.IDENTIFIER_TYPE_PHONE, value=phone)),
        recent_events=10), timeout=T)
    show_context(ctx)
    say('   Agent: "Hi Dana, I see you\'re chasing order %s for Saturday. Let me fix that."' %
        order)
    say("   Nobody asked Dana to repeat her story.")

    # The console follows the customer's timeline live from the newest event it has shown.
    watch = timeline.Watch(timeline_pb2.WatchRequest(
        tenant=TENANT, customer=C.CustomerRef(customer_id=customer_id),
        after_cursor=ctx.recent_events[0].cursor), timeout=30)
    live = queue.Queue()

    def read():
        try:
            for resp in watch:
                live.put(resp.event)
        except grpc.RpcError:
            pass
        live.put(None)

    threading.Thread(target=read, daemon=True).start()

    step(4, "The call is logged through VOICE; the console's Watch shows it live")
    call = [
        event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE, agent, "agent-ana", conversation_id=call_id,
              case_id="order-" + order,
              summary="Carrier lost the parcel. Sent a replacement by express, arrives Friday."),
        event(C.CHANNEL_VOICE, C.EVENT_KIND_CALL_ENDED, agent, "agent-ana",
              conversation_id=call_id, summary="Call ended; customer happy", sentiment=0.8),
    ]
    for e in call:
        timeline.Append(timeline_pb2.AppendRequest(
            tenant=TENANT, customer=C.CustomerRef(customer_id=customer_id), events=[e]),
            timeout=T)
        try:
            got = live.get(timeout=5)
        except queue.Empty:
            got = None
        if got is None:
            say("   (the live Watch did not deliver the event within 5 s)")
            break
        show_event(got, indent="   live: ")
    watch.cancel()
    promise = case_pb2.UpdateCaseRequest(
        tenant=TENANT, customer=phone_ref, case_id=case_id, actor=C.Actor(type=agent, id="agent-ana"),
        channel=C.CHANNEL_VOICE, owner=C.Actor(type=agent, id="agent-ana"),
        promise="replacement arrives by Friday", request_id="promise-" + call_id)
    promise.promised_by.FromSeconds(int(now + 3 * 86400))
    cases.UpdateCase(promise, timeout=T)
    say("   agent-ana takes the case and promises the replacement by Friday")

    step(5, "The console suggests Dana's app account; the agent confirms it in one step")
    sugg = identity.SuggestMerges(identity_pb2.SuggestMergesRequest(
        tenant=TENANT, customer=C.CustomerRef(customer_id=customer_id)), timeout=T)
    for sug in sugg.suggestions:
        say("   suggestion: %s [%s], score %.1f: %s" % (
            sug.profile.display_name or "(no name)", sug.customer_id, sug.score,
            "; ".join("%s %s" % (r.code, r.detail) for r in sug.reasons)))
    if sugg.suggestions:
        merged = identity.Merge(identity_pb2.MergeRequest(
            tenant=TENANT, source_customer_id=sugg.suggestions[0].customer_id,
            target_customer_id=customer_id, actor=C.Actor(type=agent, id="agent-ana"),
            reason="suggested (%s); Dana confirmed her app login on the call" %
                   sugg.suggestions[0].reasons[0].code), timeout=T).merge
        say("   Merge -> %s: %d event(s) moved; the app's customer id and login now lead here" % (
            merged.merge_id, merged.events_moved))

    step(6, "Whoever serves Dana next, on any channel, sees the whole story")
    ctx = context.GetContext(context_pb2.GetContextRequest(
        tenant=TENANT, customer=C.CustomerRef(
            identifier=C.Identifier(type=C.IDENTIFIER_TYPE_APP_USER_ID, value=app_login)),
        recent_events=8), timeout=T)
    show_context(ctx)
    say()
    say("Done. Re-run it any time: every run makes a new customer in tenant %r." % TENANT)
    channel.close()


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as e:
        sys.exit("demo: %s failed: %s %s" % ("a call", e.code().name, e.details()))
    except KeyboardInterrupt:
        sys.exit(130)
