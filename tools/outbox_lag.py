#!/usr/bin/python3
"""How long alerts lag behind the write that raised them (libs/outbox/README.md).

Starts a redis-server and onestory-server (the e2e harness, tests/e2e/harness.py), opens one
WatchAlerts stream, then appends 3 negative events to each of --customers new customers, one
Append at a time: each raises NEGATIVE_STREAK through the customer's outbox. Prints the time from
each Append's answer to its alert's arrival on the stream (p50, p90, p99, max).

    /usr/bin/python3 tools/outbox_lag.py [--build-dir build] [--customers 300]
"""
import argparse
import os
import queue
import sys
import threading
import time

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
ap.add_argument("--customers", type=int, default=300)
args = ap.parse_args()
sys.argv = [sys.argv[0], "--build-dir", args.build_dir]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness as H  # noqa: E402
from onestory.v1 import alert_pb2 as A, alert_pb2_grpc  # noqa: E402
from onestory.v1 import common_pb2 as C, timeline_pb2 as TL  # noqa: E402


def main():
    redis = H.Redis()
    server = H.Server(redis.address, extra_args=("--alert_negative_streak=3",))
    tenant = H.tenant()
    arrivals = queue.Queue()
    stream = alert_pb2_grpc.AlertServiceStub(server.channel).WatchAlerts(
        A.WatchAlertsRequest(tenant=tenant, from_start=True))

    def read():
        try:
            for alert in stream:
                arrivals.put((time.monotonic(), alert.customer_id))
        except Exception:  # the stream is cancelled at the end
            pass

    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.3)
    lags = []
    for i in range(args.customers):
        ref = H.by_ident(C.IDENTIFIER_TYPE_PHONE, "+1415555%04d" % i)
        events = [H.event(C.CHANNEL_SMS, C.EVENT_KIND_MESSAGE, event_id="e%d-%d" % (i, j),
                          summary="unhappy", sentiment=-0.9) for j in range(3)]
        answer = server.timeline().Append(TL.AppendRequest(
            tenant=tenant, customer=ref, events=events, create_if_missing=True), timeout=5)
        answered = time.monotonic()
        arrived, customer = arrivals.get(timeout=10)
        if customer != answer.customer_id:
            raise RuntimeError("alert of %s, expected %s" % (customer, answer.customer_id))
        lags.append((arrived - answered) * 1000)
    stream.cancel()
    lags.sort()
    n = len(lags)
    print("alert on WatchAlerts after its Append answered, %d appends: p50 %.2f ms, p90 %.2f ms, "
          "p99 %.2f ms, max %.2f ms" % (n, lags[n // 2], lags[int(n * 0.9)], lags[int(n * 0.99)],
                                        lags[-1]))


try:
    main()
finally:
    H.stop_all()
    H.remove_tmp()
