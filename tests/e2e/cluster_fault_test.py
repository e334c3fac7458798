#!/usr/bin/python3
"""OneStory on a Redis Cluster that fails under it, through the real onestory-server binary.
Each test starts its own local cluster (3 primaries, 3 replicas, node timeout 1 s:
harness.RedisCluster) and servers with --redis_cluster, and drives Appends from several
threads, one customer each, every customer's keys on some primary; each event has its own
event_id and a writer whose call fails sends the same event again until it is acknowledged.

- FailoverTest: CLUSTER FAILOVER of the primaries holding the customers' keys during the
  appends: no error reaches a caller, and every event is stored exactly once.
- MigrationTest: the slot of a customer's keys migrates to another primary during the appends
  (IMPORTING / MIGRATING, MIGRATE a few keys at a time, SETSLOT NODE: calls meet ASK and
  TRYAGAIN): no error reaches a caller, every event exactly once.
- KilledPrimaryTest: kill -9 of a primary during the appends; its replica takes over and the
  killed node comes back as its replica. With --redis_wait_replicas=1 every acknowledged event
  is there exactly once afterwards; without it, the test prints how many acknowledged events
  were lost (Redis replicates asynchronously) and asserts only that none is duplicated.
- OutboxKillTest: onestory-server killed after it answered a write and before it drained the
  customer's outbox (ONESTORY_FAILPOINT=outbox.drain): another instance's sweep applies the
  alert and the journey counters, each exactly once.

Figures are printed on stdout ("cluster-fault: ..."). Run by ctest as e2e_cluster_fault;
alone:
  /usr/bin/python3 tests/e2e/cluster_fault_test.py --build-dir build [-v] [-k pattern]
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import unittest  # noqa: E402

import harness as H  # noqa: E402
from harness import C, identity_pb2, timeline_pb2  # noqa: E402
from onestory.v1 import alert_pb2 as A, alert_pb2_grpc  # noqa: E402
from onestory.v1 import case_pb2 as K, case_pb2_grpc  # noqa: E402

import grpc  # noqa: E402

CUSTOMERS = 6
RETRY_FOR = 30.0  # seconds a writer keeps resending one event


def report(text):
    sys.stdout.write("cluster-fault: %s\n" % text)
    sys.stdout.flush()


class Writers:
    """One thread per customer appending events e-0, e-1, ... one at a time; a failed call is
    sent again (same event_id) until acknowledged. Records every error a caller met."""

    def __init__(self, server, tenant, refs):
        self.server, self.tenant, self.refs = server, tenant, refs
        self.acked = {i: [] for i in range(len(refs))}  # customer index -> acknowledged ids
        self.errors = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(len(refs))]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self, i):
        stub = self.server.timeline()
        n = 0
        while not self.stop.is_set():
            eid = "e-%d" % n
            e = H.event(C.CHANNEL_WEB, C.EVENT_KIND_PAGE_VIEW, event_id=eid,
                        summary="page %d" % n)
            give_up = time.monotonic() + RETRY_FOR
            while True:
                try:
                    stub.Append(timeline_pb2.AppendRequest(tenant=self.tenant,
                                                           customer=self.refs[i], events=[e]),
                                timeout=5)
                    break
                except grpc.RpcError as err:
                    with self.lock:
                        self.errors.append((i, eid, err.code(), err.details()))
                    if time.monotonic() > give_up:
                        return
                    time.sleep(0.05)
            with self.lock:
                self.acked[i].append(eid)
            n += 1

    def wait_for(self, per_customer, timeout=30):
        try:
            H.wait_until(lambda: all(len(v) >= per_customer for v in self.acked.values()),
                         timeout, what="%d acknowledged appends per customer" % per_customer)
        except TimeoutError as e:
            with self.lock:
                counts = {i: len(v) for i, v in self.acked.items()}
                last = self.errors[-5:]
            raise TimeoutError("%s; acknowledged per customer: %s; writers running: %d; "
                               "the last errors: %s" %
                               (e, counts, sum(t.is_alive() for t in self.threads), last))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=RETRY_FOR + 10)
        return sum(len(v) for v in self.acked.values())


class ClusterFaultCase(unittest.TestCase):

    def start_cluster(self, *server_args):
        self.cluster = H.RedisCluster()
        self.servers = [H.Server(redis_cluster=self.cluster.seeds, extra_args=server_args)]
        self.tenant = H.tenant()
        return self.servers[0]

    def tearDown(self):
        for s in getattr(self, "servers", []):
            s.proc.kill()
        if hasattr(self, "cluster"):
            for p in self.cluster.procs:
                p.kill()

    def customers(self, server, n=CUSTOMERS):
        """n new customers: (refs, ids)."""
        refs, ids = [], []
        for i in range(n):
            r = server.identity().Resolve(identity_pb2.ResolveRequest(
                tenant=self.tenant, identifier=H.ident(C.IDENTIFIER_TYPE_EMAIL,
                                                       H.unique("c%d-" % i) + "@example.com"),
                create_if_missing=True), timeout=10)
            refs.append(H.by_id(r.customer_id))
            ids.append(r.customer_id)
        return refs, ids

    def profile_key(self, customer_id):
        return "os:{%s:c:%s}:p" % (self.tenant, customer_id)

    def stored_ids(self, server, ref):
        out, token = [], ""
        while True:
            resp = server.timeline().List(timeline_pb2.ListRequest(
                tenant=self.tenant, customer=ref, page_size=500, page_token=token,
                order=timeline_pb2.ORDER_OLDEST_FIRST), timeout=10)
            out.extend(e.event_id for e in resp.events)
            token = resp.next_page_token
            if not token:
                return out

    def assertExactlyOnce(self, writers, server):
        lost = 0
        for i, ref in enumerate(writers.refs):
            stored = self.stored_ids(server, ref)
            self.assertEqual(len(stored), len(set(stored)), "customer %d: duplicates" % i)
            lost += len(set(writers.acked[i]) - set(stored))
        return lost


class FailoverTest(ClusterFaultCase):

    def test_planned_failovers_reach_no_caller(self):
        server = self.start_cluster()
        refs, ids = self.customers(server)
        primaries = sorted({self.cluster.primary_of(self.cluster.slot_of(self.profile_key(c)))
                            for c in ids})
        writers = Writers(server, self.tenant, refs).start()
        writers.wait_for(20)
        took = []
        for p in primaries:
            replica = self.cluster.replica_of(p)
            started = time.monotonic()
            self.cluster.failover(replica)
            took.append(time.monotonic() - started)
            base = min(len(v) for v in writers.acked.values())
            writers.wait_for(base + 10)
        total = writers.finish()
        report("failover: %d primaries failed over (%s s each), %d appends, %d errors to callers"
               % (len(primaries), ", ".join("%.2f" % t for t in took), total,
                  len(writers.errors)))
        self.assertEqual(writers.errors, [])
        self.assertEqual(self.assertExactlyOnce(writers, server), 0)


class MigrationTest(ClusterFaultCase):

    def test_slot_migrations_reach_no_caller(self):
        server = self.start_cluster()
        refs, ids = self.customers(server, 3)
        writers = Writers(server, self.tenant, refs).start()
        writers.wait_for(10)
        for c in ids:
            slot = self.cluster.slot_of(self.profile_key(c))
            src = self.cluster.primary_of(slot)
            dst = next(n["port"] for n in self.cluster.nodes()
                       if n["master"] and n["port"] != src)
            self.cluster.migrate_slot(slot, dst, pause=0.05, batch=1)
            self.assertEqual(self.cluster.primary_of(slot), dst)
            base = min(len(v) for v in writers.acked.values())
            writers.wait_for(base + 10)
        total = writers.finish()
        report("migration: 3 slots moved, %d appends, %d errors to callers" %
               (total, len(writers.errors)))
        self.assertEqual(writers.errors, [])
        self.assertEqual(self.assertExactlyOnce(writers, server), 0)


class KilledPrimaryTest(ClusterFaultCase):

    def kill_during_appends(self, *server_args):
        server = self.start_cluster(*server_args)
        refs, ids = self.customers(server)
        victim = self.cluster.primary_of(self.cluster.slot_of(self.profile_key(ids[0])))
        replica = self.cluster.replica_of(victim)
        writers = Writers(server, self.tenant, refs).start()
        writers.wait_for(20)
        killed = time.monotonic()
        self.cluster.kill(victim)
        H.wait_until(lambda: any(n["master"] and n["port"] == replica and not n["failed"]
                                 for n in self.cluster.nodes()), 20, interval=0.05,
                     what="the replica to take over")
        took = time.monotonic() - killed
        self.cluster.restart(victim)  # back as the new primary's replica
        base = min(len(v) for v in writers.acked.values())
        writers.wait_for(base + 10)
        total = writers.finish()
        lost = self.assertExactlyOnce(writers, server)
        return total, lost, took, writers

    def test_wait_replicas_loses_no_acknowledged_event(self):
        total, lost, took, writers = self.kill_during_appends("--redis_wait_replicas=1")
        report("kill -9 with --redis_wait_replicas=1: replica took over in %.2f s, %d appends "
               "acknowledged, %d lost, %d failed calls retried" %
               (took, total, lost, len(writers.errors)))
        self.assertEqual(lost, 0)

    def test_without_wait_replicas_the_loss_is_measured(self):
        total, lost, took, writers = self.kill_during_appends()
        report("kill -9 without --redis_wait_replicas: replica took over in %.2f s, %d appends "
               "acknowledged, %d lost (asynchronous replication), %d failed calls retried" %
               (took, total, lost, len(writers.errors)))


class OutboxKillTest(ClusterFaultCase):

    def test_effects_of_a_write_answered_before_a_crash_apply_once(self):
        sweeper = self.start_cluster("--outbox_sweep_interval_ms=300")
        refs, ids = self.customers(sweeper, 1)
        ref, cid = refs[0], ids[0]
        cases = case_pb2_grpc.CaseServiceStub(sweeper.channel)
        cases.SetJourney(K.SetJourneyRequest(tenant=self.tenant, stages=["new", "shipped"]),
                         timeout=10)
        agent = C.Actor(type=C.Actor.TYPE_AGENT, id="agent-1")

        def negative(server, i):
            e = H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, event_id="neg-%d" % i,
                        summary="message %d" % i, sentiment=-0.5)
            return server.timeline().Append(timeline_pb2.AppendRequest(
                tenant=self.tenant, customer=ref, events=[e]), timeout=10)

        negative(sweeper, 0)
        negative(sweeper, 1)
        H.wait_until(lambda: self.pending_marks() == 0, 10, what="the first drains")
        # The doomed instance answers, marks the outbox and dies 0.5 s later, draining nothing.
        doomed = H.Server(redis_cluster=self.cluster.seeds,
                          env_extra={"ONESTORY_FAILPOINT": "outbox.drain"})
        self.servers.append(doomed)
        answered = []
        open_case = K.OpenCaseRequest(tenant=self.tenant, customer=ref, case_id="case-1",
                                      topic="order", stage="new", actor=agent,
                                      channel=C.CHANNEL_VOICE)
        for name, call in (("OpenCase", lambda s: case_pb2_grpc.CaseServiceStub(
                               s.channel).OpenCase(open_case, timeout=10)),
                           ("Append", lambda s: negative(s, 2))):
            try:
                call(doomed)
                answered.append(name)
            except grpc.RpcError as e:
                # Died before this call: sent again to the live instance (same ids).
                self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE, e.details())
                call(sweeper)
        H.wait_until(lambda: not doomed.proc.alive(), 10, what="the failpoint's exit")
        self.assertIn("failpoint.hit step=outbox.drain", doomed.proc.log_tail(50))
        report("outbox kill: answered by the killed instance before it died: %s" %
               (", ".join(answered) or "none"))

        alerts = alert_pb2_grpc.AlertServiceStub(sweeper.channel)

        def streak_alerts():
            resp = alerts.ListAlerts(A.ListAlertsRequest(tenant=self.tenant, page_size=100,
                                                         include_acknowledged=True), timeout=10)
            return [a.alert_id for a in resp.alerts
                    if a.kind == A.ALERT_KIND_NEGATIVE_STREAK and a.customer_id == cid]

        started = time.monotonic()
        H.wait_until(lambda: streak_alerts() and self.pending_marks() == 0, 15,
                     what="the sweep to apply the killed instance's effects")
        report("outbox kill: effects applied %.2f s after the crash" %
               (time.monotonic() - started))
        time.sleep(1.0)  # more sweeps and drains: nothing applies twice
        self.assertEqual(len(streak_alerts()), 1)
        stats = {s.stage: s for s in cases.GetJourneyStats(
            K.GetJourneyStatsRequest(tenant=self.tenant), timeout=10).stages}
        self.assertEqual((stats["new"].open_cases, stats["new"].entered), (1, 1))

    def pending_marks(self):
        n = 0
        for node in self.cluster.nodes():
            if node["master"] and not node["failed"]:
                for b in range(16):
                    key = "os:{ob:%d}:pending" % b
                    if self.cluster.primary_of(self.cluster.slot_of(key)) == node["port"]:
                        n += int(self.cluster.cli(node["port"], "ZCARD", key) or 0)
        return n


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
