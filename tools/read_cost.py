#!/usr/bin/python3
"""What the tenant-wide reads cost Redis: ListAlerts, ListAuditEntries and GetJourneyStats over
a tenant's 16 buckets (keys::kTenantBuckets), against the same page read from one unbucketed
copy of the same entries, measured on the same redis-server in the same run.

Starts a redis-server and onestory-server (the e2e harness, tests/e2e/harness.py) and fills one
tenant: --customers customers, each with 3 negative events (one NEGATIVE_STREAK alert each,
all but one in --open_every then acknowledged), two open cases in a journey of five stages (every
customer has one in the first stage; some cases moved on or resolved, which records completed
stays) and the audit entries of all those calls. Once the outboxes are applied it copies the
tenant's alert log, audit log and journey keys out of their buckets into one scratch key each.

Then per read it makes --calls sequential calls and prints, per call:
- Redis time: the usec INFO commandstats counts for the commands the server sent (FCALL_RO,
  ...; commands a function runs are inside its time), after CONFIG RESETSTAT, less what the
  idle server makes Redis do; the call's own audit entry (its XADD, and XTRIM when due) apart;
- Redis commands: those the server sent, and those its functions ran (MONITOR over one call);
- client latency p50 / p99 (Python grpcio, so a floor of a few hundred us is the client's).
Two baselines, through the same Python RESP loop on the same Redis: the same Lua function once
on the unbucketed copy ("one stream"), and the bare XREVRANGE of the page ("XREVRANGE"; for a
filtered read it is only the floor). Ratios are OneStory / baseline. --out writes the figures
as JSON. No figure is compared with anything: this is a measurement, not a test (--check only
says whether every read ran and Redis saw its commands).

    /usr/bin/python3 tools/read_cost.py [--build-dir build] [--customers 2000] [--calls 200]
                                        [--quick] [--check] [--out read_cost.json]
"""
import argparse
import concurrent.futures
import json
import os
import socket
import sys
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
ap.add_argument("--customers", type=int, default=2000)
ap.add_argument("--calls", type=int, default=200, help="calls per read measured")
ap.add_argument("--quick", action="store_true",
                help="a small run that only proves every step works (60 customers, 20 calls)")
ap.add_argument("--open_every", type=int, default=10,
                help="one alert in this many stays open (the others are acknowledged)")
ap.add_argument("--workers", type=int, default=8, help="concurrent calls while filling")
ap.add_argument("--out", help="write the figures as JSON to this file")
ap.add_argument("--check", action="store_true",
                help="exit 1 unless every read and baseline ran and Redis saw its commands "
                     "(no figure is compared with anything)")
args = ap.parse_args()
if args.quick:
    args.customers, args.calls = 60, 20
sys.argv = [sys.argv[0], "--build-dir", args.build_dir]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import harness as H  # noqa: E402
from bench import Resp  # noqa: E402
from onestory.v1 import alert_pb2 as A, alert_pb2_grpc  # noqa: E402
from onestory.v1 import case_pb2 as K, case_pb2_grpc  # noqa: E402
from onestory.v1 import privacy_pb2 as P, privacy_pb2_grpc  # noqa: E402
from onestory.v1 import common_pb2 as C, timeline_pb2 as TL  # noqa: E402

BUCKETS = 16  # keys::kTenantBuckets
STAGES = ["ordered", "shipped", "delivered", "return_requested", "refunded"]
LISTED = 64  # engagement::kListedPerBucket: what the server passes journey_stats
SCRIPT_COMMANDS = {"fcall", "fcall_ro", "eval", "evalsha", "eval_ro", "evalsha_ro"}
SCRATCH = "rc:{scratch}:"  # the unbucketed copies: one hash tag, not a tenant's


def agent():
    return C.Actor(type=C.Actor.TYPE_AGENT, id="agent-ann")


# --------------------------------------------------------------------------------------------
# Redis side


def commandstats(db):
    """{command: (calls, usec)} since the last CONFIG RESETSTAT."""
    out = {}
    for name, value in db.info("commandstats").items():
        if not name.startswith("cmdstat_"):
            continue
        f = dict(kv.split("=") for kv in value.split(","))
        out[name[len("cmdstat_"):]] = (int(f["calls"]), int(f["usec"]))
    return out


def monitor(port, action):
    """The commands Redis ran while action() ran: (sent, inside) as {name: count}, where sent
    are those a client sent (FCALL* as "fcall_ro <function>") and inside those a function ran."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"MONITOR\r\n")
    buf = b""
    while b"\r\n" not in buf:
        buf += sock.recv(65536)
    began = time.time()
    action()
    # Only what Redis ran while the call ran (and the audit entry written as it answers), not
    # the idle server's sweeps before or after: MONITOR lines carry Redis's own clock.
    window = (began - 0.001, time.time() + 0.02)
    time.sleep(0.05)
    sock.settimeout(0.1)
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            buf += data
    except socket.timeout:
        pass
    sock.close()
    sent, inside = {}, {}
    for line in buf.decode("utf-8", "replace").split("\r\n")[1:]:  # [0] is +OK
        if not line.startswith("+") or "]" not in line:
            continue
        if not window[0] <= float(line[1:line.index(" ")]) <= window[1]:
            continue
        source = line[line.index("[") + 1:line.index("]")].split(" ")[-1]
        words = [w for w in line[line.index("]") + 1:].split('"') if w.strip()]
        if not words:
            continue
        name = words[0].lower()
        if name in ("config", "info", "monitor"):  # ours
            continue
        if name in ("fcall", "fcall_ro") and len(words) > 1:
            name += " " + words[1].rsplit("_", 1)[0]  # without the library's version
        into = inside if source == "lua" else sent
        into[name] = into.get(name, 0) + 1
    return sent, inside


def library_version(db):
    """The content hash of the onestory_<version> Function library the server loaded: its
    functions are registered as "<function>_<version>" (libs/redis/function_library.h)."""
    for lib in db.call("FUNCTION", "LIST"):
        fields = dict(zip(lib[::2], lib[1::2]))
        name = fields[b"library_name"].decode()
        if name.startswith("onestory_"):
            return name[len("onestory_"):]
    raise RuntimeError("no onestory_<version> function library in Redis")


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


class Meter:
    """Measures a read: `calls` sequential calls, commandstats around them, MONITOR over one
    (the least disturbed of three)."""

    def __init__(self, db, port, calls, background, idle_sent):
        self.db, self.port, self.calls = db, port, calls
        self.background, self.idle_sent = background, idle_sent

    def run(self, call):
        time.sleep(0.1)  # the previous read's last audit entry is written
        # The fewest commands of three probes: a sweep of the idle server can fall into one.
        sent, inside = min((monitor(self.port, call) for _ in range(3)),
                           key=lambda p: sum(p[0].values()) + sum(p[1].values()))
        # What the idle server sends too (its sweeps) is not the read's.
        sent = {n: c for n, c in sent.items() if n not in self.idle_sent}
        sent_of = {}
        for n, c in sent.items():
            sent_of[n.split(" ")[0]] = sent_of.get(n.split(" ")[0], 0) + c
        self.db.call("CONFIG", "RESETSTAT")
        lat = []
        began = time.monotonic()
        for _ in range(self.calls):
            t = time.perf_counter()
            call()
            lat.append((time.perf_counter() - t) * 1e6)
        elapsed = time.monotonic() - began
        stats = commandstats(self.db)
        lat.sort()
        # Commands a function ran count in its own usec too: only the sent ones are summed (as
        # MONITOR saw them), less the idle server's share. A name both sent and run inside a
        # function: its usec is shared in proportion to the calls MONITOR saw.
        usec = {}
        for n, (c, u) in stats.items():
            if n in sent_of:
                share = sent_of[n] / (sent_of[n] + inside.get(n, 0))
                net = max(0.0, u - self.background.get(n, 0.0) * elapsed) * share
                usec[n] = net / self.calls
        return {
            "calls": self.calls,
            "redis_usec_per_call": sum(usec.values()),
            "redis_usec_per_call_by_command": usec,
            "sent_per_call": sent,
            "inside_per_call": inside,
            "sent_commands_per_call": sum(sent.values()),
            "inside_commands_per_call": sum(inside.values()),
            "ambiguous": sorted(set(sent_of) & set(inside) - SCRIPT_COMMANDS),
            "p50_us": percentile(lat, 0.5),
            "p99_us": percentile(lat, 0.99),
        }


def background(db, port, seconds=2.0):
    """What the idle server makes Redis do (sweeps, recovery): usec per second per command,
    and the commands it sends (as monitor() names them)."""
    db.call("CONFIG", "RESETSTAT")
    sent, _ = monitor(port, lambda: time.sleep(seconds))
    usec = {n: u / seconds for n, (c, u) in commandstats(db).items() if n not in ("config",)}
    return usec, set(sent)


def pipeline(db, commands):
    """Sends every command, then reads every reply (bench.Resp's buffer and reader)."""
    out = []
    for a in commands:
        parts = [b"*%d\r\n" % len(a)]
        for x in a:
            x = x if isinstance(x, bytes) else str(x).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(x), x))
        out.append(b"".join(parts))
    for i in range(0, len(out), 500):
        chunk = out[i:i + 500]
        db.sock.sendall(b"".join(chunk))
        for _ in chunk:
            db._read()


def merged_entries(db, keys):
    """Every entry of the bucket streams `keys`, oldest first in the merged order (ms of the
    stream id, bucket, stream id) of libs/timeline/bucket_cursor.h."""
    rows = []
    for b, key in enumerate(keys):
        for sid, fields in db.call("XRANGE", key, "-", "+") or []:
            ms, seq = (int(x) for x in sid.split(b"-"))
            rows.append(((ms, b, seq), fields))
    rows.sort(key=lambda r: r[0])
    return [f for _, f in rows]


def copy_stream(db, keys, dest):
    entries = merged_entries(db, keys)
    db.call("DEL", dest)
    pipeline(db, [["XADD", dest, "*"] + list(f) for f in entries])
    return len(entries)


# --------------------------------------------------------------------------------------------
# Filling the tenant


def fill(server, tenant, n, workers):
    timeline = server.timeline()
    cases = case_pb2_grpc.CaseServiceStub(server.channel)
    alerts = alert_pb2_grpc.AlertServiceStub(server.channel)
    cases.SetJourney(K.SetJourneyRequest(tenant=tenant, stages=STAGES), timeout=H.RPC_TIMEOUT)
    pool = concurrent.futures.ThreadPoolExecutor(workers)

    def customer(i):
        events = [H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, event_id="e%d-%d" % (i, j),
                          summary="unhappy", sentiment=-0.9) for j in range(3)]
        cid = timeline.Append(TL.AppendRequest(
            tenant=tenant, customer=H.by_ident(C.IDENTIFIER_TYPE_PHONE, "+1415555%04d" % i),
            events=events, create_if_missing=True), timeout=H.RPC_TIMEOUT).customer_id
        ref = H.by_id(cid)
        # Every customer has a case in the first stage (over 64 per bucket from 1,100
        # customers on: GetJourneyStats narrows to its median) and one in a later stage.
        cases.OpenCase(K.OpenCaseRequest(tenant=tenant, customer=ref, case_id="late-%d" % i,
                                         topic="order late", actor=agent(),
                                         channel=C.CHANNEL_VOICE), timeout=H.RPC_TIMEOUT)
        later = 1 + i % 4
        cases.OpenCase(K.OpenCaseRequest(tenant=tenant, customer=ref, case_id="ret-%d" % i,
                                         topic="return", stage=STAGES[later], actor=agent(),
                                         channel=C.CHANNEL_VOICE), timeout=H.RPC_TIMEOUT)
        if i % 3 == 0 and later + 1 < len(STAGES):  # a completed stay in STAGES[later]
            cases.UpdateCase(K.UpdateCaseRequest(
                tenant=tenant, customer=ref, case_id="ret-%d" % i, actor=agent(),
                channel=C.CHANNEL_VOICE, stage=STAGES[later + 1]), timeout=H.RPC_TIMEOUT)
        if i % 5 == 0:  # a completed stay in the first stage
            cases.ResolveCase(K.ResolveCaseRequest(
                tenant=tenant, customer=ref, case_id="late-%d" % i, actor=agent(),
                channel=C.CHANNEL_VOICE, resolution="arrived"), timeout=H.RPC_TIMEOUT)
        return cid

    ids = list(pool.map(customer, range(n)))
    index = {cid: i for i, cid in enumerate(ids)}

    def all_alerts():
        out, token = [], ""
        while True:
            r = alerts.ListAlerts(A.ListAlertsRequest(tenant=tenant, page_size=500,
                                                      page_token=token,
                                                      include_acknowledged=True),
                                  timeout=H.RPC_TIMEOUT)
            out.extend(r.alerts)
            token = r.next_page_token
            if not token:
                return out

    listed = H.wait_until(lambda: (lambda a: a if len(a) >= n else None)(all_alerts()), 120,
                          interval=0.5, what="%d alerts listed" % n)
    # All but one customer in --open_every acknowledged: what "open only" matches.
    acked = [a.alert_id for a in listed if index[a.customer_id] % args.open_every != 0]
    list(pool.map(lambda alert_id: alerts.AckAlert(A.AckAlertRequest(
        tenant=tenant, alert_id=alert_id, actor=agent()), timeout=H.RPC_TIMEOUT), acked))
    open_expected = 2 * n - len(range(0, n, 5))

    def drained():
        s = cases.GetJourneyStats(K.GetJourneyStatsRequest(tenant=tenant),
                                  timeout=H.RPC_TIMEOUT)
        return sum(st.open_cases for st in s.stages) == open_expected

    H.wait_until(drained, 120, interval=0.5, what="%d open cases counted" % open_expected)
    pool.shutdown()
    return ids, len(listed), len(acked)


# --------------------------------------------------------------------------------------------
# Reads


def walk(first, nxt):
    """The request of the last page reached by following tokens, and how many pages."""
    req, pages = first, 1
    while True:
        token = nxt(req)
        if not token:
            return req, pages
        req, pages = type(req)(), pages + 1
        req.CopyFrom(first)
        req.page_token = token


def fn_walk(db, function, keys, argv_of):
    """The same for a function's pages on the scratch copy: the start argument of its last
    page, and how many pages."""
    start, pages = "+", 1
    while True:
        more, last, _ = db.call("FCALL_RO", function, len(keys), *keys, *argv_of(start))
        if not more:
            return start, pages
        start, pages = "(" + last.decode(), pages + 1


def raw_last_start(db, key, page):
    """XREVRANGE's start of the last page of `page` entries, newest first."""
    n = db.call("XLEN", key)
    k = n - page * ((n - 1) // page)  # entries on the last page
    if n <= page:
        return "+"
    first_after = db.call("XRANGE", key, "-", "+", "COUNT", k + 1)[-1][0].decode()
    return "(" + first_after


def main():
    redis = H.Redis()
    server = H.Server(redis.address, extra_args=("--alert_negative_streak=3",))
    db = Resp(redis.port)
    tenant = H.tenant()
    t0 = time.monotonic()
    ids, n_alerts, n_acked = fill(server, tenant, args.customers, args.workers)
    filled_s = time.monotonic() - t0
    alerts = alert_pb2_grpc.AlertServiceStub(server.channel)
    audit = privacy_pb2_grpc.AuditServiceStub(server.channel)
    cases = case_pb2_grpc.CaseServiceStub(server.channel)
    T = H.RPC_TIMEOUT

    # The unbucketed copies.
    def bucket_keys(area, suffix):
        return ["os:{%s:%s:%d}:%s" % (tenant, area, b, suffix) for b in range(BUCKETS)]

    alog, aopen, aack = SCRATCH + "alog", SCRATCH + "aopen", SCRATCH + "aack"
    copy_stream(db, bucket_keys("a", "log"), alog)
    db.call("ZUNIONSTORE", aopen, BUCKETS, *bucket_keys("a", "open"))
    acks = []
    for key in bucket_keys("a", "ack"):
        acks.extend(db.call("HGETALL", key) or [])
    if acks:
        db.call("HSET", aack, *acks)
    audit_log = SCRATCH + "audit"
    n_audit = copy_stream(db, bucket_keys("au", "log"), audit_log)
    jn, jopen, jstays = SCRATCH + "jn", SCRATCH + "jopen", SCRATCH + "jstays"
    db.call("ZUNIONSTORE", jopen, BUCKETS, *bucket_keys("j", "open"))
    counters, stays = {}, {s: [] for s in STAGES}
    for key in bucket_keys("j", "n"):
        f = db.call("HGETALL", key) or []
        for name, v in zip(f[::2], f[1::2]):
            counters[name] = counters.get(name, 0) + int(v)
    for key in bucket_keys("j", "stays"):
        for s in STAGES:
            kept = min(int(db.call("HGET", key, s + ":n") or 0), 1000)
            if kept:
                stays[s].extend(v for v in db.call("HMGET", key, *["%s:%d" % (s, i)
                                                                  for i in range(kept)]) if v)
    for name, v in counters.items():
        db.call("HSET", jn, name, v)
    for s, values in stays.items():
        values = values[:1000]  # one ring keeps the latest 1,000
        if values:
            fields = []
            for i, v in enumerate(values):
                fields += ["%s:%d" % (s, i), v]
            db.call("HSET", jstays, *fields, s + ":n", len(values))

    time.sleep(1.0)  # the last outbox sweeps
    idle_usec, idle_sent = background(db, redis.port)
    meter = Meter(db, redis.port, args.calls, idle_usec, idle_sent)
    rows = []

    version = library_version(db)

    def fcall(function, keys, argv):
        return lambda: db.call("FCALL_RO", function + "_" + version, len(keys), *keys, *argv)

    def alert_args(all_, start):
        # One stream read by one call, as before buckets: batches of 200, 2,000 examined
        # (libs/engagement/records.h kAlertListBatch, kAlertListMaxExamined).
        return [1 if all_ else 0, 50, start, 200, 2000]

    def add(name, onestory, one_stream, raw, note=""):
        row = {"read": name, "onestory": meter.run(onestory), "note": note}
        row["one_stream"] = meter.run(one_stream) if one_stream else None
        row["xrevrange"] = meter.run(raw) if raw else None
        rows.append(row)
        print("measured %s" % name, flush=True)

    akeys = [alog, aopen, aack]
    for all_ in (False, True):
        label = "all" if all_ else "open only"
        first = A.ListAlertsRequest(tenant=tenant, page_size=50, include_acknowledged=all_)
        add("ListAlerts 50, %s, first page" % label,
            lambda r=first: alerts.ListAlerts(r, timeout=T),
            fcall("engagement_alert_list", akeys, alert_args(all_, "+")),
            lambda: db.call("XREVRANGE", alog, "+", "-", "COUNT", 50))
        last, pages = walk(first, lambda r: alerts.ListAlerts(r, timeout=T).next_page_token)
        start, fn_pages = fn_walk(db, "engagement_alert_list_" + version, akeys,
                                  lambda s, a=all_: alert_args(a, s))
        raw_start = raw_last_start(db, alog, 50)
        add("ListAlerts 50, %s, last page" % label,
            lambda r=last: alerts.ListAlerts(r, timeout=T),
            fcall("engagement_alert_list", akeys, alert_args(all_, start)),
            lambda s=raw_start: db.call("XREVRANGE", alog, s, "-", "COUNT", 50),
            "page %d of %d (one stream: page %d)" % (pages, pages, fn_pages))

    add("ListAuditEntries 100, all",
        lambda: audit.ListAuditEntries(P.ListAuditEntriesRequest(tenant=tenant, page_size=100),
                                       timeout=T),
        fcall("audit_list", [audit_log], ["+", 100, ""]),
        lambda: db.call("XREVRANGE", audit_log, "+", "-", "COUNT", 100))
    who = ids[1 % len(ids)]
    add("ListAuditEntries 100, one customer",
        lambda: audit.ListAuditEntries(P.ListAuditEntriesRequest(
            tenant=tenant, customer_id=who, page_size=100), timeout=T),
        fcall("audit_list", [audit_log], ["+", 100, who]),
        lambda: db.call("XREVRANGE", audit_log, "+", "-", "COUNT", 100),
        "XREVRANGE: the unfiltered page, a floor only")

    def journey_one_key():
        rows_ = db.call("FCALL_RO", "engagement_journey_stats_" + version, 3, jn, jopen, jstays,
                        LISTED, *STAGES)
        for s, row in zip(STAGES, rows_):
            if int(row[0]) > LISTED:  # the median of a stage not listed: its rank, O(log n)
                before = db.call("ZLEXCOUNT", jopen, "-", "(%s|" % s)
                middle = before + int(row[0]) // 2
                db.call("ZRANGE", jopen, middle, middle)

    add("GetJourneyStats, %d stages" % len(STAGES),
        lambda: cases.GetJourneyStats(K.GetJourneyStatsRequest(tenant=tenant), timeout=T),
        journey_one_key, None,
        "one stream: journey_stats on one unbucketed copy + ZLEXCOUNT, ZRANGE per stage over %d"
        % LISTED)

    setup = {"customers": args.customers, "alerts": n_alerts, "acknowledged": n_acked,
                  "audit_entries_copied": n_audit, "calls_per_read": args.calls,
                  "fill_seconds": round(filled_s, 1),
                  "background_usec_per_s": round(sum(idle_usec.values()), 1),
                  "background_commands": sorted(idle_sent)}
    report(rows, setup)
    return check(rows) if args.check else 0


def check(rows):
    """What --check asks: seven reads, each measured on both sides with commands seen."""
    bad = []
    for r in rows:
        for side in ("onestory", "one_stream", "xrevrange"):
            m = r[side]
            if m is None:
                continue
            if m["sent_commands_per_call"] <= 0 or m["redis_usec_per_call"] <= 0 or \
                    m["p50_us"] <= 0:
                bad.append("%s (%s)" % (r["read"], side))
    if len(rows) != 7 or bad:
        print("read_cost check: %d reads, no Redis commands or time seen for: %s" %
              (len(rows), ", ".join(bad) or "-"))
        return 1
    print("read_cost check: %d reads measured, each with its baselines" % len(rows))
    return 0


def report(rows, setup):
    print()
    print("Tenant: %(customers)d customers, %(alerts)d alerts (%(acknowledged)d acknowledged), "
          "%(audit_entries_copied)d audit entries when copied (the reads add one each); "
          "%(calls_per_read)d sequential calls per read; idle server: %(background_usec_per_s)s "
          "Redis usec/s (subtracted; it sent: %(background_commands)s)." %
          dict(setup, background_commands=", ".join(setup["background_commands"]) or "none"))
    print("Redis us = commandstats usec per call of the commands sent (functions include the "
          "commands they run), without\nthe call's audit entry (its XADD and XTRIM: audit "
          "us); cmds = commands sent + commands run inside functions,\nper call; lat = client "
          "p50/p99 in us; x = OneStory / baseline.\n")
    head = "%-36s %8s %6s %9s %12s | %7s %6s %11s | %9s %6s %6s"
    print(head % ("read", "Redis us", "audit", "cmds", "lat p50/p99", "1 stream", "x",
                  "lat p50/p99", "XREVRANGE", "x", "lat x"))
    for r in rows:
        o, s, x = r["onestory"], r["one_stream"], r["xrevrange"]
        by_command = o["redis_usec_per_call_by_command"]
        audit_us = by_command.get("xadd", 0.0) + by_command.get("xtrim", 0.0)
        read_us = o["redis_usec_per_call"] - audit_us
        r["onestory_read_usec_per_call"] = read_us

        def ratio(a, b):
            return "%.3g" % (a / b) if b else "-"

        def cell(b):
            if not b:
                return ("-", "-", "-")
            return ("%.0f" % b["redis_usec_per_call"], ratio(read_us, b["redis_usec_per_call"]),
                    "%.0f/%.0f" % (b["p50_us"], b["p99_us"]))

        sc, xc = cell(s), cell(x)
        print(head % (r["read"], "%.0f" % read_us, "%.0f" % audit_us,
                      "%d+%d" % (o["sent_commands_per_call"], o["inside_commands_per_call"]),
                      "%.0f/%.0f" % (o["p50_us"], o["p99_us"]), sc[0], sc[1], sc[2],
                      xc[0], xc[1], ratio(o["p50_us"], x["p50_us"]) if x else "-"))
    print("\nPer call, sent by onestory-server / run inside its functions:")
    for r in rows:
        o = r["onestory"]
        print("  %s: %s / %s%s" % (r["read"], fmt(o["sent_per_call"]),
                                   fmt(o["inside_per_call"]),
                                   "  (%s)" % r["note"] if r["note"] else ""))
        if r["one_stream"]:
            print("    one stream: %s / %s" % (fmt(r["one_stream"]["sent_per_call"]),
                                              fmt(r["one_stream"]["inside_per_call"])))
        if o["ambiguous"]:
            print("    (sent and also run inside functions, usec shared by calls: %s)" %
                  ", ".join(o["ambiguous"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"setup": setup, "reads": rows}, f, indent=1)
        print("\nwrote %s" % args.out)


def fmt(counts):
    return ", ".join("%s %d" % (k, v) for k, v in sorted(counts.items())) or "none"


try:
    status = main()
finally:
    H.stop_all()
    H.remove_tmp()
sys.exit(status)
