#!/usr/bin/env python3
"""Makes an OneStory API key and the line that lets the server accept it.

  tools/apikey.py --id console-eu --tenant acme --scopes timeline.read,context.read.agent \
      >> /etc/onestory/api_keys        # the line (the server stores only the key's SHA-256)
  (the key itself is printed on stderr: hand it to the client, it is not kept anywhere)

Then `kill -HUP <onestory pid>` (or restart) to load it. Scopes: timeline.write, timeline.read,
context.read.bot, context.read.agent, context.read.supervisor, identity.admin, tenant.admin,
privacy.admin (README.md "API keys" says which RPC needs which).
"""

import argparse
import base64
import hashlib
import re
import secrets
import sys

SCOPES = ("timeline.write", "timeline.read", "context.read.bot", "context.read.agent",
          "context.read.supervisor", "identity.admin", "tenant.admin", "privacy.admin")


def make_key():
    return "os_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def key_line(key_id, tenant, scopes, key):
    return "%s %s %s sha256:%s" % (key_id, tenant, ",".join(scopes),
                                   hashlib.sha256(key.encode()).hexdigest())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--id", required=True, help="names the key in logs and the audit log")
    p.add_argument("--tenant", required=True)
    p.add_argument("--scopes", required=True, help="comma-separated, or 'all'")
    p.add_argument("--key", help="use this key instead of making one")
    a = p.parse_args()
    scopes = list(SCOPES) if a.scopes == "all" else [s.strip() for s in a.scopes.split(",")]
    for s in scopes:
        if s not in SCOPES:
            p.error("unknown scope %r; known: %s" % (s, ", ".join(SCOPES)))
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", a.tenant):
        p.error("--tenant: 1-64 characters of [A-Za-z0-9_-]")
    if not re.fullmatch(r"[!-~]{1,64}", a.id):
        p.error("--id: 1-64 printable characters without spaces")
    key = a.key or make_key()
    print(key_line(a.id, a.tenant, scopes, key))
    if not a.key:
        sys.stderr.write("key (give it to the client; it is not stored): %s\n" % key)


if __name__ == "__main__":
    main()
