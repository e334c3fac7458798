#!/usr/bin/env python3
"""Unit tests of tools/lua_library.py: header parsing, the prologue, line offsets, refusals."""

import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools"))
import lua_library as gen  # noqa: E402

GET = """-- demo_get: reads a hash.
--
-- KEYS:
--   profile        the profile hash
--                  (a second line)
-- ARGV:
--   customer_id    the customer's id
--   now_ms:int     now
--   pairs...       the rest
-- Flags: no-writes
-- Returns: the hash.
-- Errors: none.
local now = P.now_ms
return redis.call('HGETALL', K.profile)
"""

HELPER = """-- os_helper (helper): says hello.
local function os_helper()
  return 'hello'
end
"""


class ParseTest(unittest.TestCase):
    def test_reads_keys_args_types_and_flags(self):
        fn = gen.parse_function("libs/demo/lua/get.lua", GET)
        self.assertEqual(fn.name, "demo_get")
        self.assertEqual([k.name for k in fn.keys], ["profile"])
        self.assertEqual(fn.keys[0].doc, "the profile hash (a second line)")
        self.assertEqual([(a.name, a.is_int, a.is_list) for a in fn.args],
                         [("customer_id", False, False), ("now_ms", True, False),
                          ("pairs", False, True)])
        self.assertTrue(fn.read_only)

    def test_the_header_must_name_the_function(self):
        with self.assertRaisesRegex(gen.LuaError, r"get\.lua:1: .*'-- demo_get:"):
            gen.parse_function("libs/demo/lua/get.lua", GET.replace("demo_get:", "other:"))

    def test_positional_access_is_refused(self):
        text = GET + "local x = ARGV[2]\n"
        with self.assertRaisesRegex(gen.LuaError, r"get\.lua:15: read keys and arguments"):
            gen.parse_function("libs/demo/lua/get.lua", text)

    def test_a_list_must_come_last_and_names_once(self):
        with self.assertRaisesRegex(gen.LuaError, r"only the last"):
            gen.parse_function("libs/demo/lua/get.lua",
                               GET.replace("--   pairs...       the rest\n",
                                           "--   pairs...       the rest\n--   more  x\n"))
        with self.assertRaisesRegex(gen.LuaError, r"declared twice"):
            gen.parse_function("libs/demo/lua/get.lua",
                               GET.replace("--   customer_id", "--   profile"))

    def test_unknown_flags_are_refused(self):
        with self.assertRaisesRegex(gen.LuaError, r"get\.lua:10: unknown flag 'no-write'"):
            gen.parse_function("libs/demo/lua/get.lua", GET.replace("no-writes", "no-write"))


class LibraryTest(unittest.TestCase):
    def build(self):
        fn = gen.parse_function("libs/demo/lua/get.lua", GET)
        return gen.build_library([("libs/demo/lua/helper.lua", HELPER)], [fn])

    def test_name_carries_the_content_hash(self):
        name, version, code, _ = self.build()
        self.assertEqual(name, "onestory_" + version)
        self.assertTrue(code.startswith(f"#!lua name=onestory_{version}\n"))
        self.assertIn(f"function_name = 'demo_get_{version}'", code)
        self.assertIn("flags = {'no-writes'}", code)
        fn = gen.parse_function("libs/demo/lua/get.lua", GET.replace("HGETALL", "HKEYS"))
        self.assertNotEqual(gen.build_library([], [fn])[1], version)

    def test_every_files_lines_are_where_the_sources_say(self):
        _, _, code, sources = self.build()
        lines = code.split("\n")
        for path, first, count in sources:
            text = HELPER if path.endswith("helper.lua") else GET
            self.assertEqual(lines[first - 1:first - 1 + count], text.rstrip("\n").split("\n"))

    def test_prologue_binds_names_on_the_line_before_the_file(self):
        _, _, code, sources = self.build()
        first = sources[1][1]
        prologue = code.split("\n")[first - 2]
        self.assertIn("local K = {profile = KEYS[1]}", prologue)
        self.assertIn("customer_id = ARGV[1], now_ms = tonumber(ARGV[2])", prologue)
        # A list: one unpack when it fits Lua's stack, else a loop (both run in
        # tests/integration/lua/privacy_functions_test.cc).
        self.assertIn("if #ARGV - 3 < 7000 then P.pairs = {unpack(ARGV, 3)} else "
                      "P.pairs = {} for i = 3, #ARGV do P.pairs[i - 2] = ARGV[i] end end", prologue)


class CppTest(unittest.TestCase):
    def test_struct_has_named_fields_and_no_index_outside(self):
        fn = gen.parse_function("libs/demo/lua/get.lua", GET)
        h = gen.function_h(fn)
        self.assertIn("struct DemoGet {", h)
        self.assertIn('kFunction{&kLibrary, "demo_get", true}', h)
        self.assertIn("int64_t now_ms = 0;", h)
        self.assertIn("std::vector<std::string> pairs;", h)
        self.assertIn("out.push_back(absl::StrCat(now_ms));", h)
        self.assertIsNone(re.search(r"\[\d+\]", h))

    def test_raw_string_delimiter_avoids_the_text(self):
        self.assertEqual(gen.cpp_string('a )lua" b'), 'R"lua_(a )lua" b)lua_"')


class MainTest(unittest.TestCase):
    def test_writes_every_file_and_reports_errors_by_file(self):
        with tempfile.TemporaryDirectory() as src, tempfile.TemporaryDirectory() as out:
            os.makedirs(os.path.join(src, "libs/demo/lua"))
            with open(os.path.join(src, "libs/demo/lua/get.lua"), "w") as f:
                f.write(GET)
            with open(os.path.join(src, "libs/demo/lua/helper.lua"), "w") as f:
                f.write(HELPER)
            rc = gen.main(["--source-dir", src, "--out-dir", out,
                           "--helper", "libs/demo/lua/helper.lua",
                           "--function", "libs/demo/lua/get.lua"])
            self.assertEqual(rc, 0)
            self.assertEqual(sorted(os.listdir(os.path.join(out, "libs/lua"))),
                             ["demo_get.h", "library.cc", "library.h"])
            with open(os.path.join(out, "libs/lua/library.cc")) as f:
                self.assertIn("-- os_helper", f.read())
            with open(os.path.join(src, "libs/demo/lua/get.lua"), "w") as f:
                f.write(GET.replace("-- KEYS:", "-- KEYS:\n--   Bad"))
            rc = gen.main(["--source-dir", src, "--out-dir", out,
                           "--function", "libs/demo/lua/get.lua"])
            self.assertEqual(rc, 1)


if __name__ == "__main__":
    unittest.main()
