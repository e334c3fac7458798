#!/usr/bin/python3
"""OneStory end-to-end tests of authentication and authorization (API keys, scopes, tenants,
audiences, the audit log, key reload, the embedded default's key, TLS), through the real
onestory-server binary.

- AuthMatrixTest: every RPC of every onestory.v1 service, enumerated from the generated *_pb2
  modules (a service or method the catalogue here does not know fails the test), with a request
  that would succeed for tenant B: without a key, with an unknown key and with malformed
  "authorization" values -> UNAUTHENTICATED; with tenant A's key of every scope -> PERMISSION_DENIED;
  with B's key holding every scope but the RPC's -> PERMISSION_DENIED; and then nothing of B
  changed (every Redis key with "{<B>:" in its name, by TYPE and DUMP, and B's entries in the
  shared keys). The denied attempts are in the audit log of the key's own tenant, without B's
  customer or identifier values. Then each scope the RPC accepts, alone, is enough (the request
  is served: OK). The check order: no key before scope before tenant validity before tenant.
- AudienceTest: a bot's key (context.read.bot) reads GetContext as BOT when the audience is
  unset; AGENT or SUPERVISOR is PERMISSION_DENIED naming the scope they need; List needs
  timeline.read (which reads as AGENT); Watch takes any read scope and streams only what the
  key's audience may see (a bot's key: BOT); a supervisor's key reads as AGENT unless it asks.
- AuditTest: the entries of an Append by phone (named_by "phone", the phone nowhere), a
  GetContext, a cross-tenant call; the customer_id filter; paging one by one; privacy.admin;
  calls refused for a malformed field leave neither the value (a phone sent as a customer id)
  nor bulk (100 KB as an event id, a merge source, a tenant) in their entry.
- ReloadTest: SIGHUP loads added keys, drops removed ones, and keeps the loaded keys when the
  file is broken or missing (log: api_keys.reload_failed).
- StartupTest: the embedded default makes one key (printed on stdout, only its hash in
  <data_dir>/api_keys, the same after a restart); with a key file it makes none; a server on an
  external Redis without --api_keys_file, or with a broken one, exits non-zero.
- TlsTest (needs the openssl CLI, skipped without it): --tls_cert/--tls_key serve TLS only;
  --tls_client_ca requires a client certificate signed by that CA; API keys still apply; a key
  that is not the certificate's, or a file that holds no key, stops the server at start with a
  message naming both files and why (not gRPC's "cannot listen").

One redis-server and one onestory-server with a key file of its own (--alert_negative_streak=1)
shared by the first three; the others start their own servers. About 10 s. Run by ctest as
e2e_auth; alone:
  /usr/bin/python3 tests/e2e/auth_test.py --build-dir build [-v] [-k pattern]
"""

import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402  (parses --build-dir and imports the generated stubs)
from harness import C  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import field_mask_pb2, text_format  # noqa: E402
from onestory.v1 import alert_pb2 as A  # noqa: E402
from onestory.v1 import case_pb2 as K  # noqa: E402
from onestory.v1 import context_pb2 as X  # noqa: E402
from onestory.v1 import conversation_pb2 as V  # noqa: E402
from onestory.v1 import identity_pb2 as I  # noqa: E402
from onestory.v1 import privacy_pb2 as P  # noqa: E402
from onestory.v1 import timeline_pb2 as TL  # noqa: E402

T = H.RPC_TIMEOUT
STREAM_TIMEOUT = 3.0  # a served stream is cancelled after its first message; a denied one ends
PB2_MODULES = (I, TL, X, V, K, A, P)

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED

ALL = tuple(H.ALL_SCOPES.split(","))
WRITE = frozenset({"timeline.write"})
READ_ANY = frozenset({"timeline.read", "context.read.bot", "context.read.agent",
                      "context.read.supervisor"})
CONTEXT_READ = frozenset({"context.read.bot", "context.read.agent", "context.read.supervisor"})
ALERT_READ = frozenset({"context.read.agent", "context.read.supervisor"})
TIMELINE_READ = frozenset({"timeline.read"})
IDENTITY_ADMIN = frozenset({"identity.admin"})
TENANT_ADMIN = frozenset({"tenant.admin"})
PRIVACY_ADMIN = frozenset({"privacy.admin"})

_RUN = uuid.uuid4().hex[:6]


def text(msg):
    return text_format.MessageToString(msg, as_utf8=True)


def agent(id_="agent-ann"):
    return C.Actor(type=C.Actor.TYPE_AGENT, id=id_)


def bot(id_="helpbot"):
    return C.Actor(type=C.Actor.TYPE_BOT, id=id_)


def bearer(key):
    return (("authorization", "Bearer " + key),)


# --------------------------------------------------------------------------------------------
# A minimal Redis client (RESP2), to snapshot what a tenant has stored.


class RedisConn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()
        self.sock.close()

    def cmd(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(parts))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError("redis: unexpected reply %r" % line)

    def scan(self, pattern):
        out, cursor = set(), b"0"
        while True:
            cursor, keys = self.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            out.update(keys)
            if cursor == b"0":
                return out


# Keys shared by every tenant whose members name one ("<tenant>/..." or containing its name).
_SHARED_KEYS = ((b"os:{alerts}:due", b"os:{merges}:pending", b"os:{erasures}:pending",
                 b"os:{tenants}:all") +
                tuple(b"os:{due:%d}:z" % i for i in range(16)))


def snapshot(redis, tenant):
    """{key: (type, DUMP, has ttl)} of every key with "{<tenant>:" in its name, plus the tenant's
    members of the shared keys."""
    out = {}
    for key in redis.scan("*{%s:*" % tenant):
        out[key] = (redis.cmd("TYPE", key), redis.cmd("DUMP", key), redis.cmd("PTTL", key) >= 0)
    t = tenant.encode()
    for key in _SHARED_KEYS:
        kind = redis.cmd("TYPE", key)
        if kind == "zset":
            items = redis.cmd("ZRANGE", key, 0, -1, "WITHSCORES")
        elif kind == "set":
            items = redis.cmd("SMEMBERS", key)
        elif kind == "hash":
            items = redis.cmd("HGETALL", key)
        else:
            continue
        pairs = list(zip(items[::2], items[1::2])) if kind != "set" else [(m, b"") for m in items]
        mine = sorted(p for p in pairs if t in p[0])
        if mine:
            out[key + b" (members of " + t + b")"] = (kind, repr(mine).encode(), False)
    return out


def snapshot_diff(before, after):
    lines = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            lines.append("removed: %r" % key)
        elif key not in before:
            lines.append("added: %r (%s)" % (key, after[key][0]))
        elif before[key] != after[key]:
            lines.append("changed: %r (%s)" % (key, after[key][0]))
    return "\n".join(lines)


AUDIT_BUCKETS = 16  # keys::kTenantBuckets


class AuditStreams:
    """A tenant's audit log: one stream per bucket (libs/audit), read here as one log."""

    def __init__(self, tenant):
        self.keys = ["os:{%s:au:%d}:log" % (tenant, b) for b in range(AUDIT_BUCKETS)]
        self.tenant = tenant

    def __str__(self):
        return "the audit log of %s" % self.tenant

    def encoded(self):
        return {k.encode() for k in self.keys}


def audit_log_key(tenant):
    return AuditStreams(tenant)


def xlen(redis, key):
    if isinstance(key, AuditStreams):
        return sum(redis.cmd("XLEN", k) for k in key.keys)
    return redis.cmd("XLEN", key)


def _sid(sid):
    ms, seq = sid.split(b"-") if isinstance(sid, bytes) else sid.split("-")
    return int(ms), int(seq)


def audit_entries_after(redis, tenant, after):
    """The tenant's audit entries stored after `after` (a position per bucket from
    last_stream_id, or "0-0" for all), parsed from Redis directly (not through the API under
    test), in the order libs/audit merges the buckets: (ms of the stream id, bucket, stream id)."""
    found = []
    for b, key in enumerate(audit_log_key(tenant).keys):
        start = after.get(key, "0-0") if isinstance(after, dict) else after
        for sid, fields in redis.cmd("XRANGE", key, "(" + start, "+"):
            d = dict(zip(fields[::2], fields[1::2]))
            ms, seq = _sid(sid)
            found.append(((ms, b, seq), P.AuditEntry.FromString(d[b"e"])))
    found.sort(key=lambda x: x[0])
    return [e for _, e in found]


def last_stream_id(redis, key):
    if isinstance(key, AuditStreams):
        return {k: last_stream_id(redis, k) for k in key.keys}
    r = redis.cmd("XREVRANGE", key, "+", "-", "COUNT", 1)
    return r[0][0].decode() if r else "0-0"


def wait_xlen(redis, key, at_least, timeout=5.0):
    """Audit entries are written asynchronously once the call is answered: waits for them."""
    return H.wait_until(lambda: xlen(redis, key) >= at_least, timeout,
                        what="%d entries in %s (have %d)" % (at_least, key, xlen(redis, key)))


def wait_quiet(redis, key, quiet=0.3, timeout=5.0):
    """Waits until the stream `key` stops growing (no write for `quiet` seconds)."""
    deadline = time.monotonic() + timeout
    last = xlen(redis, key)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = xlen(redis, key)
        if now == last:
            return now
        last = now
    raise TimeoutError("%s kept growing for %.0fs" % (key, timeout))


# --------------------------------------------------------------------------------------------
# Keys: each test module run writes its own key files.


class KeyRing:
    """API keys by name; lines() is the key file."""

    def __init__(self):
        self.keys = {}  # id -> (tenant, scopes tuple, key)

    def add(self, key_id, tenant, scopes):
        key = "os_" + uuid.uuid4().hex + uuid.uuid4().hex
        scopes = tuple(s for s in ALL if s in set(scopes))
        assert scopes, key_id
        self.keys[key_id] = (tenant, scopes, key)
        return key

    def key(self, key_id):
        return self.keys[key_id][2]

    def line(self, key_id):
        tenant, scopes, key = self.keys[key_id]
        return H.key_line(key_id, tenant, ",".join(scopes), key)

    def text(self, ids=None):
        return "".join(self.line(i) + "\n" for i in (ids if ids is not None else self.keys))

    def write(self, path, ids=None):
        with open(path + ".tmp", "w") as f:
            f.write("# e2e auth_test keys\n" + self.text(ids))
        os.rename(path + ".tmp", path)


def without(scopes):
    return frozenset(ALL) - frozenset(scopes)


# Short names of the scopes, for key ids (at most 64 characters).
_ABBREV = {"timeline.write": "tw", "timeline.read": "tr", "context.read.bot": "crb",
           "context.read.agent": "cra", "context.read.supervisor": "crs",
           "identity.admin": "ia", "tenant.admin": "ta", "privacy.admin": "pa"}


def _abbrev(scopes):
    return "+".join(_ABBREV[s] for s in ALL if s in scopes)


def scope_key_id(tenant_label, scopes):
    return "%s-only-%s" % (tenant_label, _abbrev(scopes))


def denied_key_id(tenant_label, needs):
    """A key of every scope but `needs`."""
    return "%s-without-%s" % (tenant_label, _abbrev(needs))


def wait_port(server, timeout=15.0):
    """For a server started with wait=False (TLS: the harness' plaintext readiness check cannot
    connect): waits for its port file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(server.port_file):
            with open(server.port_file) as f:
                t = f.read().strip()
            if t.isdigit():
                server.port = int(t)
                return server
        if not server.proc.alive():
            raise RuntimeError("%s exited (code %s) before listening:\n%s" %
                               (server.name, server.proc.popen.returncode, server.proc.log_tail()))
        time.sleep(0.02)
    raise RuntimeError("%s wrote no port file within %.0fs" % (server.name, timeout))


def read_log(server):
    with open(server.proc.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# Calling any RPC by its descriptor


def _message_class(desc):
    for m in PB2_MODULES + (C,):
        cls = getattr(m, desc.name, None)
        if cls is not None and cls.DESCRIPTOR.full_name == desc.full_name:
            return cls
    raise LookupError("no generated class for %s" % desc.full_name)


class Rpc:
    def __init__(self, service, method):
        self.service = service.name
        self.method = method.name
        self.name = "%s/%s" % (service.name, method.name)
        self.path = "/%s/%s" % (service.full_name, method.name)
        self.request_class = _message_class(method.input_type)
        self.response_class = _message_class(method.output_type)
        self.streaming = method.server_streaming
        assert not method.client_streaming, self.name

    def __repr__(self):
        return self.name


def all_rpcs():
    """Every RPC of every service in the onestory.v1 modules, in declaration order."""
    out = []
    for m in PB2_MODULES:
        for service in m.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                out.append(Rpc(service, method))
    return out


def invoke(chan, rpc, request, key=None, metadata=None, timeout=None):
    """Calls `rpc`; returns (code, details, responses). A served stream is cancelled after its
    first message (OK)."""
    md = list(metadata or ())
    if key is not None:
        md.extend(bearer(key))
    try:
        if rpc.streaming:
            call = chan.unary_stream(rpc.path, request_serializer=rpc.request_class.SerializeToString,
                                     response_deserializer=rpc.response_class.FromString)(
                request, timeout=timeout or STREAM_TIMEOUT, metadata=md)
            got = []
            for resp in call:
                got.append(resp)
                call.cancel()
                break
            return OK, "", got
        resp = chan.unary_unary(rpc.path, request_serializer=rpc.request_class.SerializeToString,
                                response_deserializer=rpc.response_class.FromString)(
            request, timeout=timeout or T, metadata=md)
        return OK, "", [resp]
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.CANCELLED and rpc.streaming:
            return OK, "", []  # cancelled by us after the first message
        return e.code(), e.details(), []


# --------------------------------------------------------------------------------------------
# The shared environment: one Redis, one server, one key file.

TENANT_A = "auth_%s_a" % _RUN
TENANT_B = "auth_%s_b" % _RUN
TENANT_AUD = "auth_%s_aud" % _RUN
TENANT_AUDIT = "auth_%s_log" % _RUN

# Which scopes each RPC accepts (any one of them). What the handlers check
# (services/*/: auth_->Allow, AuthorizeRead, kAlertScopes) and libs/auth/api_keys.h documents.
NEEDS = {
    "IdentityService/Resolve": WRITE,  # with create_if_missing; without: any read scope too
    "IdentityService/Link": WRITE,
    "IdentityService/Unlink": IDENTITY_ADMIN,
    "IdentityService/GetProfile": READ_ANY,
    "IdentityService/UpdateProfile": WRITE,
    "IdentityService/Merge": IDENTITY_ADMIN,
    "IdentityService/Unmerge": IDENTITY_ADMIN,
    "IdentityService/GetMergeHistory": IDENTITY_ADMIN,
    "IdentityService/SuggestMerges": IDENTITY_ADMIN,
    "TimelineService/Append": WRITE,
    "TimelineService/List": TIMELINE_READ,
    "TimelineService/Watch": READ_ANY,  # the audience capped by the scope: a bot watches as a bot
    "ContextService/GetContext": CONTEXT_READ,
    "ConversationService/StartConversation": WRITE,
    "ConversationService/Handoff": WRITE,
    "ConversationService/EndConversation": WRITE,
    "ConversationService/RecordFacts": WRITE,
    "CaseService/OpenCase": WRITE,
    "CaseService/UpdateCase": WRITE,
    "CaseService/ResolveCase": WRITE,
    "CaseService/GetCase": READ_ANY,
    "CaseService/SetJourney": TENANT_ADMIN,
    "CaseService/GetJourney": READ_ANY,
    "CaseService/GetJourneyStats": READ_ANY,
    "AlertService/WatchAlerts": ALERT_READ,
    "AlertService/ListAlerts": ALERT_READ,
    "AlertService/AckAlert": ALERT_READ,
    "PrivacyService/EraseCustomer": PRIVACY_ADMIN,
    "PrivacyService/ExportCustomer": PRIVACY_ADMIN,
    "PrivacyService/RedactEvent": PRIVACY_ADMIN,
    "AuditService/ListAuditEntries": PRIVACY_ADMIN,
}
# Extra variants: (rpc, label, needs); their requests are built by Fixture.variant().
VARIANTS = [("IdentityService/Resolve", "no-create", READ_ANY | WRITE)]

# Tenants and the scope sets their keys have.
AUD_KEYS = {
    "aud-bot": ["context.read.bot"],
    "aud-agent": ["context.read.agent"],
    "aud-supervisor": ["context.read.supervisor"],
    "aud-reader": ["timeline.read"],
    "aud-all": ALL,
}
AUDIT_KEYS = {
    "log-writer": ["timeline.write"],
    "log-reader": ["context.read.agent"],
    "log-admin": ["privacy.admin"],
    "log-no-privacy": [s for s in ALL if s != "privacy.admin"],
}


class _Env:
    def __init__(self):
        self.ring = KeyRing()
        ring = self.ring
        ring.add("a-all", TENANT_A, ALL)
        ring.add("b-all", TENANT_B, ALL)
        for needs in set(NEEDS.values()) | {v[2] for v in VARIANTS}:
            ring.add(denied_key_id("b", needs), TENANT_B, without(needs))
        for s in ALL:
            ring.add(scope_key_id("b", [s]), TENANT_B, [s])
        for k, scopes in AUD_KEYS.items():
            ring.add(k, TENANT_AUD, scopes)
        for k, scopes in AUDIT_KEYS.items():
            ring.add(k, TENANT_AUDIT, scopes)
        self.keys_path = os.path.join(H.new_tmp_dir("auth-keys-"), "api_keys")
        ring.write(self.keys_path)
        self.redis = H.Redis()
        self.server = H.Server(self.redis.address,
                               extra_args=("--api_keys_file=" + self.keys_path,
                                           "--alert_negative_streak=1"))
        self.chan = H.raw_channel(self.server.target)
        self.db = RedisConn(self.redis.port)


_env = None
_env_error = None


def env():
    global _env, _env_error
    if _env_error is not None:
        raise RuntimeError("the auth e2e environment failed to start: %s" % _env_error)
    if _env is None:
        try:
            _env = _Env()
        except Exception as e:
            _env_error = e
            raise
    return _env


class AuthCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.env = env()
        self.chan = self.env.chan
        self.db = self.env.db
        self.ring = self.env.ring
        self.rpcs = {r.name: r for r in all_rpcs()}

    def call(self, name, request, key_id=None, key=None, **kw):
        if key_id is not None:
            key = self.ring.key(key_id)
        return invoke(self.chan, self.rpcs[name], request, key=key, **kw)

    def ok(self, name, request, key_id, **kw):
        code, details, resps = self.call(name, request, key_id, **kw)
        self.assertEqual(code, OK, "%s as %s: %s (%s)\n%s" % (name, key_id, code, details,
                                                             text(request)))
        return resps[0] if resps else None


# --------------------------------------------------------------------------------------------
# The data of tenant B that nobody else may touch, and a request for every RPC that would
# change or read it.


class Fixture:
    def __init__(self, case, tenant, key_id):
        self.t = tenant
        u = uuid.uuid4().hex[:8]
        digits = str(int(u, 16) % 10 ** 7).zfill(7)
        self.phone = "+1 (415) 5%s" % digits[:2] + "-" + digits[2:6]
        self.phone_digits = "14155" + digits[:6]
        # Identifier values of the tenant's customers: in no audit entry, in any form.
        self.personal = [self.phone, self.phone_digits, self.phone_digits[1:]]
        ok = lambda name, req: case.ok(name, req, key_id)  # noqa: E731

        def ev(**kw):
            return C.Event(event_id="ev-" + uuid.uuid4().hex[:10], channel=C.CHANNEL_WEB_CHAT,
                           kind=C.EVENT_KIND_MESSAGE, actor=C.Actor(type=C.Actor.TYPE_CUSTOMER),
                           **kw)

        first, second = ev(summary="where is my order", sentiment=-0.9), \
            ev(summary="for the bot", visibility=C.AUDIENCE_BOT)
        r = ok("TimelineService/Append", TL.AppendRequest(
            tenant=tenant, customer=H.by_ident(C.IDENTIFIER_TYPE_PHONE, self.phone),
            events=[first, second], create_if_missing=True))
        self.c1 = r.customer_id
        self.event_id = first.event_id
        self.email = "b-%s@example.com" % u
        self.personal.append(self.email)
        ok("IdentityService/Link", I.LinkRequest(
            tenant=tenant, customer_id=self.c1,
            identifier=H.ident(C.IDENTIFIER_TYPE_EMAIL, self.email)))
        ids = []
        for i in range(3):
            ids.append(ok("IdentityService/Resolve", I.ResolveRequest(
                tenant=tenant, identifier=H.ident(C.IDENTIFIER_TYPE_CRM_ID, "crm-%s-%d" % (u, i)),
                create_if_missing=True)).customer_id)
        self.c2, self.c3, self.c4 = ids
        self.merge_id = ok("IdentityService/Merge", I.MergeRequest(
            tenant=tenant, source_customer_id=self.c3, target_customer_id=self.c2,
            reason="same person", actor=agent())).merge.merge_id
        self.conversation = "conv-" + u
        ok("ConversationService/StartConversation", V.StartConversationRequest(
            tenant=tenant, customer=H.by_id(self.c1), conversation_id=self.conversation,
            channel=C.CHANNEL_CHATBOT, served_by=bot()))
        ok("CaseService/SetJourney", K.SetJourneyRequest(tenant=tenant,
                                                         stages=["new", "working", "done"]))
        self.case = "case-" + u
        ok("CaseService/OpenCase", K.OpenCaseRequest(
            tenant=tenant, customer=H.by_id(self.c1), case_id=self.case, topic="order late",
            actor=agent(), channel=C.CHANNEL_WEB_CHAT))
        alerts = H.wait_until(lambda: ok("AlertService/ListAlerts", A.ListAlertsRequest(
            tenant=tenant)).alerts, 5.0, what="the NEGATIVE_STREAK alert")
        self.alert_id = alerts[0].alert_id

    @classmethod
    def placeholder(cls, tenant):
        """Requests only, naming data that does not exist (for calls refused before any read)."""
        fx = cls.__new__(cls)
        fx.t, fx.c1, fx.c2, fx.c3, fx.c4 = tenant, "c1", "c2", "c3", "c4"
        fx.phone, fx.email, fx.merge_id, fx.event_id = "+14155550100", "x@example.com", "m1", "ev"
        fx.conversation, fx.case, fx.alert_id, fx.personal = "conv", "case", "alert", []
        return fx

    def request(self, name):
        """A minimal request of RPC `name` for this tenant's data that the service would
        serve (OK) for a key of the tenant with the scope it needs."""
        t, c1 = self.t, H.by_id(self.c1)
        by_phone = H.by_ident(C.IDENTIFIER_TYPE_PHONE, self.phone)
        u = uuid.uuid4().hex[:8]
        new_phone = "%04d" % (int(u, 16) % 10000)
        new_email = "new-%s@example.com" % u
        if name == "IdentityService/Resolve":
            self.personal.extend(["+1 650 555 " + new_phone, "1650555" + new_phone])
        if name == "IdentityService/Link":
            self.personal.append(new_email)
        build = {
            "IdentityService/Resolve": lambda: I.ResolveRequest(
                tenant=t, identifier=H.ident(C.IDENTIFIER_TYPE_PHONE, "+1 650 555 " + new_phone),
                create_if_missing=True),
            "IdentityService/Link": lambda: I.LinkRequest(
                tenant=t, customer_id=self.c1,
                identifier=H.ident(C.IDENTIFIER_TYPE_EMAIL, new_email)),
            "IdentityService/Unlink": lambda: I.UnlinkRequest(
                tenant=t, customer_id=self.c1,
                identifier=H.ident(C.IDENTIFIER_TYPE_EMAIL, self.email)),
            "IdentityService/GetProfile": lambda: I.GetProfileRequest(tenant=t, customer=by_phone),
            "IdentityService/UpdateProfile": lambda: I.UpdateProfileRequest(
                tenant=t, customer_id=self.c1, profile=I.Profile(display_name="Mallory"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"])),
            "IdentityService/Merge": lambda: I.MergeRequest(
                tenant=t, source_customer_id=self.c4, target_customer_id=self.c1,
                reason="same person", actor=agent()),
            "IdentityService/Unmerge": lambda: I.UnmergeRequest(
                tenant=t, merge_id=self.merge_id, reason="not the same", actor=agent()),
            "IdentityService/GetMergeHistory": lambda: I.GetMergeHistoryRequest(
                tenant=t, customer_id=self.c2),
            "IdentityService/SuggestMerges": lambda: I.SuggestMergesRequest(tenant=t, customer=c1),
            "TimelineService/Append": lambda: TL.AppendRequest(
                tenant=t, customer=by_phone, events=[C.Event(
                    event_id="ev-" + u, channel=C.CHANNEL_VOICE, kind=C.EVENT_KIND_CALL_STARTED,
                    actor=C.Actor(type=C.Actor.TYPE_CUSTOMER))]),
            "TimelineService/List": lambda: TL.ListRequest(tenant=t, customer=c1),
            "TimelineService/Watch": lambda: TL.WatchRequest(tenant=t, customer=c1,
                                                             from_start=True),
            "ContextService/GetContext": lambda: X.GetContextRequest(
                tenant=t, customer=by_phone, recent_events=10),
            "ConversationService/StartConversation": lambda: V.StartConversationRequest(
                tenant=t, customer=c1, conversation_id="conv-" + u, channel=C.CHANNEL_VOICE,
                served_by=agent()),
            "ConversationService/Handoff": lambda: V.HandoffRequest(
                tenant=t, customer=c1, conversation_id=self.conversation, to=agent(),
                reason="customer asked for a human", **{"from": bot()}),
            "ConversationService/EndConversation": lambda: V.EndConversationRequest(
                tenant=t, customer=c1, conversation_id=self.conversation, actor=agent()),
            "ConversationService/RecordFacts": lambda: V.RecordFactsRequest(
                tenant=t, customer=c1, actor=agent(), channel=C.CHANNEL_VOICE,
                facts=[C.Fact(type=C.FACT_TYPE_COLLECTED, name="order_number", value="1234")]),
            "CaseService/OpenCase": lambda: K.OpenCaseRequest(
                tenant=t, customer=c1, case_id="case-" + u, topic="another issue",
                actor=agent(), channel=C.CHANNEL_VOICE),
            "CaseService/UpdateCase": lambda: K.UpdateCaseRequest(
                tenant=t, customer=c1, case_id=self.case, actor=agent(),
                channel=C.CHANNEL_VOICE, note="called back", stage="working"),
            "CaseService/ResolveCase": lambda: K.ResolveCaseRequest(
                tenant=t, customer=c1, case_id=self.case, actor=agent(),
                channel=C.CHANNEL_VOICE, resolution="sent again"),
            "CaseService/GetCase": lambda: K.GetCaseRequest(tenant=t, customer=c1,
                                                            case_id=self.case),
            "CaseService/SetJourney": lambda: K.SetJourneyRequest(
                tenant=t, stages=["new", "working", "done", "closed"]),
            "CaseService/GetJourney": lambda: K.GetJourneyRequest(tenant=t),
            "CaseService/GetJourneyStats": lambda: K.GetJourneyStatsRequest(tenant=t),
            "AlertService/WatchAlerts": lambda: A.WatchAlertsRequest(tenant=t, from_start=True),
            "AlertService/ListAlerts": lambda: A.ListAlertsRequest(tenant=t,
                                                                   include_acknowledged=True),
            "AlertService/AckAlert": lambda: A.AckAlertRequest(tenant=t, alert_id=self.alert_id,
                                                               actor=agent("supervisor-sue")),
            "PrivacyService/EraseCustomer": lambda: P.EraseCustomerRequest(
                tenant=t, customer=by_phone, reason="ticket-1"),
            "PrivacyService/ExportCustomer": lambda: P.ExportCustomerRequest(tenant=t,
                                                                             customer=c1),
            "PrivacyService/RedactEvent": lambda: P.RedactEventRequest(
                tenant=t, customer=c1, event_id=self.event_id, summary="[removed]",
                reason="ticket-2"),
            "AuditService/ListAuditEntries": lambda: P.ListAuditEntriesRequest(
                tenant=t, customer_id=self.c1),
        }
        return build[name]()

    def variant(self, name, label):
        assert (name, label) == ("IdentityService/Resolve", "no-create")
        return I.ResolveRequest(tenant=self.t, identifier=H.ident(C.IDENTIFIER_TYPE_PHONE,
                                                                  self.phone))

    def cases(self, rpcs):
        """[(label, rpc, request builder, needs)] for every RPC and variant."""
        out = [(r.name, r, (lambda n=r.name: self.request(n)), NEEDS[r.name]) for r in rpcs]
        by_name = {r.name: r for r in rpcs}
        for name, label, needs in VARIANTS:
            out.append(("%s(%s)" % (name, label), by_name[name],
                        (lambda n=name, l=label: self.variant(n, l)), needs))
        return out


# --------------------------------------------------------------------------------------------


class AuthMatrixTest(AuthCase):
    def test_catalogue_covers_every_rpc(self):
        """Every service and method of the onestory.v1 modules has a request and scopes here;
        PrivacyService and AuditService are among them."""
        rpcs = all_rpcs()
        services = {r.service for r in rpcs}
        self.assertTrue({"IdentityService", "TimelineService", "ContextService",
                         "ConversationService", "CaseService", "AlertService", "PrivacyService",
                         "AuditService"} <= services, services)
        names = {r.name for r in rpcs}
        self.assertEqual(sorted(names - set(NEEDS)), [],
                         "RPCs without an entry in NEEDS and Fixture.request: add them")
        self.assertEqual(sorted(set(NEEDS) - names), [], "NEEDS names RPCs that do not exist")

    def test_every_rpc_needs_the_right_key_and_changes_nothing_of_another_tenant(self):
        rpcs = all_rpcs()
        fx = Fixture(self, TENANT_B, "b-all")
        cases = fx.cases(rpcs)
        b_log, a_log = audit_log_key(TENANT_B), audit_log_key(TENANT_A)
        wait_quiet(self.db, b_log)
        before = snapshot(self.db, TENANT_B)
        self.assertIn(("os:{%s:c:%s}:tl" % (TENANT_B, fx.c1)).encode(), before)
        a_last, a_len = last_stream_id(self.db, a_log), xlen(self.db, a_log)
        unserved = []

        # (a) no key, (b) an unknown key or a malformed "authorization": UNAUTHENTICATED.
        junk = "os_" + uuid.uuid4().hex + uuid.uuid4().hex
        b_key = self.ring.key("b-all")
        bad_metadata = [
            ("no key", ()),
            ("unknown key", bearer(junk)),
            ("the key's hash", bearer(hashlib.sha256(b_key.encode()).hexdigest())),
            ("Basic scheme", (("authorization", "Basic " + b_key),)),
            ("no scheme", (("authorization", b_key),)),
            ("empty bearer", (("authorization", "Bearer "),)),
            ("key in another header", (("x-api-key", b_key),)),
            ("oversized key", bearer("k" * 600)),
        ]
        for label, rpc, build, needs in cases:
            for what, md in bad_metadata:
                with self.subTest(rpc=label, metadata=what):
                    code, details, _ = invoke(self.chan, rpc, build(), metadata=md)
                    if code == UNIMPLEMENTED:
                        unserved.append(rpc.name)
                    self.assertEqual(code, UNAUTHENTICATED, "%s with %s: %s (%s)" %
                                     (label, what, code, details))

        # (c) tenant A's key with every scope, naming tenant B: PERMISSION_DENIED.
        cross_calls = 0
        for label, rpc, build, needs in cases:
            with self.subTest(rpc=label, key="a-all", tenant=TENANT_B):
                code, details, _ = invoke(self.chan, rpc, build(), key=self.ring.key("a-all"))
                cross_calls += 1
                self.assertEqual(code, DENIED, "%s: %s (%s)" % (label, code, details))
                if code == DENIED:
                    self.assertIn(TENANT_B, details)

        after_c = snapshot(self.db, TENANT_B)
        self.assertEqual(snapshot_diff(before, after_c), "",
                         "calls without a valid key of tenant %s changed its data" % TENANT_B)

        # The denied attempts are in A's log (the key's tenant), as A's key id, without B's
        # customer or the phone number B's customer was named by.
        wait_xlen(self.db, a_log, a_len + cross_calls)
        wait_quiet(self.db, a_log)
        entries = audit_entries_after(self.db, TENANT_A, a_last)
        # A stream also has an entry when it opens (code STARTED), before its final one; an
        # export writes its own, and only once it is allowed (a refused one has none).
        started = {e.method for e in entries if e.code == "STARTED"}
        entries = [e for e in entries if e.code != "STARTED"]
        self.assertEqual(started, {"onestory.v1." + r.name for _, r, _, _ in cases
                                   if r.streaming and r.name != "PrivacyService/ExportCustomer"})
        self.assertEqual(len(entries), cross_calls, "\n".join(text(e) for e in entries))
        for e in entries:
            self.assertEqual(e.key_id, "a-all", text(e))
            self.assertEqual(e.code, "PERMISSION_DENIED", text(e))
            self.assertEqual(e.customer_id, "", text(e))
            self.assertIn("asked_tenant=" + TENANT_B, e.detail, text(e))
            for value in fx.personal:
                self.assertNotIn(value, text(e))
        self.assertEqual({e.method for e in entries},
                         {"onestory.v1." + r.name for _, r, _, _ in cases})

        # (d) B's own key without the scope the RPC needs: PERMISSION_DENIED naming the scopes.
        b_last = last_stream_id(self.db, b_log)
        b_len = xlen(self.db, b_log)
        denied_calls = 0
        for label, rpc, build, needs in cases:
            key_id = denied_key_id("b", needs)
            with self.subTest(rpc=label, key=key_id):
                code, details, _ = invoke(self.chan, rpc, build(), key=self.ring.key(key_id))
                denied_calls += 1
                self.assertEqual(code, DENIED, "%s as %s: %s (%s)" % (label, key_id, code,
                                                                       details))
                if code == DENIED:
                    self.assertIn(key_id, details)
                    for s in needs:
                        self.assertIn(s, details)

        # Nothing of B changed but its audit log, which gained one PERMISSION_DENIED entry per
        # attempt.
        wait_xlen(self.db, b_log, b_len + denied_calls)
        wait_quiet(self.db, b_log)
        after_d = snapshot(self.db, TENANT_B)
        log_keys = b_log.encoded()
        self.assertEqual(snapshot_diff({k: v for k, v in before.items() if k not in log_keys},
                                       {k: v for k, v in after_d.items() if k not in log_keys}),
                         "",
                         "calls with a key lacking the scope changed tenant %s" % TENANT_B)
        entries = [e for e in audit_entries_after(self.db, TENANT_B, b_last)
                   if e.code != "STARTED"]
        self.assertEqual(len(entries), denied_calls, "\n".join(text(e) for e in entries))
        for e in entries:
            self.assertTrue(e.key_id.startswith("b-without-"), text(e))
            self.assertEqual(e.code, "PERMISSION_DENIED", text(e))
            for value in fx.personal:
                self.assertNotIn(value, text(e))

        if unserved:
            self.fail("not served by onestory-server (UNIMPLEMENTED): %s" %
                      ", ".join(sorted(set(unserved))))

        # Each scope the RPC accepts is enough on its own: the same requests are served (the
        # first with OK: the requests above were real ones). EraseCustomer goes last.
        order = sorted(cases, key=lambda c: c[1].name == "PrivacyService/EraseCustomer")
        for label, rpc, build, needs in order:
            for i, s in enumerate(sorted(needs)):
                key_id = scope_key_id("b", [s])
                with self.subTest(rpc=label, key=key_id):
                    code, details, _ = invoke(self.chan, rpc, build(), key=self.ring.key(key_id))
                    if i == 0:
                        self.assertEqual(code, OK, "%s as %s: %s (%s)" % (label, key_id, code,
                                                                           details))
                    else:
                        self.assertNotIn(code, (UNAUTHENTICATED, DENIED, UNIMPLEMENTED),
                                         "%s as %s: %s (%s)" % (label, key_id, code, details))

        # B's whole audit log (the served calls too, many naming the customer by phone) holds
        # no identifier value; the server's log holds no key, valid or not.
        wait_quiet(self.db, b_log)
        for e in audit_entries_after(self.db, TENANT_B, "0-0"):
            for value in fx.personal:
                self.assertNotIn(value, text(e))
        log = read_log(self.env.server)
        for key_id in ("a-all", "b-all", denied_key_id("b", WRITE), scope_key_id("b", WRITE)):
            self.assertNotIn(self.ring.key(key_id), log)
        self.assertNotIn(junk, log)

    def test_check_order(self):
        """No key before scope before a malformed tenant before another tenant."""
        rpcs = all_rpcs()
        for label, rpc, build, needs in Fixture.placeholder(TENANT_B).cases(rpcs):
            for bad_tenant in ("", "bad tenant!", "{%s:c:x}" % TENANT_B, "x" * 65):
                req = build()
                req.tenant = bad_tenant
                with self.subTest(rpc=label, tenant=bad_tenant):
                    code, details, _ = invoke(self.chan, rpc, req)
                    self.assertEqual(code, UNAUTHENTICATED, details)
                    key_id = denied_key_id("b", needs)
                    code, details, _ = invoke(self.chan, rpc, req, key=self.ring.key(key_id))
                    self.assertEqual(code, DENIED, "%s: %s" % (key_id, details))
                    code, details, _ = invoke(self.chan, rpc, req, key=self.ring.key("b-all"))
                    self.assertEqual(code, INVALID, details)
                    self.assertIn("tenant", details)
            # Tenants are compared exactly.
            for other in (TENANT_B.upper(), TENANT_B + " ", TENANT_A):
                req = build()
                req.tenant = other
                with self.subTest(rpc=label, tenant=other):
                    code, details, _ = invoke(self.chan, rpc, req, key=self.ring.key("b-all"))
                    self.assertIn(code, (DENIED, INVALID) if other.endswith(" ") else (DENIED,),
                                  details)


class AudienceTest(AuthCase):
    def setUp(self):
        super().setUp()
        t = TENANT_AUD
        self.t = t
        phone = "+1 415 555 %04d" % (int(uuid.uuid4().hex[:4], 16) % 10000)

        def ev(label, visibility):
            return C.Event(event_id="ev-%s-%s" % (label, uuid.uuid4().hex[:6]),
                           channel=C.CHANNEL_WEB_CHAT, kind=C.EVENT_KIND_NOTE,
                           actor=agent(), summary=label, visibility=visibility)

        self.events = {
            "customer": ev("customer", C.AUDIENCE_CUSTOMER),
            "bot": ev("bot", C.AUDIENCE_BOT),
            "agent": ev("agent", C.AUDIENCE_UNSPECIFIED),  # unset: AGENT
            "supervisor": ev("supervisor", C.AUDIENCE_SUPERVISOR),
        }
        r = self.ok("TimelineService/Append", TL.AppendRequest(
            tenant=t, customer=H.by_ident(C.IDENTIFIER_TYPE_PHONE, phone),
            events=list(self.events.values()), create_if_missing=True), "aud-all")
        self.ref = H.by_id(r.customer_id)

    def seen(self, resp_events):
        return sorted(e.summary for e in resp_events)

    def context(self, key_id, audience=C.AUDIENCE_UNSPECIFIED):
        return self.call("ContextService/GetContext", X.GetContextRequest(
            tenant=self.t, customer=self.ref, recent_events=20, audience=audience), key_id)

    def list(self, key_id, audience=C.AUDIENCE_UNSPECIFIED):
        return self.call("TimelineService/List", TL.ListRequest(
            tenant=self.t, customer=self.ref, audience=audience), key_id)

    def expect(self, result, seen):
        code, details, resps = result
        self.assertEqual(code, OK, details)
        events = getattr(resps[0], "recent_events", None)
        if events is None:
            events = resps[0].events
        self.assertEqual(self.seen(events), sorted(seen))

    def expect_denied(self, result, scope):
        code, details, _ = result
        self.assertEqual(code, DENIED, details)
        self.assertIn(scope, details)

    def test_bot_key_reads_as_a_bot(self):
        self.expect(self.context("aud-bot"), ["customer", "bot"])
        self.expect(self.context("aud-bot", C.AUDIENCE_BOT), ["customer", "bot"])
        self.expect(self.context("aud-bot", C.AUDIENCE_CUSTOMER), ["customer"])
        self.expect_denied(self.context("aud-bot", C.AUDIENCE_AGENT), "context.read.agent")
        self.expect_denied(self.context("aud-bot", C.AUDIENCE_SUPERVISOR),
                           "context.read.supervisor")
        # The timeline itself needs timeline.read.
        self.expect_denied(self.list("aud-bot"), "timeline.read")
        self.expect_denied(self.list("aud-bot", C.AUDIENCE_BOT), "timeline.read")
        # A live feed of what a bot may see: Watch at BOT, not above.
        self.expect_denied(self.call("TimelineService/Watch", TL.WatchRequest(
            tenant=self.t, customer=self.ref, from_start=True, audience=C.AUDIENCE_AGENT),
            "aud-bot"), "context.read.agent")
        # A case read above the ceiling is refused the same way.
        self.expect_denied(self.call("CaseService/GetCase", K.GetCaseRequest(
            tenant=self.t, customer=self.ref, case_id="nope", audience=C.AUDIENCE_AGENT),
            "aud-bot"), "context.read.agent")

    def test_agent_reader_and_supervisor_ceilings(self):
        self.expect(self.context("aud-agent"), ["customer", "bot", "agent"])
        self.expect_denied(self.context("aud-agent", C.AUDIENCE_SUPERVISOR),
                           "context.read.supervisor")
        # timeline.read reads the timeline as an agent, not the screen pop.
        self.expect(self.list("aud-reader"), ["customer", "bot", "agent"])
        self.expect(self.list("aud-reader", C.AUDIENCE_BOT), ["customer", "bot"])
        self.expect_denied(self.list("aud-reader", C.AUDIENCE_SUPERVISOR),
                           "context.read.supervisor")
        self.expect_denied(self.context("aud-reader"), "context.read")
        # A supervisor's key reads as an agent unless it asks for more.
        self.expect(self.context("aud-supervisor"), ["customer", "bot", "agent"])
        self.expect(self.context("aud-supervisor", C.AUDIENCE_SUPERVISOR),
                    ["customer", "bot", "agent", "supervisor"])
        self.expect(self.list("aud-all", C.AUDIENCE_SUPERVISOR),
                    ["customer", "bot", "agent", "supervisor"])
        self.expect_denied(self.list("aud-supervisor"), "timeline.read")


class AuditTest(AuthCase):
    def entries(self, key_id="log-admin", **kw):
        code, details, resps = self.call("AuditService/ListAuditEntries",
                                         P.ListAuditEntriesRequest(tenant=TENANT_AUDIT, **kw),
                                         key_id)
        self.assertEqual(code, OK, details)
        return resps[0]

    def test_audit_entries(self):
        t = TENANT_AUDIT
        digits = "%07d" % (int(uuid.uuid4().hex[:6], 16) % 10 ** 7)
        phone = "+1 (628) %s-%s" % (digits[:3], digits[3:])
        normalized = "1628" + digits
        log = audit_log_key(t)
        start = last_stream_id(self.db, log)

        event_id = "ev-" + uuid.uuid4().hex[:8]
        r = self.ok("TimelineService/Append", TL.AppendRequest(
            tenant=t, customer=H.by_ident(C.IDENTIFIER_TYPE_PHONE, phone), create_if_missing=True,
            events=[C.Event(event_id=event_id, channel=C.CHANNEL_VOICE,
                            kind=C.EVENT_KIND_CALL_STARTED,
                            actor=C.Actor(type=C.Actor.TYPE_CUSTOMER))]), "log-writer")
        customer = r.customer_id
        self.ok("ContextService/GetContext", X.GetContextRequest(
            tenant=t, customer=H.by_id(customer)), "log-reader")
        self.ok("ContextService/GetContext", X.GetContextRequest(
            tenant=t, customer=H.by_ident(C.IDENTIFIER_TYPE_PHONE, phone)), "log-reader")
        code, details, _ = self.call("ContextService/GetContext", X.GetContextRequest(
            tenant=TENANT_A, customer=H.by_ident(C.IDENTIFIER_TYPE_PHONE, phone)), "log-reader")
        self.assertEqual(code, DENIED, details)
        # Calls without a valid key are in no tenant's log.
        code, _, _ = self.call("IdentityService/GetProfile", I.GetProfileRequest(
            tenant=t, customer=H.by_id(customer)), key="os_unknown")
        self.assertEqual(code, UNAUTHENTICATED)
        code, _, _ = self.call("IdentityService/GetProfile", I.GetProfileRequest(
            tenant=t, customer=H.by_id(customer)))
        self.assertEqual(code, UNAUTHENTICATED)
        # A key without privacy.admin may not read the log.
        code, details, _ = self.call("AuditService/ListAuditEntries", P.ListAuditEntriesRequest(
            tenant=t), "log-no-privacy")
        self.assertEqual(code, DENIED, details)
        self.assertIn("privacy.admin", details)

        mine = wait_xlen(self.db, log, 5) and audit_entries_after(self.db, t, start)
        self.assertEqual(len(mine), 5, "\n".join(text(e) for e in mine))
        listed = self.entries(page_size=1000)
        self.assertFalse(listed.next_page_token)
        by_method = {}
        for e in listed.entries:
            by_method.setdefault((e.method, e.key_id, e.code, e.named_by), []).append(e)
        append = by_method[("onestory.v1.TimelineService/Append", "log-writer", "OK", "phone")]
        self.assertEqual(len(append), 1, text(listed))
        self.assertEqual(append[0].customer_id, customer)
        self.assertIn("events=1", append[0].detail)
        self.assertTrue(append[0].at.seconds > 0)
        ctx_by_id = by_method[("onestory.v1.ContextService/GetContext", "log-reader", "OK", "")]
        self.assertEqual([e.customer_id for e in ctx_by_id], [customer])
        ctx_by_phone = by_method[("onestory.v1.ContextService/GetContext", "log-reader", "OK",
                                  "phone")]
        self.assertEqual([e.customer_id for e in ctx_by_phone], [customer])
        cross = by_method[("onestory.v1.ContextService/GetContext", "log-reader",
                           "PERMISSION_DENIED", "phone")]
        self.assertEqual(len(cross), 1, text(listed))
        self.assertEqual(cross[0].customer_id, "")
        self.assertIn("asked_tenant=" + TENANT_A, cross[0].detail)
        denied_log = by_method[("onestory.v1.AuditService/ListAuditEntries", "log-no-privacy",
                                "PERMISSION_DENIED", "")]
        self.assertEqual(len(denied_log), 1)
        self.assertNotIn("onestory.v1.IdentityService/GetProfile",
                         {e.method for e in listed.entries})
        # Newest first in the order entries were written (libs/audit merges the buckets by
        # (ms of the stream id, bucket, stream id); `at` is when each call happened, and two
        # calls in flight together may be written in the other order).
        # Read after the listing: the newest entries (the listing's own) may not be listed.
        stored = [e.SerializeToString() for e in reversed(audit_entries_after(self.db, t, "0-0"))]
        self.assertGreaterEqual(len(stored), len(listed.entries))
        self.assertEqual([e.SerializeToString() for e in listed.entries],
                         stored[len(stored) - len(listed.entries):])
        # The phone number is in no entry, in any form.
        for e in listed.entries:
            for form in (phone, normalized, normalized[1:], digits):
                self.assertNotIn(form, e.SerializeToString().decode("utf-8", "replace"), text(e))

        # Only the customer's entries.
        about = self.entries(customer_id=customer, page_size=1000)
        self.assertTrue(about.entries)
        self.assertEqual({e.customer_id for e in about.entries}, {customer})
        self.assertTrue(
            {(e.method, e.named_by) for e in about.entries} >=
            {("onestory.v1.TimelineService/Append", "phone"),
             ("onestory.v1.ContextService/GetContext", ""),
             ("onestory.v1.ContextService/GetContext", "phone")}, text(about))
        code, details, _ = self.call("AuditService/ListAuditEntries", P.ListAuditEntriesRequest(
            tenant=t, customer_id="{x}"), "log-admin")
        self.assertEqual(code, INVALID, details)
        code, details, _ = self.call("AuditService/ListAuditEntries", P.ListAuditEntriesRequest(
            tenant=t, page_size=1001), "log-admin")
        self.assertEqual(code, INVALID, details)

        # Paging one entry at a time walks them all, newest first; entries recorded meanwhile
        # (each ListAuditEntries is one) are newer than the walk's start.
        full = [e.SerializeToString() for e in self.entries(page_size=1000).entries]
        walked, token, pages = [], "", 0
        while True:
            page = self.entries(page_size=1, page_token=token)
            pages += 1
            self.assertLessEqual(len(page.entries), 1)
            walked.extend(e.SerializeToString() for e in page.entries)
            token = page.next_page_token
            if not token:
                break
            self.assertLess(pages, len(full) + 20, "page tokens never end")
        self.assertEqual(walked[-len(full):], full)
        # At most one more: the entry of the call that fetched `full` (written after its answer).
        self.assertIn(len(walked) - len(full), (0, 1), "an entry was listed twice")
        # A page token belongs to its filter.
        first = self.entries(page_size=1)
        self.assertTrue(first.next_page_token)
        code, details, _ = self.call("AuditService/ListAuditEntries", P.ListAuditEntriesRequest(
            tenant=t, customer_id=customer, page_token=first.next_page_token), "log-admin")
        self.assertEqual(code, INVALID, details)


    def test_refused_requests_leave_no_raw_values_in_the_log(self):
        """A call refused for a malformed field is recorded, but the field's value is not: a
        phone number or an email sent by mistake as a customer id, or a megabyte of text as an
        event id, a merge source or a tenant, is personal data or bulk in a log that is kept
        for 400 days. An entry's customer_id is a valid customer id or empty; its detail is
        short."""
        t = TENANT_AUDIT
        log = audit_log_key(t)
        wait_quiet(self.db, log)
        start, n = last_stream_id(self.db, log), xlen(self.db, log)
        phone, email, bulk = "+1 415 555 0199", "jane.doe@example.com", "y" * 100000
        calls = [
            ("ContextService/GetContext", X.GetContextRequest(tenant=t,
                                                              customer=H.by_id(email))),
            ("IdentityService/GetMergeHistory", I.GetMergeHistoryRequest(tenant=t,
                                                                         customer_id=phone)),
            ("TimelineService/List", TL.ListRequest(tenant=t, customer=H.by_id(bulk))),
            ("IdentityService/Merge", I.MergeRequest(
                tenant=t, source_customer_id=bulk, target_customer_id="cus_x", reason="r",
                actor=agent())),
            ("PrivacyService/RedactEvent", P.RedactEventRequest(
                tenant=t, customer=H.by_id("cus_x"), event_id=bulk)),
            ("CaseService/GetJourney", K.GetJourneyRequest(tenant="call me at " + phone)),
            ("CaseService/GetJourney", K.GetJourneyRequest(tenant=bulk)),
        ]
        for name, req in calls:
            code, details, _ = self.call(name, req, "log-admin" if name.startswith("Privacy")
                                         else "log-no-privacy")
            self.assertEqual(code, INVALID, "%s: %s %s" % (name, code, details))
        # Merge and RedactEvent write a STARTED entry before they act (their store then refuses
        # the request), so two more.
        wait_xlen(self.db, log, n + len(calls) + 2)
        everything = audit_entries_after(self.db, t, start)
        # In call order: `at` is when each call happened (the log's order is when its entry was
        # written, and entries of one millisecond in different buckets come by bucket).
        entries = sorted((e for e in everything if e.code != "STARTED"),
                         key=lambda e: (e.at.seconds, e.at.nanos))
        started = [e for e in everything if e.code == "STARTED"]
        self.assertEqual(sorted(e.method for e in started),
                         ["onestory.v1.IdentityService/Merge",
                          "onestory.v1.PrivacyService/RedactEvent"])
        self.assertEqual(len(entries), len(calls))
        problems = []
        for e in started:
            if e.customer_id and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", e.customer_id):
                problems.append("STARTED %s: customer_id %r" % (e.method, e.customer_id[:40]))
            if len(e.detail) > 512:
                problems.append("STARTED %s: detail of %d bytes" % (e.method, len(e.detail)))
        for (name, _), e in zip(calls, entries):
            self.assertEqual(e.method, "onestory.v1." + name)
            self.assertEqual(e.code, "INVALID_ARGUMENT")
            if e.customer_id and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", e.customer_id):
                problems.append("%s: customer_id %r (%d bytes)" % (name, e.customer_id[:40],
                                                                   len(e.customer_id)))
            if len(e.detail) > 512:
                problems.append("%s: detail of %d bytes: %r..." % (name, len(e.detail),
                                                                   e.detail[:40]))
            for value in (phone, email):
                if value in e.SerializeToString().decode("utf-8", "replace"):
                    problems.append("%s: %r is in the entry" % (name, value))
        if problems:
            self.fail("raw request values in audit entries:\n" + "\n".join(problems))


# --------------------------------------------------------------------------------------------


class ReloadTest(unittest.TestCase):
    def test_sighup_reloads_the_key_file(self):
        e = env()
        tenant = "auth_%s_reload" % _RUN
        ring = KeyRing()
        ring.add("k1", tenant, ALL)
        ring.add("k2", tenant, ALL)
        path = os.path.join(H.new_tmp_dir("reload-"), "api_keys")
        ring.write(path, ["k1"])
        server = H.Server(e.redis.address, extra_args=("--api_keys_file=" + path,))
        chan = H.raw_channel(server.target)
        rpc = {r.name: r for r in all_rpcs()}["CaseService/GetJourney"]
        req = K.GetJourneyRequest(tenant=tenant)

        def code_of(key_id):
            return invoke(chan, rpc, req, key=ring.key(key_id))[0]

        def hup():
            server.proc.popen.send_signal(signal.SIGHUP)

        try:
            self.assertEqual(code_of("k1"), OK)
            self.assertEqual(code_of("k2"), UNAUTHENTICATED)

            with open(path, "a") as f:  # an added line
                f.write(ring.line("k2") + "\n")
            hup()
            H.wait_until(lambda: code_of("k2") == OK, 5.0, what="K2 accepted after SIGHUP")
            self.assertEqual(code_of("k1"), OK)

            ring.write(path, ["k2"])  # K1 removed
            hup()
            H.wait_until(lambda: code_of("k1") == UNAUTHENTICATED, 5.0,
                         what="K1 refused after SIGHUP")
            self.assertEqual(code_of("k2"), OK)

            failures = read_log(server).count("api_keys.reload_failed")
            with open(path, "w") as f:  # broken: the server keeps the keys it has
                f.write(ring.line("k2") + "\n" + ring.line("k1").replace("sha256:", "md5:") + "\n")
            hup()
            H.wait_until(lambda: read_log(server).count("api_keys.reload_failed") > failures,
                         5.0, what="api_keys.reload_failed in the log")
            self.assertIn("line 2", read_log(server).split("api_keys.reload_failed")[-1]
                          .splitlines()[0])
            self.assertTrue(server.proc.alive())
            self.assertEqual(code_of("k2"), OK)
            self.assertEqual(code_of("k1"), UNAUTHENTICATED)

            os.remove(path)  # missing: the same
            failures = read_log(server).count("api_keys.reload_failed")
            hup()
            H.wait_until(lambda: read_log(server).count("api_keys.reload_failed") > failures,
                         5.0, what="api_keys.reload_failed in the log")
            self.assertTrue(server.proc.alive())
            self.assertEqual(code_of("k2"), OK)

            ring.write(path, ["k1"])  # fixed again
            hup()
            H.wait_until(lambda: code_of("k2") == UNAUTHENTICATED, 5.0,
                         what="K2 refused after SIGHUP")
            self.assertEqual(code_of("k1"), OK)
        finally:
            chan.close()
            self.assertEqual(server.stop(), 0, server.proc.log_tail())


KEY_LINE = re.compile(r"OneStory API key \(all scopes\): (\S+)")


class StartupTest(unittest.TestCase):
    def journey(self, server, key, tenant):
        rpc = {r.name: r for r in all_rpcs()}["IdentityService/Resolve"]
        chan = H.raw_channel(server.target)
        try:
            return invoke(chan, rpc, I.ResolveRequest(
                tenant=tenant, identifier=H.ident(C.IDENTIFIER_TYPE_EMAIL, "e2e@example.com"),
                create_if_missing=True), key=key)[:2]
        finally:
            chan.close()

    def test_embedded_default_makes_one_key(self):
        data = H.new_tmp_dir("emb-")
        server = H.Server(None, data_dir=data, keys=False)
        try:
            printed = KEY_LINE.findall(read_log(server))
            self.assertEqual(len(printed), 1, server.proc.log_tail())
            key = printed[0]
            self.assertRegex(key, r"^os_[A-Za-z0-9_-]{43}$")
            self.assertEqual(self.journey(server, key, "demo"), (OK, ""))
            code, details = self.journey(server, key, "other")
            self.assertEqual(code, DENIED, details)
            self.assertEqual(self.journey(server, "os_" + "x" * 43, "demo")[0], UNAUTHENTICATED)
            with open(os.path.join(data, "api_keys")) as f:
                keys_text = f.read()
            self.assertNotIn(key, keys_text)
            self.assertIn("sha256:" + hashlib.sha256(key.encode()).hexdigest(), keys_text)
            lines = [l for l in keys_text.splitlines() if l.strip() and not l.startswith("#")]
            self.assertEqual(len(lines), 1, keys_text)
            self.assertEqual(lines[0].split()[1], "demo")
            self.assertEqual(lines[0].split()[2], H.ALL_SCOPES)
            with open(os.path.join(data, "api_key")) as f:
                self.assertEqual(f.read().strip(), key)
            for name in ("api_keys", "api_key"):
                mode = stat.S_IMODE(os.stat(os.path.join(data, name)).st_mode)
                self.assertEqual(mode & 0o077, 0, "%s is mode %o" % (name, mode))
            # The key is not in the log lines (only the stdout banner).
            for line in read_log(server).splitlines():
                if key in line:
                    self.assertTrue("OneStory API key" in line or "Bearer " + key in line, line)
        finally:
            self.assertEqual(server.stop(), 0, server.proc.log_tail())

        again = H.Server(None, data_dir=data, keys=False)
        try:
            self.assertEqual(KEY_LINE.findall(read_log(again)), [key])
            self.assertEqual(self.journey(again, key, "demo"), (OK, ""))
            with open(os.path.join(data, "api_keys")) as f:
                self.assertEqual(f.read(), keys_text)
        finally:
            self.assertEqual(again.stop(), 0, again.proc.log_tail())

    def test_embedded_with_a_key_file_makes_none(self):
        data = H.new_tmp_dir("emb-")
        server = H.Server(None, data_dir=data)  # the harness' key file
        try:
            self.assertEqual(KEY_LINE.findall(read_log(server)), [])
            self.assertFalse(os.path.exists(os.path.join(data, "api_key")))
            self.assertFalse(os.path.exists(os.path.join(data, "api_keys")))
            tenant = H.tenant()
            self.assertEqual(self.journey(server, H.key_for(tenant), tenant), (OK, ""))
        finally:
            self.assertEqual(server.stop(), 0, server.proc.log_tail())

    def expect_exit(self, server, *needles):
        try:
            code = server.proc.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("%s kept running:\n%s" % (server.name, server.proc.log_tail()))
        log = read_log(server)
        self.assertNotEqual(code, 0, log)
        for n in needles:
            self.assertIn(n, log)
        self.assertFalse(os.path.exists(server.port_file), "it listened")

    def test_external_redis_needs_a_key_file(self):
        e = env()
        for name in ("onestory-server", "onestory-timeline"):
            with self.subTest(binary=name):
                self.expect_exit(H.Server(e.redis.address, binary_name=name, keys=False,
                                          wait=False), "--api_keys_file")
        broken = os.path.join(H.new_tmp_dir("badkeys-"), "api_keys")
        with open(broken, "w") as f:
            f.write("# ok\nk1 acme timeline.read sha256:%s\nk2 acme timeline.read\n" % ("0" * 64))
        self.expect_exit(H.Server(e.redis.address, extra_args=("--api_keys_file=" + broken,),
                                  wait=False), "api_keys.invalid", "line 3")
        self.expect_exit(H.Server(e.redis.address, extra_args=(
            "--api_keys_file=" + broken + ".missing",), wait=False), "api_keys.invalid")


# --------------------------------------------------------------------------------------------


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(args), r.stdout.decode()))


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256), plus a
    client certificate of another CA. Returns {name: path}."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for ca in ("ca", "rogue-ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                "-subj", "/CN=OneStory e2e " + ca, cwd=d)
    exts = {
        "server": "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                  "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        "client": "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                  "extendedKeyUsage=clientAuth\n",
    }
    for name, ca in (("server", "ca"), ("client", "ca"), ("rogue-client", "rogue-ca")):
        kind = "server" if name == "server" else "client"
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(exts[kind])
        openssl("req", "-new", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + ("127.0.0.1" if kind == "server" else "e2e-" + name), cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext",
                cwd=d)
    return {n: os.path.join(d, n) for n in os.listdir(d)}


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


@unittest.skipIf(shutil.which("openssl") is None,
                 "TLS tests need the openssl CLI (Debian package openssl): not installed")
class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = make_pki(H.new_tmp_dir("pki-"))

    def setUp(self):
        self.env = env()
        self.tenant = H.tenant()
        self.rpc = {r.name: r for r in all_rpcs()}["CaseService/GetJourney"]

    def start(self, mutual):
        args = ["--tls_cert=" + self.pki["server.pem"], "--tls_key=" + self.pki["server.key"]]
        if mutual:
            args.append("--tls_client_ca=" + self.pki["ca.pem"])
        return wait_port(H.Server(self.env.redis.address, extra_args=args, wait=False))

    def creds(self, client=None):
        if client is None:
            return grpc.ssl_channel_credentials(root_certificates=read_bytes(self.pki["ca.pem"]))
        return grpc.ssl_channel_credentials(
            root_certificates=read_bytes(self.pki["ca.pem"]),
            private_key=read_bytes(self.pki[client + ".key"]),
            certificate_chain=read_bytes(self.pki[client + ".pem"]))

    def call(self, chan, key=True):
        try:
            return invoke(chan, self.rpc, K.GetJourneyRequest(tenant=self.tenant),
                          key=H.key_for(self.tenant) if key else None, timeout=3.0)[:2]
        finally:
            chan.close()

    def test_tls(self):
        server = self.start(mutual=False)
        try:
            self.assertIn(" tls=on ", read_log(server))
            self.assertEqual(self.call(grpc.secure_channel(server.target, self.creds())),
                             (OK, ""))
            code, details = self.call(grpc.secure_channel(server.target, self.creds()), key=False)
            self.assertEqual(code, UNAUTHENTICATED, details)
            code, details = self.call(H.raw_channel(server.target))
            self.assertNotEqual(code, OK, "a plaintext client was served over TLS")
            # A server certificate the client does not trust.
            rogue = grpc.ssl_channel_credentials(
                root_certificates=read_bytes(self.pki["rogue-ca.pem"]))
            code, details = self.call(grpc.secure_channel(server.target, rogue))
            self.assertNotEqual(code, OK, "the client trusted a certificate of another CA")
        finally:
            self.assertEqual(server.stop(), 0, server.proc.log_tail())

    def test_mutual_tls(self):
        server = self.start(mutual=True)
        try:
            self.assertIn(" tls=mutual ", read_log(server))
            self.assertEqual(self.call(grpc.secure_channel(server.target,
                                                           self.creds("client"))), (OK, ""))
            code, details = self.call(grpc.secure_channel(server.target, self.creds("client")),
                                      key=False)
            self.assertEqual(code, UNAUTHENTICATED, details)
            code, details = self.call(grpc.secure_channel(server.target, self.creds()))
            self.assertNotEqual(code, OK, "a client without a certificate was served")
            code, details = self.call(grpc.secure_channel(server.target,
                                                          self.creds("rogue-client")))
            self.assertNotEqual(code, OK, "a client certificate of another CA was accepted")
            code, details = self.call(H.raw_channel(server.target))
            self.assertNotEqual(code, OK, "a plaintext client was served")
        finally:
            self.assertEqual(server.stop(), 0, server.proc.log_tail())

    def test_a_key_that_is_not_the_certificates_is_named_at_start(self):
        cert = self.pki["server.pem"]
        for key, why in ((self.pki["client.key"], "does not belong to the certificate"),
                         (self.pki["ca.pem"], "the private key cannot be read")):
            with self.subTest(key=key):
                s = H.Server(self.env.redis.address,
                             extra_args=["--tls_cert=" + cert, "--tls_key=" + key], wait=False)
                try:
                    code = s.proc.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    s.stop()
                    self.fail("started with the key %s" % key)
                log = read_log(s)
                self.assertNotEqual(code, 0, log)
                self.assertIn("server.start_failed", log)
                for needle in (cert, key, why):
                    self.assertIn(needle, log)
                self.assertNotIn("cannot listen", log)
                self.assertFalse(os.path.exists(s.port_file), "it listened")

    def test_tls_flags_go_together(self):
        for args in (["--tls_cert=" + self.pki["server.pem"]],
                     ["--tls_key=" + self.pki["server.key"]],
                     ["--tls_client_ca=" + self.pki["ca.pem"]]):
            with self.subTest(args=args):
                s = H.Server(self.env.redis.address, extra_args=args, wait=False)
                try:
                    code = s.proc.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.fail("started with %s" % args)
                self.assertNotEqual(code, 0)
                self.assertIn("--tls_cert and --tls_key go together", read_log(s))


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
