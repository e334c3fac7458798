#!/usr/bin/python3
"""OneStory end-to-end tests: erased and redacted text leaves the disk, through the real
onestory-server binary on its embedded default (its own redis-server, append-only file under
--data_dir).

Redis logs every write in its append-only file (appendonlydir/), so text deleted from memory
stays on disk until the file is rewritten from memory. After EraseCustomer and RedactEvent the
server schedules that rewrite (BGREWRITEAOF, at most one per --aof_rewrite_interval_s). Each test
appends events with a distinctive text, waits until the text is in a file of the data directory,
erases or redacts, and waits (bounded) until no file of the data directory holds it. MEASURES the
time from the call's answer to the text's absence and prints it ("erase-disk: ...").

Run by ctest as e2e_erase_disk; alone:
  /usr/bin/python3 tests/e2e/erase_disk_test.py --build-dir build [-v]
"""

import os
import random
import string
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402
from harness import C, E2ECase, identity_pb2  # noqa: E402

from onestory.v1 import privacy_pb2, privacy_pb2_grpc  # noqa: E402

T = H.RPC_TIMEOUT
# How long the text may take to leave the disk: the rewrite interval of the test plus the
# rewrite itself (milliseconds for these few keys) and Redis's removal of the old files.
BOUND_S = 20.0


def report(text):
    sys.stdout.write("erase-disk: %s\n" % text)
    sys.stdout.flush()


def distinctive():
    # Letters only: no digit run a card mask could touch, nothing Redis could share with keys.
    return "".join(random.choice(string.ascii_lowercase) for _ in range(32))


def files_holding(data_dir, text):
    """Paths (relative to data_dir) of the regular files under data_dir that contain text."""
    needle = text.encode()
    out = []
    for root, _, names in os.walk(data_dir):
        for name in names:
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                continue  # redis.sock
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue  # removed while we walked
            if needle in data:
                out.append(os.path.relpath(path, data_dir))
    return out


class EraseLeavesTheDiskTest(E2ECase):

    def start(self, *extra):
        data_dir = H.new_tmp_dir("data-")
        server = H.Server(data_dir=data_dir, extra_args=list(extra))
        self.addCleanup(server.stop)
        return server, data_dir

    def customer_with_text(self, server, text):
        """A new customer with one event whose summary and body hold `text`; returns
        (customer id, event id) once the text is in a file of the data directory."""
        customer = server.identity().Resolve(identity_pb2.ResolveRequest(
            tenant=self.tenant, identifier=H.ident(C.IDENTIFIER_TYPE_APP_USER_ID,
                                                   H.unique("user-")),
            create_if_missing=True), timeout=T).customer_id
        event_id = H.unique("ev-")
        self.append(server, H.by_id(customer), [H.event(
            C.CHANNEL_WEB_CHAT, C.EVENT_KIND_MESSAGE, event_id=event_id,
            summary="said " + text, body="the customer wrote: " + text)])
        return customer, event_id

    def wait_on_disk(self, data_dir, text):
        # appendfsync everysec: written to the file at once, synced within a second.
        H.wait_until(lambda: files_holding(data_dir, text), 10.0,
                     what="the text in a file of the data directory")

    def wait_gone(self, data_dir, text, label):
        """Seconds until no file of data_dir holds `text`; fails after BOUND_S."""
        started = time.monotonic()
        deadline = started + BOUND_S
        while True:
            holding = files_holding(data_dir, text)
            if not holding:
                took = time.monotonic() - started
                report("%s: text gone from every file of the data directory %.3f s after "
                       "the call's answer" % (label, took))
                return took
            if time.monotonic() > deadline:
                self.fail("%s: after %.0f s the text is still in %s" % (label, BOUND_S,
                                                                       holding))
            time.sleep(0.02)

    def erase(self, server, customer):
        return privacy_pb2_grpc.PrivacyServiceStub(server.channel).EraseCustomer(
            privacy_pb2.EraseCustomerRequest(tenant=self.tenant, customer=H.by_id(customer),
                                             reason="ticket-1"), timeout=T)

    def redact(self, server, customer, event_id):
        return privacy_pb2_grpc.PrivacyServiceStub(server.channel).RedactEvent(
            privacy_pb2.RedactEventRequest(tenant=self.tenant, customer=H.by_id(customer),
                                           event_id=event_id, summary="[redacted]",
                                           reason="ticket-2"), timeout=T)

    def test_erase_with_the_default_interval(self):
        server, data_dir = self.start()
        text = distinctive()
        customer, _ = self.customer_with_text(server, text)
        self.wait_on_disk(data_dir, text)
        self.erase(server, customer)
        self.wait_gone(data_dir, text, "erase, default --aof_rewrite_interval_s (60), "
                       "first rewrite since start")

    def test_redact_right_after_an_erase_waits_for_the_interval(self):
        server, data_dir = self.start("--aof_rewrite_interval_s=3")
        erased = distinctive()
        erased_customer, _ = self.customer_with_text(server, erased)
        self.wait_on_disk(data_dir, erased)
        self.erase(server, erased_customer)
        self.wait_gone(data_dir, erased, "erase (interval 3 s)")

        # Written after that rewrite, so in the new append-only file as written (a rewritten
        # file may compress text, and would hide it from this search).
        redacted, kept = distinctive(), distinctive()
        redacted_customer, event_id = self.customer_with_text(server, redacted)
        kept_customer, _ = self.customer_with_text(server, kept)
        self.wait_on_disk(data_dir, redacted)
        self.wait_on_disk(data_dir, kept)
        stored = self.redact(server, redacted_customer, event_id).event
        self.assertNotIn(redacted, stored.summary + stored.body)
        # The redaction's rewrite waits for the end of the interval the erase's started.
        self.assertTrue(files_holding(data_dir, redacted), "rewritten before the interval")
        took = self.wait_gone(data_dir, redacted, "redact right after an erase (interval 3 s)")
        self.assertGreater(took, 0.5)
        # Only removed text leaves: the kept customer's event is still served.
        events = server.timeline().List(H.timeline_pb2.ListRequest(
            tenant=self.tenant, customer=H.by_id(kept_customer)), timeout=T).events
        self.assertIn(kept, events[0].summary)


if __name__ == "__main__":
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
