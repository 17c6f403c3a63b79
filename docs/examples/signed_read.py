#!/usr/bin/env python3
"""Reads from a ZSL node as an account: an RFC 9421 signed GET (Ed25519).

Reads beyond the public view name their caller (docs/api.md, "Who sees what").
The request covers its method, path and query; `created` is now; `keyid` is the
account's public key in hex; a random nonce makes each signature unique (the
node accepts a signature once).

    signature base = '"@method": GET\\n"@path": /v1/...\\n"@query": ?...\\n'
                     '"@signature-params": ("@method" "@path" "@query");created=...;keyid="...";alg="ed25519";nonce="..."'

Usage:
    signed_read.py NODE_URL KEY_FILE PATH     e.g. /v1/views/subjects/{uscc}/portrait?from=2026-01-01&to=2026-01-31

Needs only `cryptography` (Debian: python3-cryptography) and the standard library.
"""
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def signature_headers(secret_hex: str, method: str, path_and_query: str) -> dict:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret_hex))
    public_hex = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    path, _, query = path_and_query.partition("?")
    params = ('("@method" "@path" "@query");created=%d;keyid="%s";alg="ed25519";nonce="%s"'
              % (int(time.time()), public_hex, os.urandom(16).hex()))
    base = ('"@method": %s\n"@path": %s\n"@query": ?%s\n"@signature-params": %s'
            % (method, path, query, params))
    sig = base64.b64encode(key.sign(base.encode("ascii"))).decode("ascii")
    return {"Signature-Input": "zsl=" + params, "Signature": "zsl=:" + sig + ":"}


def main() -> int:
    node, key_file, path = sys.argv[1:4]
    with open(key_file, encoding="utf-8") as f:
        secret = json.load(f)["secret_key"]
    # Sign the path as it is sent: percent-encoded the way urllib sends it.
    path = urllib.parse.quote(path, safe="/?=&%:")
    req = urllib.request.Request(node.rstrip("/") + path, headers=signature_headers(secret, "GET", path))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            print(resp.read().decode("utf-8"))
            return 0
    except urllib.error.HTTPError as e:
        print(e.read().decode("utf-8"))
        return 1


if __name__ == "__main__":
    sys.exit(main())
