#!/usr/bin/python3
"""OneStory end-to-end tests of agent tokens (--agent_token_keys_file): short-lived JWTs that an
integrator's backend signs for a browser console or a bot, accepted as "authorization: Bearer"
on gRPC and HTTP and as ?access_token= on event streams. A call with a token acts as its agent
(the Actor of its writes, the audit log's agent) and reads no more than its audience; every bad
token is UNAUTHENTICATED with the reason; SIGHUP reloads the keys.

Run through ctest (e2e_agent_tokens) or alone:
  /usr/bin/python3 tests/e2e/agent_token_test.py --build-dir build
"""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402
from harness import C, E2ECase, context_pb2, context_pb2_grpc, timeline_pb2  # noqa: E402
from harness import timeline_pb2_grpc  # noqa: E402
from http_test import EventSource  # noqa: E402

import grpc  # noqa: E402
from onestory.v1 import privacy_pb2, privacy_pb2_grpc  # noqa: E402

T = H.RPC_TIMEOUT
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT_SCOPES = "timeline.read timeline.write context.read.agent"


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def mint(secret, tenant, kid="k1", sub="agent-7", audience="AGENT", scope=AGENT_SCOPES,
         ttl=600, header=None, **claims):
    """An HS256 token; `header` and `claims` override the defaults (None drops a claim)."""
    h = dict({"alg": "HS256", "kid": kid, "typ": "JWT"}, **(header or {}))
    p = {"tenant": tenant, "sub": sub, "aud": "onestory", "exp": int(time.time()) + ttl,
         "audience": audience, "scope": scope}
    p.update(claims)
    p = {k: v for k, v in p.items() if v is not None}
    signing = b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(p).encode())
    sig = hmac.new(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)),
                   signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


class AgentTokenTest(E2ECase):

    @classmethod
    def setUpClass(cls):
        cls.dir = H.new_tmp_dir("tokens-")
        cls.t1, cls.t2 = H.tenant(), H.tenant()
        cls.s1, cls.s2 = b64url(secrets.token_bytes(32)), b64url(secrets.token_bytes(32))
        # An ES256 key of t1's, its private half for tools/agent_token.py.
        cls.ec_key = os.path.join(cls.dir, "web-1.key.pem")
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                        "-out", cls.ec_key], check=True)
        subprocess.run(["openssl", "ec", "-in", cls.ec_key, "-pubout", "-out",
                        os.path.join(cls.dir, "web-1.pem")], check=True,
                       stderr=subprocess.DEVNULL)
        cls.keys_path = os.path.join(cls.dir, "agent_token_keys")
        cls.write_keys(cls.s1)
        port_file = os.path.join(cls.dir, "http_port")
        metrics_port_file = os.path.join(cls.dir, "metrics_port")
        cls.server = H.Server(extra_args=("--agent_token_keys_file=" + cls.keys_path,
                                          "--http_listen=127.0.0.1:0",
                                          "--http_port_file=" + port_file,
                                          "--metrics_listen=127.0.0.1:0",
                                          "--metrics_port_file=" + metrics_port_file),
                              **H.env().redis.server_kwargs())
        with open(port_file) as f:
            cls.http_port = int(f.read())
        with open(metrics_port_file) as f:
            cls.metrics_port = int(f.read())
        cls.raw = H.raw_channel(cls.server.target)

    @classmethod
    def write_keys(cls, s1):
        with open(cls.keys_path, "w") as f:
            f.write("# tenant kid alg key\n%s k1 HS256 %s\n%s k2 HS256 %s\n%s web-1 ES256 web-1.pem\n"
                    % (cls.t1, s1, cls.t2, cls.s2, cls.t1))

    @classmethod
    def tearDownClass(cls):
        cls.raw.close()
        cls.server.stop()

    def setUp(self):
        super().setUp()
        self.tenant = self.t1

    def md(self, token):
        return (("authorization", "Bearer " + token),)

    def timeline(self):
        return timeline_pb2_grpc.TimelineServiceStub(self.raw)

    def new_customer(self):
        return self.resolve(self.a, C.IDENTIFIER_TYPE_APP_USER_ID, H.unique("tok-")).customer_id

    def append_as(self, token, cid, event, timeout=T):
        return self.timeline().Append(timeline_pb2.AppendRequest(
            tenant=self.t1, customer=H.by_id(cid), events=[event]), timeout=timeout,
            metadata=self.md(token))

    def test_a_token_acts_as_its_agent_and_the_audit_log_names_it(self):
        token = mint(self.s1, self.t1)
        cid = self.new_customer()
        note = C.Event(channel=C.CHANNEL_VOICE, kind=C.EVENT_KIND_NOTE, event_id="note-1",
                       summary="called about the refund")
        stored = self.append_as(token, cid, note).results[0].event
        self.assertEqual((stored.actor.type, stored.actor.id), (C.Actor.TYPE_AGENT, "agent-7"))
        # Naming another actor: refused, naming the field, and nothing stored.
        for actor in (C.Actor(type=C.Actor.TYPE_AGENT, id="agent-9"),
                      C.Actor(type=C.Actor.TYPE_CUSTOMER)):
            e = C.Event(channel=C.CHANNEL_VOICE, kind=C.EVENT_KIND_NOTE, event_id="note-x",
                        actor=actor)
            code, details = H.rpc_code(self.append_as, token, cid, e)
            self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, details)
            self.assertIn("events[0].actor", details)
            self.assertIn("agent-7", details)
        # Naming itself is fine.
        e = C.Event(channel=C.CHANNEL_VOICE, kind=C.EVENT_KIND_NOTE, event_id="note-2",
                    actor=C.Actor(type=C.Actor.TYPE_AGENT, id="agent-7"))
        self.append_as(token, cid, e)
        self.assertEqual(H.ids(self.context(self.a, H.by_id(cid)).recent_events),
                         ["note-2", "note-1"])
        # The audit log names the agent, and the token's key id.
        audit = privacy_pb2_grpc.AuditServiceStub(self.a.channel).ListAuditEntries(
            privacy_pb2.ListAuditEntriesRequest(tenant=self.t1, customer_id=cid), timeout=T)
        appends = [(e.key_id, e.agent, e.code) for e in audit.entries
                   if e.method == "onestory.v1.TimelineService/Append"]
        self.assertIn(("token:k1", "agent-7", "OK"), appends)
        self.assertIn(("token:k1", "agent-7", "PERMISSION_DENIED"), appends)

    def credentials_checked(self, kind):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=T) as r:
            text = r.read().decode()
        m = re.search(r'^onestory_credentials_checked_total\{kind="%s"\} (\S+)$' % kind, text,
                      re.M)
        return float(m.group(1)) if m else 0.0

    def test_a_token_is_verified_once_per_call(self):
        # The handler and the actor and audit interceptors all ask who calls: one check per call.
        token = mint(self.s1, self.t1)
        cid = self.new_customer()
        before = self.credentials_checked("agent_token")
        for i in range(3):
            self.append_as(token, cid, C.Event(channel=C.CHANNEL_VOICE, kind=C.EVENT_KIND_NOTE,
                                               event_id="once-%d" % i))
        self.assertEqual(self.credentials_checked("agent_token") - before, 3)

    def test_reads_are_capped_at_the_token_audience(self):
        cid = self.new_customer()
        # A token whose scopes would allow SUPERVISOR, minted for an AGENT.
        token = mint(self.s1, self.t1, scope=AGENT_SCOPES + " context.read.supervisor")
        stub = context_pb2_grpc.ContextServiceStub(self.raw)
        req = context_pb2.GetContextRequest(tenant=self.t1, customer=H.by_id(cid),
                                            audience=C.AUDIENCE_SUPERVISOR)
        code, details = H.rpc_code(stub.GetContext, req, timeout=T, metadata=self.md(token))
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, details)
        self.assertIn("agent token's audience AUDIENCE_AGENT", details)
        req.audience = C.AUDIENCE_AGENT
        stub.GetContext(req, timeout=T, metadata=self.md(token))

    def test_bad_tokens_are_unauthenticated_with_the_reason(self):
        cid = self.new_customer()
        now = int(time.time())
        good = mint(self.s1, self.t1)
        head, body, sig = good.split(".")
        none = b64url(json.dumps({"alg": "none", "kid": "k1"}).encode()) + "." + body + "."
        cases = [
            ("expired", mint(self.s1, self.t1, exp=now - 120), "expired"),
            ("not yet valid", mint(self.s1, self.t1, nbf=now + 600), "not valid before"),
            ("too long-lived", mint(self.s1, self.t1, ttl=13 * 3600), "12 h"),
            ("no exp", mint(self.s1, self.t1, exp=None), "exp"),
            ("wrong aud", mint(self.s1, self.t1, aud="someone-else"), "aud"),
            ("alg none", none, "none"),
            ("unknown kid", mint(self.s1, self.t1, kid="k9"), "k9"),
            ("another tenant's kid", mint(self.s2, self.t1, kid="k2"), "k2"),
            ("bad signature", head + "." + body + "." + sig[:-4] + "AAAA", "signature"),
            ("signed with another secret", mint(self.s2, self.t1), "signature"),
            ("unknown scope", mint(self.s1, self.t1, scope="timeline.read everything"),
             "everything"),
            ("bad audience", mint(self.s1, self.t1, audience="ROOT"), "audience"),
        ]
        e = C.Event(channel=C.CHANNEL_VOICE, kind=C.EVENT_KIND_NOTE, event_id="bad-tok")
        for label, token, reason in cases:
            code, details = H.rpc_code(self.append_as, token, cid, e)
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, (label, details))
            self.assertIn("agent token", details, label)
            self.assertIn(reason, details, label)
        # A good token for t1 cannot act for t2.
        code, details = H.rpc_code(self.timeline().Append, timeline_pb2.AppendRequest(
            tenant=self.t2, customer=H.by_id(cid), events=[e]), timeout=T, metadata=self.md(good))
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, details)
        self.assertIn("may not act for tenant", details)
        self.assertEqual(list(self.context(self.a, H.by_id(cid)).recent_events), [])

    def test_es256_token_over_http_json(self):
        cid = self.new_customer()
        out = subprocess.run(
            [sys.executable, os.path.join(SOURCE_DIR, "tools", "agent_token.py"), "--alg", "ES256",
             "--key", self.ec_key, "--tenant", self.t1, "--kid", "web-1", "--sub", "console-1",
             "--audience", "AGENT", "--scope", AGENT_SCOPES, "--ttl", "300"],
            check=True, capture_output=True, text=True).stdout.strip()
        req = urllib.request.Request(
            "http://127.0.0.1:%d/onestory.v1.TimelineService/Append" % self.http_port,
            data=json.dumps({"tenant": self.t1, "customer": {"customerId": cid}, "events": [
                {"eventId": "http-note", "channel": "CHANNEL_WEB_CHAT",
                 "kind": "EVENT_KIND_NOTE"}]}).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + out},
            method="POST")
        with urllib.request.urlopen(req, timeout=T) as r:
            body = json.loads(r.read())
        actor = body["results"][0]["event"]["actor"]
        self.assertEqual(actor, {"type": "TYPE_AGENT", "id": "console-1"})

    def test_a_bot_token_watches_at_bot_audience_over_sse(self):
        cid = self.new_customer()
        bot = mint(self.s1, self.t1, sub="bot-1", audience="BOT", scope="context.read.bot")
        path = "/onestory.v1.TimelineService/Watch?" + urllib.parse.urlencode(
            {"tenant": self.t1, "customer.customerId": cid, "access_token": bot})
        s = EventSource(self.http_port, path)
        try:
            self.assertEqual(s.status, 200, s.body)
            hidden = H.event(C.CHANNEL_VOICE, C.EVENT_KIND_NOTE, C.Actor.TYPE_AGENT, "a-1",
                             event_id="for-agents", visibility=C.AUDIENCE_AGENT)
            shown = H.event(C.CHANNEL_WEB_CHAT, C.EVENT_KIND_MESSAGE, event_id="for-bots",
                            visibility=C.AUDIENCE_BOT)
            self.append(self.a, H.by_id(cid), [hidden, shown])
            m = s.next()
            self.assertEqual(json.loads(m["data"])["event"]["eventId"], "for-bots")
            s.expect_quiet(0.5)
        finally:
            s.close()
        # The bot may not ask for more than a bot sees.
        s = EventSource(self.http_port, path + "&audience=AUDIENCE_AGENT")
        self.assertEqual((s.status, s.body["code"]), (403, "permission_denied"), s.body)

    def test_sighup_reloads_the_token_keys(self):
        cid = self.new_customer()
        old = mint(self.s1, self.t1)
        e = C.Event(channel=C.CHANNEL_VOICE, kind=C.EVENT_KIND_NOTE, event_id="reload-1")
        self.append_as(old, cid, e)
        rotated = b64url(secrets.token_bytes(32))
        try:
            self.write_keys(rotated)
            self.server.proc.popen.send_signal(signal.SIGHUP)

            def old_refused():
                return H.rpc_code(self.append_as, old, cid, e)[0] == \
                    grpc.StatusCode.UNAUTHENTICATED
            H.wait_until(old_refused, 5, what="the old secret refused after SIGHUP")
            self.append_as(mint(rotated, self.t1), cid, e)
        finally:
            self.write_keys(self.s1)
            self.server.proc.popen.send_signal(signal.SIGHUP)
            H.wait_until(lambda: H.rpc_code(self.append_as, old, cid, e)[0] == grpc.StatusCode.OK,
                         5, what="the first secret back")


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
