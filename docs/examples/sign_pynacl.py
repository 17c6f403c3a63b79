#!/usr/bin/env python3
"""Signs a ZSL transaction with PyNaCl (libsodium) and, given a node, submits it.

    signed_bytes = b"ZSL-TX-V1\\x00" + JCS(body)      (RFC 8785)
    sig          = Ed25519(secret_key, signed_bytes)  (RFC 8032)
    tx_id        = SHA-256(signed_bytes)

Usage:
    sign_pynacl.py SECRET_KEY_HEX BODY.json            print {"body", "signer", "sig"}; tx id on stderr
    sign_pynacl.py SECRET_KEY_HEX BODY.json NODE_URL   also POST it to NODE_URL/v1/tx?wait=commit
                                                       and print the node's answer
    sign_pynacl.py                                     the worked example of docs/signing.md

Needs only PyNaCl (Debian: python3-nacl; pip: pynacl) and the standard library.
"""
import hashlib
import json
import sys
import urllib.error
import urllib.request

from nacl.signing import SigningKey

DOMAIN = b"ZSL-TX-V1\x00"


def jcs(value) -> bytes:
    """RFC 8785 for ZSL bodies (strings, integers, booleans, arrays, objects).

    Keys sort by UTF-16 code units, which for ZSL's ASCII field names is Python's
    order; non-ASCII stays UTF-8; integers print as integers.
    """
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(secret_hex: str, body: dict):
    key = SigningKey(bytes.fromhex(secret_hex))  # the 32-byte seed of a zsl key file
    signed = DOMAIN + jcs(body)
    sig = key.sign(signed).signature  # detached 64-byte signature
    tx = {"body": body, "signer": key.verify_key.encode().hex(), "sig": sig.hex()}
    return tx, hashlib.sha256(signed).hexdigest()


def submit(node_url: str, tx: dict):
    req = urllib.request.Request(
        node_url.rstrip("/") + "/v1/tx?wait=commit",
        data=json.dumps(tx, ensure_ascii=False).encode("utf-8"),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:  # refusals come back as 4xx with {code, message}
        return e.code, json.load(e)


EXAMPLE_KEY = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
EXAMPLE_BODY = {
    "type": "batch.code", "chain_id": "zsl-devnet", "account": "91350100M000100Y43",
    "created_at": "2024-03-01T09:00:00+08:00", "nonce": "erp-000001",
    "batch_id": "PORK-20240301-01", "product_id": "pork-chilled", "quantity": 250, "unit": "kg",
    "production_date": "2024-03-01", "expiry_date": "2024-03-06", "origin_region": "330102",
}

if __name__ == "__main__":
    if len(sys.argv) in (3, 4):
        with open(sys.argv[2], encoding="utf-8") as f:
            tx, tx_id = sign(sys.argv[1], json.load(f))
    else:
        tx, tx_id = sign(EXAMPLE_KEY, EXAMPLE_BODY)
    print("tx id:", tx_id, file=sys.stderr)
    if len(sys.argv) == 4:
        status, answer = submit(sys.argv[3], tx)
        print(json.dumps(answer, ensure_ascii=False))
        sys.exit(0 if status == 200 else 1)
    print(json.dumps(tx, ensure_ascii=False))
