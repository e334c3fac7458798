#!/usr/bin/python3
"""Checks the Dockerfile offline (building an image needs a container runtime this suite does not
have): its build stage runs the scripts a host runs (tools/install-deps.sh, tools/build.sh); the
runtime stage installs, from Debian 12, every library the copied binaries link (ldd of the
binaries tools/build.sh made here, each library's package found with dpkg -S, covered by the
installed packages or what they depend on); it runs as a non-root user; its HEALTHCHECK asks
/healthz on the metrics port it sets; its ONESTORY_ variables are flags the server reads.

Usage: python3 dockerfile_test.py --root <repo> --build-dir <build>
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import unittest

ARGS = None


def instructions(text):
    """(instruction, arguments) of each Dockerfile line, continuations joined."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def stages(parsed):
    """Instructions grouped by FROM."""
    out = []
    for word, rest in parsed:
        if word == "FROM":
            out.append([])
        out[-1].append((word, rest))
    return out


def depends(package):
    """The packages `package` depends on (first of each alternative), from the installed
    package's record."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", package],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = set()
    for clause in r.stdout.split(","):
        name = clause.strip().split("|")[0].strip().split(" ")[0].split(":")[0]
        if name:
            out.add(name)
    return out


_owners = {}


def owner(path):
    """The package owning a library path (merged /usr or not)."""
    if path not in _owners:
        _owners[path] = _owner(path)
    return _owners[path]


def _owner(path):
    candidates = {path, os.path.realpath(path)}
    for p in list(candidates):
        if p.startswith("/usr/"):
            candidates.add(p[4:])
        else:
            candidates.add("/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


class DockerfileTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ARGS.root, "Dockerfile")) as f:
            cls.stages = stages(instructions(f.read()))

    def test_two_stages_on_debian_12(self):
        self.assertEqual(len(self.stages), 2)
        self.assertEqual(self.stages[0][0], ("FROM", "debian:12 AS build"))
        self.assertEqual(self.stages[1][0], ("FROM", "debian:12-slim"))

    def test_build_stage_runs_the_hosts_scripts(self):
        runs = [rest for word, rest in self.stages[0] if word == "RUN"]
        self.assertEqual(runs, ["bash tools/install-deps.sh && bash tools/build.sh"])
        for script in ("tools/install-deps.sh", "tools/build.sh"):
            self.assertTrue(os.path.exists(os.path.join(ARGS.root, script)), script)

    def copied_binaries(self):
        out = []
        for word, rest in self.stages[1]:
            if word == "COPY" and rest.startswith("--from=build "):
                parts = rest.split()[1:]
                out.extend(p for p in parts[:-1] if "/build/" in p)
        return out

    def test_every_binary_is_built_and_its_libraries_installed(self):
        binaries = self.copied_binaries()
        self.assertGreaterEqual(len(binaries), 5)
        run = " ".join(rest for word, rest in self.stages[1] if word == "RUN")
        listed = set(re.search(r"apt-get install -y --no-install-recommends (.*?)&&",
                               run).group(1).split())
        for p in listed:  # each a Debian 12 package (installed here by install-deps.sh)
            r = subprocess.run(["dpkg-query", "-W", p], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 0, "%s is not a package of this Debian" % p)
        closure, todo = set(), list(listed)
        while todo:
            p = todo.pop()
            if p not in closure:
                closure.add(p)
                todo.extend(depends(p))
        for path in binaries:
            local = os.path.join(ARGS.build_dir, path.split("/build/", 1)[1])
            self.assertTrue(os.access(local, os.X_OK), "%s was not built" % local)
            ldd = subprocess.run(["ldd", local], stdout=subprocess.PIPE, text=True, check=True)
            for line in ldd.stdout.splitlines():
                m = re.search(r"=> (/\S+)", line)
                if not m:
                    continue
                package = owner(m.group(1))
                self.assertIsNotNone(package, "no package owns %s" % m.group(1))
                self.assertTrue(package in closure, "%s needs %s (%s): not installed by the "
                                "runtime stage" % (os.path.basename(local), m.group(1), package))

    def test_runs_as_a_non_root_user_with_health_on_the_metrics_port(self):
        words = dict((w, r) for w, r in self.stages[1] if w in ("USER", "ENTRYPOINT",
                                                                 "HEALTHCHECK", "EXPOSE"))
        user = words["USER"].split(":")[0]
        self.assertTrue(user.isdigit() and int(user) != 0, "USER %s" % words["USER"])
        env = {}
        for w, rest in self.stages[1]:
            if w == "ENV":
                for item in shlex.split(rest):
                    k, _, v = item.partition("=")
                    env[k] = v
        metrics_port = env["ONESTORY_METRICS_LISTEN"].rsplit(":", 1)[1]
        grpc_port = env["ONESTORY_LISTEN"].rsplit(":", 1)[1]
        self.assertEqual(set(words["EXPOSE"].split()), {grpc_port, metrics_port})
        self.assertIn("/dev/tcp/127.0.0.1/%s" % metrics_port, words["HEALTHCHECK"])
        self.assertIn("GET /healthz", words["HEALTHCHECK"])
        entry = words["ENTRYPOINT"].strip('[]"')
        self.assertIn(os.path.basename(entry),
                      [os.path.basename(b) for b in self.copied_binaries()])
        # Every variable is one the server reads (kFlagNames of server_runner.cc).
        with open(os.path.join(ARGS.root, "services/server/server_runner.cc")) as f:
            names = re.search(r"kFlagNames\[\]\s*=\s*\{([^}]*)\}", f.read()).group(1)
        known = {"ONESTORY_" + n.upper() for n in re.findall(r'"(\w+)"', names)}
        for k in env:
            self.assertIn(k, known, "%s is not a flag of onestory-server" % k)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--build-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.root, ARGS.build_dir = os.path.abspath(ARGS.root), os.path.abspath(ARGS.build_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
