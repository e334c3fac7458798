#!/usr/bin/env python3
"""Mints an OneStory agent token (a JWT), or makes an HS256 secret and its keys-file line.

  tools/agent_token.py --new-secret --tenant acme --kid k1 >> /etc/onestory/agent_token_keys
  (the line is on stdout; the secret, to give to the integrator's backend, also on stderr)

  tools/agent_token.py --tenant acme --kid k1 --secret=<base64url> --sub agent-7 \
      --audience AGENT --scope "timeline.read timeline.write context.read.agent" [--ttl 3600]

  tools/agent_token.py --alg ES256 --key acme-web-1.key.pem --tenant acme --kid web-1 ...
  (ES256 and RS256 sign with the private key through the `openssl` command)

The token goes in "authorization: Bearer <jwt>". libs/auth/agent_tokens.h says what the server
checks; the integrator's backend mints these tokens the same way with its own JWT library.
"""

import argparse
import base64
import hashlib
import hmac
import json
import re
import secrets
import subprocess
import sys
import time

SCOPES = ("timeline.write", "timeline.read", "context.read.bot", "context.read.agent",
          "context.read.supervisor", "identity.admin", "tenant.admin", "privacy.admin")
MAX_TTL = 12 * 3600  # the server refuses an exp further ahead


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def der_to_raw(der, size=32):
    """A DER ECDSA-Sig-Value (SEQUENCE of INTEGERs r, s) as JOSE's r||s (RFC 7518 §3.4)."""
    def length(i):  # the DER length at der[i] -> (length, index after it)
        if der[i] < 0x80:
            return der[i], i + 1
        n = der[i] & 0x7F
        return int.from_bytes(der[i + 1:i + 1 + n], "big"), i + 1 + n

    if der[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    _, i = length(1)
    out = b""
    for _ in range(2):
        if der[i] != 0x02:
            raise ValueError("not a DER INTEGER")
        n, i = length(i + 1)
        value = der[i:i + n].lstrip(b"\0")
        if len(value) > size:
            raise ValueError("integer longer than %d bytes" % size)
        out += value.rjust(size, b"\0")
        i += n
    return out


def sign(alg, signing_input, secret=None, key=None):
    if alg == "HS256":
        padded = secret + "=" * (-len(secret) % 4)
        return hmac.new(base64.urlsafe_b64decode(padded), signing_input, hashlib.sha256).digest()
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input,
                         stdout=subprocess.PIPE, check=True).stdout
    return der_to_raw(der) if alg == "ES256" else der


def mint(a):
    now = int(time.time())
    header = {"alg": a.alg, "kid": a.kid, "typ": "JWT"}
    claims = {"tenant": a.tenant, "sub": a.sub, "aud": "onestory", "iat": now, "exp": now + a.ttl,
              "audience": a.audience, "scope": a.scope}
    signing_input = ".".join(b64url(json.dumps(part, separators=(",", ":")).encode())
                             for part in (header, claims)).encode()
    return signing_input.decode() + "." + b64url(sign(a.alg, signing_input, a.secret, a.key))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tenant", required=True)
    p.add_argument("--kid", required=True, help="the key's id in the keys file")
    p.add_argument("--new-secret", action="store_true",
                   help="print a new HS256 secret's keys-file line instead of a token")
    p.add_argument("--alg", default="HS256", choices=("HS256", "ES256", "RS256"))
    p.add_argument("--secret", help="HS256: the base64url secret of the keys file (write "
                   "--secret=<s>: a secret may begin with '-')")
    p.add_argument("--key", help="ES256, RS256: the private key (PEM)")
    p.add_argument("--sub", help="the agent or bot: 1-128 characters of [A-Za-z0-9._:@-]")
    p.add_argument("--audience", choices=("BOT", "AGENT", "SUPERVISOR"))
    p.add_argument("--scope", help="scopes separated by spaces")
    p.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (max 43200)")
    a = p.parse_args()
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", a.tenant):
        p.error("--tenant: 1-64 characters of [A-Za-z0-9_-]")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", a.kid):
        p.error("--kid: 1-64 characters of [A-Za-z0-9._-]")
    if a.new_secret:
        secret = b64url(secrets.token_bytes(32))
        print("%s %s HS256 %s" % (a.tenant, a.kid, secret))
        sys.stderr.write("secret (for the integrator's backend): %s\n" % secret)
        return
    if a.sub is None or not re.fullmatch(r"[A-Za-z0-9._:@-]{1,128}", a.sub):
        p.error("--sub: 1-128 characters of [A-Za-z0-9._:@-]")
    if a.audience is None:
        p.error("--audience is required")
    unknown = [s for s in (a.scope or "").split() if s not in SCOPES]
    if not (a.scope or "").split() or unknown:
        p.error("--scope: one or more of %s, separated by spaces" % ", ".join(SCOPES))
    if not 0 < a.ttl <= MAX_TTL:
        p.error("--ttl: 1 to %d seconds" % MAX_TTL)
    if (a.alg == "HS256") != (a.secret is not None) or (a.alg != "HS256") != (a.key is not None):
        p.error("HS256 takes --secret; ES256 and RS256 take --key")
    print(mint(a))


if __name__ == "__main__":
    main()
