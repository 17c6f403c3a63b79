#!/usr/bin/env python3
"""Signs a ZSL transaction body the way any ERP can: no ZSL code needed.

    signed_bytes = b"ZSL-TX-V1\\x00" + JCS(body)      (RFC 8785)
    sig          = Ed25519(secret_key, signed_bytes)  (RFC 8032)
    tx_id        = SHA-256(signed_bytes)

Usage: sign.py SECRET_KEY_HEX BODY.json  -> prints {"body", "signer", "sig"} and the tx id on stderr.
With no arguments it reproduces the worked example of docs/signing.md.
"""
import hashlib
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DOMAIN = b"ZSL-TX-V1\x00"


def jcs(value) -> bytes:
    """RFC 8785 for bodies of strings, integers, booleans, null, arrays and objects.

    Keys sort by UTF-16 code units; for keys in the Basic Multilingual Plane (all ZSL
    field names) that equals Python's code-point order. Floats need the ECMAScript
    number form: ZSL bodies use integers and strings, except adjustment points.
    """
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(secret_hex: str, body: dict):
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret_hex))
    signed = DOMAIN + jcs(body)
    sig = key.sign(signed)
    signer = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    tx = {"body": body, "signer": signer.hex(), "sig": sig.hex()}
    return tx, hashlib.sha256(signed).hexdigest(), signed


EXAMPLE_KEY = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
EXAMPLE_BODY = {
    "type": "batch.code", "chain_id": "zsl-devnet", "account": "91350100M000100Y43",
    "created_at": "2024-03-01T09:00:00+08:00", "nonce": "erp-000001",
    "batch_id": "PORK-20240301-01", "product_id": "pork-chilled", "quantity": 250, "unit": "kg",
    "production_date": "2024-03-01", "expiry_date": "2024-03-06", "origin_region": "330102",
}

if __name__ == "__main__":
    if len(sys.argv) == 3:
        tx, tx_id, _ = sign(sys.argv[1], json.load(open(sys.argv[2], encoding="utf-8")))
    else:
        tx, tx_id, signed = sign(EXAMPLE_KEY, EXAMPLE_BODY)
        print("signed bytes:", signed.hex(), file=sys.stderr)
    print("tx id:", tx_id, file=sys.stderr)
    print(json.dumps(tx, ensure_ascii=False))
