#!/usr/bin/env python3
"""Builds OneStory's Redis Function library from .lua files, and the C++ that calls it.

Run by CMake (libs/lua/CMakeLists.txt) at build time:

  lua_library.py --source-dir <repo> --out-dir <dir> \
      --helper libs/identity/lua/guard.lua ... \
      --function libs/context/lua/get.lua ...

Writes into <out-dir>/libs/lua/:
  library.h, library.cc   lua::kLibrary: the library's code ("#!lua name=onestory_<hash>"), its
                          version and where each file's lines are in it (for error messages);
  <function>.h            per function, a struct with one field per key and argument, ToKeys(),
                          ToArgv() and kFunction (its name, read-only or not).

A function file is libs/<folder>/lua/<stem>.lua and defines the function <folder>_<stem>. It
opens with a header (comment lines) the generator reads:

  -- context_get: what the function does ...
  --
  -- KEYS:
  --   profile          the customer's profile hash
  -- ARGV:
  --   customer_id      the customer's id
  --   now_ms:int       now, in ms (an int argument: int64_t in C++, a number in Lua)
  --   pairs...         the remaining arguments (a list; last only)
  --                    (a second line of its description)
  -- Flags: no-writes
  -- Returns: ...
  -- Errors: ...

An entry is "--" and exactly three spaces before its name; lines indented by five or more
continue its description. In the function's body, K.<key> and P.<argument> are bound by a prologue the
generator writes on the line before the file's first line, so the file's line n is the library's
line first_line + n - 1. Helpers are pasted in before every function, once.
"""

import argparse
import hashlib
import os
import re
import sys

IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
ENTRY = re.compile(r"^--   ([a-z][a-z0-9_]*)(\.\.\.)?(:int)?(?:\s+(.*))?$")
SECTION = re.compile(r"^-- ([A-Za-z]+):\s*(.*)$")
KNOWN_FLAGS = {"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"}
CPP_RESERVED = {"and", "or", "not", "char", "int", "new", "delete", "this", "class", "default",
                "register", "return", "template", "typename", "union", "auto", "case", "const",
                "do", "else", "for", "if", "long", "short", "signed", "static", "struct",
                "switch", "while", "end", "function", "local", "nil", "then", "repeat", "until",
                "in", "elseif", "true", "false", "break", "goto"}


class LuaError(Exception):
    """A .lua file the generator cannot use; the message names the file and line."""


class Param:
    def __init__(self, name, is_int, is_list, doc):
        self.name = name
        self.is_int = is_int
        self.is_list = is_list
        self.doc = doc


class Function:
    def __init__(self, path, name, keys, args, flags, doc, text):
        self.path = path
        self.name = name
        self.keys = keys
        self.args = args
        self.flags = flags
        self.doc = doc
        self.text = text

    @property
    def read_only(self):
        return "no-writes" in self.flags


def function_name(path):
    """libs/<folder>/lua/<stem>.lua -> <folder>_<stem>."""
    parts = path.replace(os.sep, "/").split("/")
    if len(parts) < 3 or parts[-2] != "lua" or not parts[-1].endswith(".lua"):
        raise LuaError(f"{path}: a function file must be <library>/lua/<name>.lua")
    name = f"{parts[-3]}_{parts[-1][:-4]}"
    if not IDENT.match(name):
        raise LuaError(f"{path}: function name {name!r} must be lower case letters, digits, _")
    return name


def parse_function(path, text):
    """Reads a function file's header. Raises LuaError naming file:line for a bad header."""
    name = function_name(path)
    lines = text.split("\n")
    header = []
    for line in lines:
        if not line.startswith("--"):
            break
        header.append(line)
    if not header or not header[0].startswith(f"-- {name}:"):
        raise LuaError(f"{path}:1: the header must start with '-- {name}: <what it does>'")
    keys, args, flags, doc = [], [], [], []
    section = None
    for i, line in enumerate(header, start=1):
        m = SECTION.match(line)
        if m:
            section = m.group(1)
            rest = m.group(2).strip()
            if section == "Flags":
                for flag in rest.replace(",", " ").split():
                    if flag not in KNOWN_FLAGS:
                        raise LuaError(f"{path}:{i}: unknown flag {flag!r}")
                    flags.append(flag)
            continue
        if section is None:
            doc.append(line[3:] if line.startswith("-- ") else line[2:])
            continue
        if section not in ("KEYS", "ARGV"):
            continue
        m = ENTRY.match(line)
        if not m:
            params = keys if section == "KEYS" else args
            if line.startswith("--     ") and params:
                params[-1].doc += " " + line[2:].strip()  # its description continues
                continue
            if line.strip() == "--":
                continue
            raise LuaError(f"{path}:{i}: expected '--   <name>  <description>' under {section}:")
        pname, is_list, is_int, pdoc = m.group(1), bool(m.group(2)), bool(m.group(3)), m.group(4)
        if pname in CPP_RESERVED:
            raise LuaError(f"{path}:{i}: {pname!r} is a reserved word in Lua or C++")
        params = keys if section == "KEYS" else args
        if any(p.name == pname for p in keys + args):
            raise LuaError(f"{path}:{i}: {pname!r} is declared twice")
        if params and params[-1].is_list:
            raise LuaError(f"{path}:{i}: only the last of the {section} may be a list (...)")
        params.append(Param(pname, is_int, is_list, pdoc or ""))
    if section is None:
        raise LuaError(f"{path}: the header names no KEYS: or ARGV: section")
    if re.search(r"\b(KEYS|ARGV)\s*\[", text):
        line = next(n for n, l in enumerate(lines, 1) if re.search(r"\b(KEYS|ARGV)\s*\[", l))
        raise LuaError(f"{path}:{line}: read keys and arguments by name (K.<key>, P.<arg>), "
                       "not KEYS[i] / ARGV[i]")
    return Function(path, name, keys, args, flags, doc, text)


# The longest list argument the prologue copies with one `unpack` (below Lua 5.1's limit of 8000
# values on the stack, with room for what is already there).
UNPACK_MAX = 7000


def prologue(fn):
    """Lua binding K.<key> and P.<arg> from the callback's KEYS and ARGV, on one line."""
    def bind(params, table, source):
        fields, extra = [], []
        for i, p in enumerate(params, start=1):
            if p.is_list:
                # A list of strings is copied by one `unpack` (C, one table of the right size)
                # when it has at most UNPACK_MAX values, else by a loop; a list of ints by a loop.
                loop = (f"{table}.{p.name} = {{}} for i = {i}, #{source} do "
                        f"{table}.{p.name}[i - {i - 1}] = " +
                        (f"tonumber({source}[i])" if p.is_int else f"{source}[i]") + " end")
                if p.is_int:
                    extra.append(loop)
                else:
                    extra.append(f"if #{source} - {i} < {UNPACK_MAX} then "
                                 f"{table}.{p.name} = {{unpack({source}, {i})}} else {loop} end")
            else:
                value = f"tonumber({source}[{i}])" if p.is_int else f"{source}[{i}]"
                fields.append(f"{p.name} = {value}")
        return f"local {table} = {{{', '.join(fields)}}}" + "".join(" " + e for e in extra)
    return f"{bind(fn.keys, 'K', 'KEYS')} {bind(fn.args, 'P', 'ARGV')}"


def lua_lines(text):
    """The file's lines, without a final empty one (a file ends with a newline)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def build_library(helpers, functions):
    """Returns (name, version, code, sources): sources are (path, first line, line count)."""
    out, sources = [], []
    placeholder = "@VERSION@"
    out.append(f"#!lua name=onestory_{placeholder}")
    for path, text in helpers:
        lines = lua_lines(text)
        sources.append((path, len(out) + 1, len(lines)))
        out.extend(lines)
    for fn in functions:
        flags = "".join(f"'{f}', " for f in fn.flags).rstrip(", ")
        out.append(f"redis.register_function{{function_name = '{fn.name}_{placeholder}', "
                   f"flags = {{{flags}}}, callback = function(KEYS, ARGV) {prologue(fn)}")
        lines = lua_lines(fn.text)
        sources.append((fn.path, len(out) + 1, len(lines)))
        out.extend(lines)
        out.append("end}")
    code = "\n".join(out) + "\n"
    version = hashlib.sha1(code.encode()).hexdigest()[:16]
    return f"onestory_{version}", version, code.replace(placeholder, version), sources


def cpp_string(text):
    """A raw string literal holding text."""
    delim = "lua"
    while f"){delim}\"" in text:
        delim += "_"
    return f"R\"{delim}({text}){delim}\""


def camel(name):
    return "".join(part.capitalize() for part in name.split("_"))


def wrap(text, prefix, width=100):
    """text as comment lines of at most `width` characters."""
    lines, line = [], prefix
    for word in text.split():
        if len(line) + len(word) + 1 > width and line != prefix:
            lines.append(line.rstrip())
            line = prefix
        line += word + " "
    lines.append(line.rstrip())
    return lines


def comment(text, indent):
    return "\n".join(f"{indent}// {line}".rstrip() for line in text.split("\n"))


GENERATED = "// Generated by tools/lua_library.py from the .lua files named below: do not edit.\n"


def library_h():
    return GENERATED + """// kLibrary: OneStory's Redis Function library (libs/lua/README.md).
#pragma once

#include "libs/redis/function_library.h"

namespace onestory::lua {

extern const redis::FunctionLibrary kLibrary;

}  // namespace onestory::lua
"""


def library_cc(name, version, code, sources):
    rows = "\n".join(f"    {{\"{p}\", {first}, {count}}}," for p, first, count in sources)
    return GENERATED + f"""#include "libs/lua/library.h"

namespace onestory::lua {{
namespace {{

constexpr char kCode[] = {cpp_string(code)};

constexpr redis::FunctionLibrary::Source kSources[] = {{
{rows}
}};

}}  // namespace

const redis::FunctionLibrary kLibrary{{"{name}", "{version}", kCode, kSources}};

}}  // namespace onestory::lua
"""


def function_h(fn):
    struct = camel(fn.name)
    fields, to_keys, to_argv = [], [], []
    for title, params, out in (("KEYS", fn.keys, to_keys), ("ARGV", fn.args, to_argv)):
        fields.append(f"  // {title}")
        for p in params:
            if p.is_list:
                ctype = "std::vector<int64_t>" if p.is_int else "std::vector<std::string>"
            else:
                ctype = "int64_t" if p.is_int else "std::string"
            init = " = 0" if p.is_int and not p.is_list else ""
            if p.doc:
                fields.extend(wrap(p.doc, "  // "))
            fields.append(f"  {ctype} {p.name}{init};")
            if p.is_list:
                conv = "absl::StrCat(v)" if p.is_int else "v"
                out.append(f"    for (const auto& v : {p.name}) out.push_back({conv});")
            else:
                conv = f"absl::StrCat({p.name})" if p.is_int else p.name
                out.append(f"    out.push_back({conv});")
    n_keys = sum(1 for p in fn.keys if not p.is_list)
    n_args = sum(1 for p in fn.args if not p.is_list)
    body_fields = "\n".join(fields)
    doc = comment("\n".join(fn.doc).strip(), "")
    return GENERATED + f"""// {fn.path}
//
{doc}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/lua/library.h"
#include "libs/redis/function_library.h"

namespace onestory::lua {{

struct {struct} {{
  static constexpr redis::Function kFunction{{&kLibrary, "{fn.name}", {str(fn.read_only).lower()}}};

{body_fields}

  std::vector<std::string> ToKeys() const {{
    std::vector<std::string> out;
    out.reserve({n_keys});
{chr(10).join(to_keys)}
    return out;
  }}
  std::vector<std::string> ToArgv() const {{
    std::vector<std::string> out;
    out.reserve({n_args});
{chr(10).join(to_argv)}
    return out;
  }}
}};

}}  // namespace onestory::lua
"""


def write(path, content):
    """Writes only a changed file, so an unchanged header recompiles nothing."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == content:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)


def read(source_dir, path):
    with open(os.path.join(source_dir, path), encoding="utf-8") as f:
        return f.read()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--helper", action="append", default=[], help="a .lua file of helpers")
    ap.add_argument("--function", action="append", default=[], help="a .lua function file")
    opts = ap.parse_args(argv)
    try:
        helpers = [(p, read(opts.source_dir, p)) for p in opts.helper]
        functions = [parse_function(p, read(opts.source_dir, p)) for p in opts.function]
        names = [f.name for f in functions]
        if len(set(names)) != len(names):
            raise LuaError(f"two function files define the same function: {sorted(names)}")
        name, version, code, sources = build_library(helpers, functions)
        out = os.path.join(opts.out_dir, "libs", "lua")
        write(os.path.join(out, "library.h"), library_h())
        write(os.path.join(out, "library.cc"), library_cc(name, version, code, sources))
        for fn in functions:
            write(os.path.join(out, f"{fn.name}.h"), function_h(fn))
    except LuaError as e:
        print(f"lua_library.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
