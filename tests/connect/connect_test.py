#!/usr/bin/python3
"""OneStory called by the Node.js clients an integrator would pick: @connectrpc/connect-node on
the HTTP listener, unchanged (clients generated from proto/ by protoc-gen-es with Debian's
protoc; the Connect protocol with JSON over HTTP/1.1), and @grpc/grpc-js on the gRPC port (the
protos loaded at run time by @grpc/proto-loader). Each client resolves a customer, appends an
event and reads the screen pop, then makes a call the server refuses; this test checks what it
saw and reads the same customer back through gRPC.

Run through ctest (e2e_connect) or alone, after bash tools/install-connect-tools.sh:
  /usr/bin/python3 tests/connect/connect_test.py --build-dir build
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))


def _tools_dir():
    """--connect-tools DIR (removed from argv before the harness parses it)."""
    if "--connect-tools" in sys.argv:
        i = sys.argv.index("--connect-tools")
        value = sys.argv[i + 1]
        del sys.argv[i:i + 2]
        return value
    return None


TOOLS = _tools_dir()

import harness as H  # noqa: E402
from harness import E2ECase, context_pb2  # noqa: E402

SKIP = 77


class NodeClientsTest(E2ECase):

    @classmethod
    def setUpClass(cls):
        cls.tools = TOOLS or os.path.join(H.BUILD_DIR, "connect-tools")
        # Beside the packages: the generated modules import @bufbuild/protobuf from node_modules.
        cls.gen = tempfile.mkdtemp(prefix="gen-", dir=cls.tools)
        proto = os.path.join(HERE, "..", "..", "proto")
        files = sorted("onestory/v1/" + f for f in os.listdir(os.path.join(proto, "onestory", "v1"))
                       if f.endswith(".proto"))
        subprocess.run(["protoc", "-I", proto,
                        "--plugin=protoc-gen-es=" + os.path.join(cls.tools, "node_modules", ".bin",
                                                                 "protoc-gen-es"),
                        "--es_out=" + cls.gen, "--es_opt=target=js,import_extension=js"] + files,
                       check=True)
        port_file = os.path.join(H.new_tmp_dir("connect-"), "http_port")
        cls.server = H.Server(extra_args=("--http_listen=127.0.0.1:0",
                                          "--http_port_file=" + port_file),
                              **H.env().redis.server_kwargs())
        with open(port_file) as f:
            cls.base_url = "http://127.0.0.1:%d" % int(f.read())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.gen, ignore_errors=True)

    def test_connect_node_calls_the_json_endpoints_unchanged(self):
        out = subprocess.run(
            ["node", os.path.join(HERE, "connect_client.mjs"), "--tools", self.tools,
             "--gen", self.gen, "--base-url", self.base_url, "--tenant", self.tenant,
             "--key", H.key_for(self.tenant)],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertTrue(seen["customerId"].startswith("cus_"), seen)
        self.assertTrue(seen["created"], seen)
        self.assertEqual(seen["recentEventIds"], ["connect-1"], seen)
        self.assertEqual(seen["summary"], "sent through connect-node")
        self.assertTrue(seen["appendedCursor"])
        # The refusal: INVALID_ARGUMENT naming the field, as ConnectError's code and message.
        self.assertEqual(seen["refused"]["code"], "InvalidArgument", seen)
        self.assertIn("channel", seen["refused"]["message"])
        # The same customer, through gRPC.
        ctx = self.server.context().GetContext(context_pb2.GetContextRequest(
            tenant=self.tenant, customer=H.by_id(seen["customerId"])), timeout=H.RPC_TIMEOUT)
        self.assertEqual([e.event_id for e in ctx.recent_events], ["connect-1"])
        self.assertEqual(ctx.recent_events[0].cursor, seen["appendedCursor"])

    def test_grpc_js_calls_the_grpc_port(self):
        out = subprocess.run(
            ["node", os.path.join(HERE, "grpc_js_client.mjs"), "--tools", self.tools,
             "--proto", os.path.join(HERE, "..", "..", "proto"), "--target", self.server.target,
             "--tenant", self.tenant, "--key", H.key_for(self.tenant)],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual(seen["profileCustomerId"], seen["customerId"], seen)
        self.assertEqual(seen["recentEventIds"], ["grpc-js-1"], seen)
        self.assertEqual(seen["refused"]["code"], "INVALID_ARGUMENT", seen)
        self.assertIn("channel", seen["refused"]["details"])
        ctx = self.server.context().GetContext(context_pb2.GetContextRequest(
            tenant=self.tenant, customer=H.by_id(seen["customerId"])), timeout=H.RPC_TIMEOUT)
        self.assertEqual([e.event_id for e in ctx.recent_events], ["grpc-js-1"])


if __name__ == "__main__":
    tools = TOOLS or os.path.join(H.BUILD_DIR, "connect-tools")
    if not shutil.which("node") or not shutil.which("protoc") or \
            not os.path.isdir(os.path.join(tools, "node_modules")):
        sys.stdout.write("e2e_connect skipped: needs node, protoc and the npm packages in %s "
                         "(bash tools/install-connect-tools.sh)\n" % tools)
        sys.exit(SKIP)
    import journey_test
    sys.exit(journey_test.main(only=sys.modules[__name__]))
