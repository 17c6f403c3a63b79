#!/usr/bin/env python3
"""Signs a ZSL transaction body with an SM2 (国密) key the way any ERP can: no ZSL code needed.

    signed_bytes = b"ZSL-TX-V1\\x00" + JCS(body)          (RFC 8785; the same bytes an Ed25519 key signs)
    ZA           = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA),  ID = b"1234567812345678"
    e            = SM3(ZA ‖ signed_bytes)
    sig          = r ‖ s                                  (GB/T 32918.2 over e; each 32 bytes big-endian)
    signer       = 04 ‖ x ‖ y                             (SEC1 uncompressed public key, 130 lowercase hex)
    tx_id        = SHA-256(signed_bytes)                  (the same whatever the algorithm)

The ID is the GB/T 35276 default, fixed by ZSL. OpenSSL uses an empty ID unless told
`-pkeyopt distid:1234567812345678`; a signature made without it does not verify.

Usage: sign_sm2.py SECRET_D_HEX BODY.json  -> prints {"body", "signer", "sig"} and the tx id on stderr.
SECRET_D_HEX is the SM2 private key d, 64 hex, in [1, n-2].
With no arguments it signs the worked example of docs/signing.md with the GM/T 0003.5 A.2 key:
the signer and the tx id (that of the Ed25519 example) must come out as pinned. SM2 signing
here uses a random k, so this run's sig differs each time; the example therefore also checks
that the deterministic signature the ZSL node makes for this body (RFC 6979 with HMAC-SM3)
verifies, as does this run's, and that a changed body does not. It exits non-zero on any mismatch.

Needs gmalg 1.1.2 (pure Python, MIT: pip install gmalg==1.1.2) and the standard library.
"""
import hashlib
import json
import sys

try:
    import gmalg
except ImportError:
    raise SystemExit("sign_sm2.py needs gmalg: python3 -m pip install gmalg==1.1.2")

DOMAIN = b"ZSL-TX-V1\x00"
SM2_ID = b"1234567812345678"
# The order n of the SM2 recommended curve's base point (GB/T 32918.5).
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


def jcs(value) -> bytes:
    """RFC 8785 for bodies of strings, integers, booleans, null, arrays and objects.

    Keys sort by UTF-16 code units; for keys in the Basic Multilingual Plane (all ZSL
    field names) that equals Python's code-point order. Floats need the ECMAScript
    number form: ZSL bodies use integers and strings, except adjustment points.
    """
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def secret_key(d_hex: str) -> bytes:
    """The 32-byte d of a 64-hex SM2 private key; refuses d outside [1, n-2]
    (d = n-1 cannot sign: 1 + d has no inverse mod n)."""
    if len(d_hex) != 64 or any(c not in "0123456789abcdefABCDEF" for c in d_hex):
        raise SystemExit("sign_sm2.py: the SM2 secret key d must be 64 hex characters (32 bytes)")
    if not 1 <= int(d_hex, 16) <= N - 2:
        raise SystemExit("sign_sm2.py: the SM2 secret key d must lie in [1, n-2], n the curve order "
                         "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123")
    return bytes.fromhex(d_hex)


def verifies(signer: bytes, signed: bytes, sig: bytes) -> bool:
    """SM2-SM3 with ZSL's ID: sig = r ‖ s (64 bytes) by signer = 04 ‖ x ‖ y (65 bytes)."""
    if len(signer) != 65 or signer[0] != 4 or len(sig) != 64:
        return False
    v = gmalg.SM2(pk=signer, uid=SM2_ID)
    return v.verify_pk(signer) and v.verify(signed, sig[:32], sig[32:])


def sign(secret_hex: str, body: dict):
    d = secret_key(secret_hex)
    key = gmalg.SM2(sk=d, uid=SM2_ID)
    signer = key.generate_pk(d)  # 65 bytes, 04 ‖ x ‖ y
    signed = DOMAIN + jcs(body)
    r, s = key.sign(signed)  # minimal-length big-endian integers: pad each to 32 bytes
    sig = r.rjust(32, b"\0") + s.rjust(32, b"\0")
    if not verifies(signer, signed, sig):
        raise SystemExit("sign_sm2.py: the new signature does not verify")
    tx = {"body": body, "signer": signer.hex(), "sig": sig.hex()}
    return tx, hashlib.sha256(signed).hexdigest(), signed


EXAMPLE_KEY = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"  # GM/T 0003.5-2012 A.2
EXAMPLE_BODY = {
    "type": "batch.code", "chain_id": "zsl-devnet", "account": "91350100M000100Y43",
    "created_at": "2024-03-01T09:00:00+08:00", "nonce": "erp-000001",
    "batch_id": "PORK-20240301-01", "product_id": "pork-chilled", "quantity": 250, "unit": "kg",
    "production_date": "2024-03-01", "expiry_date": "2024-03-06", "origin_region": "330102",
}
EXAMPLE_SIGNER = ("04"
                  "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
                  "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13")
EXAMPLE_TX_ID = "5a5c6130498627e396025979edb0737a676ac5614d4b9105b36ff2cd04eff68c"
# What the ZSL node (RustCrypto sm2, deterministic k) signs for this body with this key.
EXAMPLE_NODE_SIG = ("cbb4f6ad0b4325216e981a018891a7d70b933c7fa1965bf50c52c4ee60fd25a7"
                    "bf9ab4f81b85d090806956af4d87848ceeb2b630718ad435921adb9c30148073")


def worked_example():
    tx, tx_id, signed = sign(EXAMPLE_KEY, EXAMPLE_BODY)
    print("signed bytes:", signed.hex(), file=sys.stderr)
    signer = bytes.fromhex(tx["signer"])
    node_sig = bytes.fromhex(EXAMPLE_NODE_SIG)
    checks = [
        ("the signer is the A.2 public key", tx["signer"] == EXAMPLE_SIGNER),
        ("the tx id is the Ed25519 example's", tx_id == EXAMPLE_TX_ID),
        ("the ZSL node's deterministic signature verifies", verifies(signer, signed, node_sig)),
        ("this run's signature (random k, so it differs each run) verifies",
         verifies(signer, signed, bytes.fromhex(tx["sig"]))),
        ("the node's signature fails over a changed body",
         not verifies(signer, signed.replace(b'"quantity":250', b'"quantity":251'), node_sig)),
    ]
    for what, ok in checks:
        print("ok:" if ok else "MISMATCH:", what, file=sys.stderr)
    return tx, tx_id, all(ok for _, ok in checks)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        with open(sys.argv[2], encoding="utf-8") as f:
            body = json.load(f)
        tx, tx_id, _ = sign(sys.argv[1], body)
        good = True
    elif len(sys.argv) == 1:
        tx, tx_id, good = worked_example()
    else:
        raise SystemExit("usage: sign_sm2.py [SECRET_D_HEX BODY.json]")
    print("tx id:", tx_id, file=sys.stderr)
    print(json.dumps(tx, ensure_ascii=False))
    sys.exit(0 if good else 1)
