#!/usr/bin/env python3
"""An independent check of ZSL's SCITT transparent statements, written from
docs/evidence.md ("SCITT transparent statements") with pycose (COSE,
RFC 9052), cbor2, cryptography and, for SM2 records, gmalg; nothing from
ZSL's code.

    receipts.py verify STATEMENT GENESIS QUORUM
        exit 0: the record signature verifies over ZSL-TX-V1\\0 || payload
        (Ed25519 for a 32-byte kid with alg EdDSA; SM2 with SM3 and ID
        1234567812345678 for a 65-byte kid 04||x||y with the private alg
        -65537, which pycose cannot decode, so the statement is read with
        cbor2 only),
        and at least QUORUM distinct genesis validators' receipts verify
        (COSE Receipts, RFC 9942, vds RFC9162_SHA256); exit 1 otherwise.
    receipts.py tamper KIND STATEMENT OUT
        writes a copy changed one way (payload, proof, signature, drop):
        the test then expects both verifiers to refuse it.
"""

import hashlib
import json
import sys

import cbor2
from pycose.keys.curves import Ed25519
from pycose.keys.keyparam import KpKty, OKPKpCurve, OKPKpX
from pycose.keys.keytype import KtyOKP
from pycose.keys import CoseKey
from pycose.messages import Sign1Message
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

RECEIPTS, VDS, VDP, INCLUSION = 394, 395, 396, -1
RFC9162_SHA256 = 1
TX_DOMAIN = b"ZSL-TX-V1\x00"
ALG, KID = 1, 4
ALG_EDDSA = -8
ALG_SM2_SM3 = -65537  # private use (RFC 9053): no COSE algorithm is registered for SM2
SM2_ID = b"1234567812345678"


def sha256(b):
    return hashlib.sha256(b).digest()


def root_from_inclusion(leaf, index, size, path):
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    if index >= size:
        raise ValueError("leaf index beyond the tree")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("proof too long")
        if fn % 2 == 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def cose_key(public_key):
    return CoseKey.from_dict({KpKty: KtyOKP, OKPKpCurve: Ed25519, OKPKpX: public_key})


def sm2_verifies(signer, signature, signed):
    """GB/T 32918.2 SM2 with SM3, ID 1234567812345678: signature = r || s
    (32 bytes each, big-endian) over e = SM3(ZA || signed), signer = 04 || x || y
    (65 bytes), a point of the curve's prime-order group."""
    import gmalg  # only SM2 statements need it

    if len(signer) != 65 or signer[0] != 0x04 or len(signature) != 64:
        return False
    try:
        v = gmalg.SM2(pk=signer, uid=SM2_ID)
        return v.verify_pk(signer) and v.verify(signed, signature[:32], signature[32:])
    except Exception:
        return False


def record_signature_fault(alg, signer, signature, signed):
    """Why the record signature fails (None when it verifies): the key's length
    names the algorithm, and the statement's alg must be that algorithm's."""
    if not isinstance(signer, bytes) or not isinstance(signature, bytes):
        return "the kid or the signature is not a byte string"
    if len(signer) == 32:
        if alg != ALG_EDDSA:
            return f"alg {alg!r} with a 32-byte (Ed25519) key; EdDSA ({ALG_EDDSA}) expected"
        try:
            Ed25519PublicKey.from_public_bytes(signer).verify(signature, signed)
        except Exception:
            return "the record signature does not verify"
        return None
    if len(signer) == 65:
        if alg != ALG_SM2_SM3:
            return f"alg {alg!r} with a 65-byte (SM2) key; {ALG_SM2_SM3} expected"
        if not sm2_verifies(signer, signature, signed):
            return "the record signature does not verify"
        return None
    return f"a kid of {len(signer)} bytes is neither an Ed25519 nor an SM2 key"


def verify(statement_path, genesis_path, quorum):
    raw = open(statement_path, "rb").read()
    tag = cbor2.loads(raw)
    if not isinstance(tag, cbor2.CBORTag) or tag.tag != 18:
        return fail("not a tagged COSE_Sign1")
    phdr_bytes, uhdr, payload, signature = tag.value
    phdr = cbor2.loads(phdr_bytes)
    signer = phdr.get(KID)
    signed = TX_DOMAIN + payload
    fault = record_signature_fault(phdr.get(ALG), signer, signature, signed)
    if fault:
        return fail(fault)
    tx_id = sha256(signed)
    leaf = sha256(b"\x00" + tx_id)
    validators = {
        v["name"]: bytes.fromhex(v["public_key"])
        for v in json.load(open(genesis_path))["validators"]
    }
    good = set()
    for receipt in uhdr.get(RECEIPTS, []):
        msg = Sign1Message.decode(receipt)
        rphdr = cbor2.loads(msg.phdr_encoded)
        name = rphdr[4].decode()
        if rphdr.get(VDS) != RFC9162_SHA256:
            return fail(f"receipt by {name}: vds is not RFC9162_SHA256")
        if name not in validators:
            print(f"receipt by unknown key {name!r} ignored")
            continue
        # The unprotected header as sent (pycose may rename labels it knows).
        runprot = cbor2.loads(receipt).value[1]
        proofs = runprot[VDP][INCLUSION]
        size, index, path = cbor2.loads(proofs[0])
        root = root_from_inclusion(leaf, index, size, path)
        msg.key = cose_key(validators[name])
        if not msg.verify_signature(detached_payload=root):
            return fail(f"receipt by {name}: the signature does not verify over the root")
        good.add(name)
        print(f"receipt by {name}: leaf {index} of {size}, root {root.hex()}")
    if len(good) < quorum:
        return fail(f"receipts by {len(good)} validators; {quorum} needed")
    print(f"VERIFIED: tx {tx_id.hex()}, receipts by {', '.join(sorted(good))}")
    return 0


def fail(why):
    print(f"NOT VERIFIED: {why}")
    return 1


def tamper(kind, statement_path, out_path):
    tag = cbor2.loads(open(statement_path, "rb").read())
    phdr, uhdr, payload, signature = tag.value
    receipts = [cbor2.loads(r) for r in uhdr[RECEIPTS]]
    if kind == "payload":
        # Every body has a nonce; changing it changes the signed bytes.
        changed = payload.replace(b'"nonce":"', b'"nonce":"X', 1)
        if changed == payload:
            raise SystemExit("the payload has no nonce to change")
        payload = changed
    elif kind == "proof":
        r = receipts[0]
        proof = cbor2.loads(r.value[1][VDP][INCLUSION][0])
        if proof[2]:
            proof[2][0] = bytes([proof[2][0][0] ^ 1]) + proof[2][0][1:]
        else:  # a tree of one leaf: claim another size
            proof[0] += 1
        r.value[1][VDP][INCLUSION][0] = cbor2.dumps(proof)
    elif kind == "signature":
        r = receipts[0]
        r.value[3] = bytes([r.value[3][0] ^ 1]) + r.value[3][1:]
    elif kind == "drop":
        receipts = receipts[:1]
    else:
        raise SystemExit(f"unknown tampering {kind}")
    uhdr[RECEIPTS] = [cbor2.dumps(r) for r in receipts]
    out = cbor2.dumps(cbor2.CBORTag(18, [phdr, uhdr, payload, signature]))
    open(out_path, "wb").write(out)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "verify":
        sys.exit(verify(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    if sys.argv[1] == "tamper":
        sys.exit(tamper(sys.argv[2], sys.argv[3], sys.argv[4]))
    raise SystemExit(__doc__)
