//! SCITT transparent statements (RFC 9943) with COSE receipts (RFC 9942):
//! a committed record as COSE, for tooling that speaks transparency
//! services rather than ZSL bundles (docs/evidence.md, "SCITT").
//!
//! - The **signed statement** is a tagged COSE_Sign1 whose payload is the
//!   record's body in RFC 8785 form and whose signature is the record's own
//!   Ed25519 signature. ZSL records were signed before COSE: the signature is
//!   over `TX_DOMAIN ‖ payload` (docs/signing.md), not over COSE's
//!   `Sig_structure`, and the protected header says so
//!   ([`LABEL_SIGNED_OVER`]). A generic COSE library therefore checks the
//!   receipts, and the record signature is checked as ZSL defines it.
//! - Each **receipt** is a tagged COSE_Sign1 by one validator, with
//!   `vds` = RFC9162_SHA256, the inclusion proof `[tree_size, leaf_index,
//!   path]` in `vdp`, and a detached payload: the root that the proof
//!   recomputes from the leaf. The leaf's entry is the tx id,
//!   `SHA-256(TX_DOMAIN ‖ payload)`; leaf hash `SHA-256(0x00 ‖ tx id)`, as in
//!   the ledger's tree. A validator signs a receipt root only for a
//!   checkpoint its own ledger holds sealed by the quorum, and the protected
//!   header names nothing record-specific, so one signature per validator
//!   per checkpoint serves every record under it.
//! - The statement carries at least a quorum of receipts (label 394), and
//!   the ZSL evidence bundle (a private-use label), so `zsl verify` checks
//!   the validator set in force and everything else a bundle proves.
//!
//! Pure: no clock, no I/O.

use coset::cbor::Value;
use coset::iana;
use coset::{
    CoseSign1, CoseSign1Builder, Header, HeaderBuilder, Label, ProtectedHeader,
    TaggedCborSerializable,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::evidence::{self, Bundle, Genesis, Report};
use crate::hash::H32;
use crate::merkle;
use crate::seal;
use crate::signing::{SigAlg, SignedTx, TX_DOMAIN};

/// COSE header `receipts` (RFC 9943 / 9942): an array of receipts, each a
/// tagged COSE_Sign1 in a byte string.
pub const LABEL_RECEIPTS: i64 = 394;
/// COSE header `vds`: the verifiable data structure.
pub const LABEL_VDS: i64 = 395;
/// COSE header `vdp`: the verifiable data structure's proofs.
pub const LABEL_VDP: i64 = 396;
/// `vds` value RFC9162_SHA256.
pub const VDS_RFC9162_SHA256: i64 = 1;
/// `vdp` key of RFC9162_SHA256 inclusion proofs.
pub const VDP_INCLUSION_PROOFS: i64 = -1;
/// COSE header `CWT_Claims` (RFC 9597) and its claims used here.
pub const LABEL_CWT_CLAIMS: i64 = 15;
pub const CWT_ISS: i64 = 1;
pub const CWT_SUB: i64 = 2;
/// Private use: the ZSL evidence bundle (JSON bytes) in the statement's
/// unprotected header.
pub const LABEL_ZSL_EVIDENCE: i64 = -65_537;
/// Private use, protected header of the signed statement: the bytes the
/// record signature covers besides the payload, as a prefix
/// (`ZSL-TX-V1\0`): the signature is over `prefix ‖ payload`.
pub const LABEL_SIGNED_OVER: i64 = -65_538;
/// Content type of the payload.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/json";
/// The media type a transparent statement is served as.
pub const MEDIA_TYPE: &str = "application/cose; cose-type=\"cose-sign1\"";
/// Bytes of a transparent statement a verifier reads at most: a bundle and
/// its receipts.
pub const STATEMENT_BYTES_MAX: usize = 2 * evidence::BUNDLE_BYTES_MAX;
/// Receipts a statement may carry (at most one counts per validator).
pub const RECEIPTS_MAX: usize = seal::VALIDATORS_MAX * 2;

/// Check names added to a bundle's (stable: tools and tests match on them).
pub mod check {
    /// The COSE structure, and the bundle it carries.
    pub const STATEMENT: &str = "scitt_statement";
    /// The signed statement is the bundle's record, signed by its signer.
    pub const SIGNED_STATEMENT: &str = "signed_statement";
    /// At least a quorum of valid receipts by validators in force.
    pub const RECEIPTS: &str = "receipts";
}

/// One validator's signature over a checkpoint's receipt root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSignature {
    pub validator: String,
    pub signature: [u8; 64],
}

fn int(label: i64) -> Label {
    Label::Int(label)
}

/// The protected header of every receipt `validator` signs for this log:
/// EdDSA, `kid` = the validator's name, `vds` = RFC9162_SHA256, CWT issuer =
/// the checkpoints' origin. Nothing in it depends on the record.
pub fn receipt_protected(origin: &str, validator: &str) -> ProtectedHeader {
    let claims = Value::Map(vec![(
        Value::Integer(CWT_ISS.into()),
        Value::Text(origin.to_string()),
    )]);
    ProtectedHeader {
        original_data: None,
        header: HeaderBuilder::new()
            .algorithm(iana::Algorithm::EdDSA)
            .key_id(validator.as_bytes().to_vec())
            .value(LABEL_VDS, Value::Integer(VDS_RFC9162_SHA256.into()))
            .value(LABEL_CWT_CLAIMS, claims)
            .build(),
    }
}

/// COSE `Sig_structure` of a receipt: context `Signature1`, the protected
/// header, empty external AAD, the detached payload `root`.
pub fn receipt_to_be_signed(protected: &ProtectedHeader, root: &H32) -> Vec<u8> {
    coset::sig_structure_data(
        coset::SignatureContext::CoseSign1,
        protected.clone(),
        None,
        &[],
        &root.0,
    )
}

/// `validator`'s receipt signature over a sealed checkpoint's root.
pub fn sign_receipt(key: &SigningKey, origin: &str, validator: &str, root: &H32) -> [u8; 64] {
    let tbs = receipt_to_be_signed(&receipt_protected(origin, validator), root);
    key.sign(&tbs).to_bytes()
}

/// Whether `sig` is `validator`'s receipt signature over `root`.
pub fn receipt_signature_verifies(
    key: &VerifyingKey,
    origin: &str,
    validator: &str,
    root: &H32,
    sig: &[u8; 64],
) -> bool {
    let tbs = receipt_to_be_signed(&receipt_protected(origin, validator), root);
    key.verify_strict(&tbs, &Signature::from_bytes(sig)).is_ok()
}

/// `bstr .cbor [tree_size, leaf_index, [+ bstr]]`.
fn inclusion_proof(tree_size: u64, leaf_index: u64, path: &[H32]) -> Result<Value, String> {
    let proof = Value::Array(vec![
        Value::Integer(tree_size.into()),
        Value::Integer(leaf_index.into()),
        Value::Array(path.iter().map(|h| Value::Bytes(h.0.to_vec())).collect()),
    ]);
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(&proof, &mut out).map_err(|e| e.to_string())?;
    Ok(Value::Bytes(out))
}

fn receipt_bytes(
    origin: &str,
    s: &ReceiptSignature,
    b: &Bundle,
    tree_size: u64,
) -> Result<Vec<u8>, String> {
    let proofs = Value::Map(vec![(
        Value::Integer(VDP_INCLUSION_PROOFS.into()),
        Value::Array(vec![inclusion_proof(
            tree_size,
            b.leaf_index,
            &b.inclusion,
        )?]),
    )]);
    let receipt = CoseSign1Builder::new()
        .protected(receipt_protected(origin, &s.validator).header)
        .unprotected(HeaderBuilder::new().value(LABEL_VDP, proofs).build())
        .signature(s.signature.to_vec())
        .build();
    receipt.to_tagged_vec().map_err(|e| e.to_string())
}

/// The record's transparent statement: the signed statement, with one
/// receipt per signature in `receipts` (validators' signatures over the
/// root of the bundle's checkpoint) and the bundle itself.
pub fn transparent_statement(
    b: &Bundle,
    origin: &str,
    receipts: &[ReceiptSignature],
) -> Result<Vec<u8>, String> {
    let tx = SignedTx::from_value(b.record.clone()).map_err(|r| format!("record: {r}"))?;
    let payload = tx.signed_bytes[TX_DOMAIN.len()..].to_vec();
    let cp = evidence::parse_checkpoint(&b.checkpoint)?;
    let protected = statement_protected(b, &tx);
    let receipts = receipts
        .iter()
        .map(|s| receipt_bytes(origin, s, b, cp.tree_size).map(Value::Bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let bundle = serde_json::to_vec(b).map_err(|e| e.to_string())?;
    let unprotected = HeaderBuilder::new()
        .value(LABEL_RECEIPTS, Value::Array(receipts))
        .value(LABEL_ZSL_EVIDENCE, Value::Bytes(bundle))
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(payload)
        .signature(tx.sig.to_vec())
        .build()
        .to_tagged_vec()
        .map_err(|e| e.to_string())
}

/// The signed statement's protected header: EdDSA, JSON payload, `kid` =
/// the signer's public key, CWT issuer = the signer's account and subject =
/// the record type, and the prefix the signature covers.
fn statement_protected(b: &Bundle, tx: &SignedTx) -> Header {
    let kind = tx.body.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let claims = Value::Map(vec![
        (
            Value::Integer(CWT_ISS.into()),
            Value::Text(b.signer_key.account.clone()),
        ),
        (
            Value::Integer(CWT_SUB.into()),
            Value::Text(kind.to_string()),
        ),
    ]);
    let mut h = HeaderBuilder::new()
        .content_type(PAYLOAD_CONTENT_TYPE.to_string())
        .key_id(tx.signer.as_ref().to_vec())
        .value(LABEL_CWT_CLAIMS, claims)
        .value(LABEL_SIGNED_OVER, Value::Bytes(TX_DOMAIN.to_vec()))
        .build();
    h.alg = Some(match tx.signer.alg() {
        SigAlg::Ed25519 => coset::Algorithm::Assigned(iana::Algorithm::EdDSA),
        // No COSE algorithm is registered for SM2 with SM3: a private-use value.
        SigAlg::Sm2Sm3 => coset::Algorithm::PrivateUse(ALG_SM2_SM3),
    });
    h
}

/// The private-use COSE algorithm (RFC 9053 §16.4: below −65536) of a
/// statement whose record an SM2 key signed.
pub const ALG_SM2_SM3: i64 = -65537;

/// A protected header's bytes as received, or as encoded when built here.
fn protected_bytes(p: &ProtectedHeader) -> Result<Vec<u8>, String> {
    match &p.original_data {
        Some(b) => Ok(b.clone()),
        None => coset::CborSerializable::to_vec(p.header.clone()).map_err(|e| e.to_string()),
    }
}

/// Whether `got` holds exactly the bytes this module writes for `want`:
/// the protected headers are not covered by the record signature (the
/// statement's) or say what the signature covers (a receipt's), so no
/// other value, order or encoding is accepted.
fn same_header(got: &ProtectedHeader, want: Header) -> Result<bool, String> {
    let want = coset::CborSerializable::to_vec(want).map_err(|e| e.to_string())?;
    Ok(protected_bytes(got)? == want)
}

fn header_value(h: &Header, label: i64) -> Option<&Value> {
    h.rest
        .iter()
        .find(|(l, _)| *l == int(label))
        .map(|(_, v)| v)
}

fn uint(v: &Value) -> Option<u64> {
    v.as_integer().and_then(|i| u64::try_from(i).ok())
}

/// A statement taken apart: the signed statement and its bundle.
struct Parsed {
    statement: CoseSign1,
    bundle: Bundle,
}

/// A tagged COSE_Sign1 in exactly the encoding it re-encodes to, so no
/// byte of it is malleable (`undefined` for `null`, a longer integer, …).
fn decode_exact(bytes: &[u8]) -> Result<CoseSign1, String> {
    let c =
        CoseSign1::from_tagged_slice(bytes).map_err(|e| format!("not a tagged COSE_Sign1: {e}"))?;
    match c.clone().to_tagged_vec() {
        Ok(again) if again == bytes => Ok(c),
        _ => Err("a COSE_Sign1 in another encoding than the one it re-encodes to".into()),
    }
}

fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    if bytes.len() > STATEMENT_BYTES_MAX {
        return Err(format!("the statement is over {STATEMENT_BYTES_MAX} bytes"));
    }
    let statement = decode_exact(bytes)?;
    let bundle = match header_value(&statement.unprotected, LABEL_ZSL_EVIDENCE) {
        Some(Value::Bytes(b)) => evidence::parse_bundle(b)?,
        _ => {
            return Err(format!(
                "no ZSL evidence bundle (label {LABEL_ZSL_EVIDENCE})"
            ))
        }
    };
    Ok(Parsed { statement, bundle })
}

/// Whether bytes look like a COSE transparent statement (CBOR tag 18) and
/// not a JSON bundle.
pub fn is_statement(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0xd2)
}

/// Verifies a transparent statement from the genesis spec alone: the
/// bundle it carries (every bundle check), then that the signed statement
/// is that bundle's record, and that its receipts by validators in force
/// prove the record under the bundle's checkpoint, a quorum of them.
pub fn verify(bytes: &[u8], trust: &Genesis) -> Report {
    verify_with_policy(bytes, trust, None)
}

/// [`verify`], and with a witness policy the bundle's `witnesses` check
/// ([`evidence::verify_with_policy`]).
pub fn verify_with_policy(
    bytes: &[u8],
    trust: &Genesis,
    policy: Option<&crate::witness::Policy>,
) -> Report {
    let p = match parse(bytes) {
        Ok(p) => p,
        Err(e) => return Report::failed_with(check::STATEMENT, e),
    };
    let mut r = evidence::verify_with_policy(&p.bundle, trust, policy);
    r.checks.insert(
        0,
        evidence::Check {
            name: check::STATEMENT.into(),
            ok: true,
            detail: "a tagged COSE_Sign1 carrying a ZSL evidence bundle".into(),
        },
    );
    r.push(check::SIGNED_STATEMENT, check_signed_statement(&p));
    r.push(check::RECEIPTS, check_receipts(&p, trust));
    r
}

fn check_signed_statement(p: &Parsed) -> Result<String, String> {
    let s = &p.statement;
    let h = &s.protected.header;
    let payload = s
        .payload
        .as_ref()
        .ok_or("the signed statement has no payload")?;
    let tx = SignedTx::from_value(p.bundle.record.clone()).map_err(|r| format!("record: {r}"))?;
    if !same_header(&s.protected, statement_protected(&p.bundle, &tx))? {
        return Err("the protected header is not EdDSA, application/json, the signer's key id, its account and record type, and the ZSL-TX-V1\\0 prefix".into());
    }
    // With the payload the record's signed body and the signature the
    // record's, the bundle's `record_signature` check is this signature's.
    if tx.signed_bytes[TX_DOMAIN.len()..] != payload[..] {
        return Err("the payload is not the bundle's record body in canonical form".into());
    }
    if h.key_id != tx.signer.as_ref() || s.signature != tx.sig {
        return Err("the statement's key id or signature is not the bundle record's".into());
    }
    Ok(format!(
        "the record {} as its signer signed it",
        p.bundle.tx_id
    ))
}

/// A receipt's parts once its shape is checked.
struct Receipt {
    validator: String,
    protected: ProtectedHeader,
    tree_size: u64,
    leaf_index: u64,
    path: Vec<H32>,
    signature: [u8; 64],
}

fn parse_receipt(bytes: &[u8], origin: &str) -> Result<Receipt, String> {
    let c = decode_exact(bytes)?;
    if c.payload.is_some() {
        return Err("the payload is not detached".into());
    }
    let h = &c.protected.header;
    let validator = String::from_utf8(h.key_id.clone()).map_err(|_| "kid is not UTF-8")?;
    if !same_header(&c.protected, receipt_protected(origin, &validator).header)? {
        return Err(format!(
            "the protected header is not EdDSA, kid, vds RFC9162_SHA256 and issuer `{origin}`"
        ));
    }
    let proofs = match header_value(&c.unprotected, LABEL_VDP) {
        Some(Value::Map(m)) => m
            .iter()
            .find_map(|(k, v)| (k.as_integer() == Some(VDP_INCLUSION_PROOFS.into())).then_some(v)),
        _ => None,
    };
    let proof = match proofs {
        Some(Value::Array(a)) if a.len() == 1 => match &a[0] {
            Value::Bytes(b) => b.clone(),
            _ => return Err("the inclusion proof is not a byte string".into()),
        },
        _ => return Err("vdp does not hold exactly one inclusion proof".into()),
    };
    let (tree_size, leaf_index, path) = parse_proof(&proof)?;
    let signature = <[u8; 64]>::try_from(c.signature.as_slice())
        .map_err(|_| "the signature is not 64 bytes")?;
    Ok(Receipt {
        validator,
        protected: c.protected,
        tree_size,
        leaf_index,
        path,
        signature,
    })
}

fn parse_proof(bytes: &[u8]) -> Result<(u64, u64, Vec<H32>), String> {
    let v: Value =
        coset::cbor::de::from_reader(bytes).map_err(|e| format!("inclusion proof: {e}"))?;
    let bad = || "the inclusion proof is not [tree_size, leaf_index, [+ bstr]]".to_string();
    let Value::Array(a) = v else {
        return Err(bad());
    };
    let [size, index, Value::Array(path)] = a.as_slice() else {
        return Err(bad());
    };
    if path.len() > 64 {
        return Err(bad());
    }
    let path = path
        .iter()
        .map(|h| match h {
            Value::Bytes(b) => <[u8; 32]>::try_from(b.as_slice())
                .map(H32)
                .map_err(|_| bad()),
            _ => Err(bad()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        uint(size).ok_or_else(bad)?,
        uint(index).ok_or_else(bad)?,
        path,
    ))
}

/// Receipts by validators in force, each proving the bundle's leaf under the
/// bundle's checkpoint: every one by a known validator must verify (as with
/// note signatures, receipts by unknown keys are ignored), and distinct
/// validators must reach the quorum.
fn check_receipts(p: &Parsed, trust: &Genesis) -> Result<String, String> {
    let b = &p.bundle;
    let cp = evidence::parse_checkpoint(&b.checkpoint)?;
    let (set, quorum) = evidence::validators_in_force(b, trust)?;
    let list = match header_value(&p.statement.unprotected, LABEL_RECEIPTS) {
        Some(Value::Array(a)) => a,
        _ => return Err(format!("no receipts (label {LABEL_RECEIPTS})")),
    };
    if list.len() > RECEIPTS_MAX {
        return Err(format!("over {RECEIPTS_MAX} receipts"));
    }
    let leaf = merkle::leaf_hash(&b.tx_id.0);
    let mut by = std::collections::BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        let Value::Bytes(bytes) = item else {
            return Err(format!("receipt {i} is not a byte string"));
        };
        let r = parse_receipt(bytes, &trust.log.origin).map_err(|e| format!("receipt {i}: {e}"))?;
        let Some(v) = set.iter().find(|v| v.name == r.validator) else {
            continue;
        };
        if r.tree_size != cp.tree_size || r.leaf_index != b.leaf_index {
            return Err(format!(
                "receipt {i} ({}) proves leaf {} of a tree of {}, not leaf {} of the checkpoint's {}",
                r.validator, r.leaf_index, r.tree_size, b.leaf_index, cp.tree_size
            ));
        }
        let path: Vec<merkle::Hash> = r.path.iter().map(|h| h.0).collect();
        merkle::verify_inclusion(&leaf, r.leaf_index, r.tree_size, &path, &cp.root.0).map_err(
            |e| {
                format!(
                    "receipt {i} ({}): the proof does not lead to the checkpoint's root: {e}",
                    r.validator
                )
            },
        )?;
        let key = VerifyingKey::from_bytes(&seal::public_key(v).map_err(|e| e.to_string())?)
            .map_err(|_| format!("validator {}'s key is not a valid Ed25519 key", v.name))?;
        let tbs = receipt_to_be_signed(&r.protected, &cp.root);
        key.verify_strict(&tbs, &Signature::from_bytes(&r.signature))
            .map_err(|_| format!("receipt {i}: {}'s signature does not verify", r.validator))?;
        by.insert(r.validator);
    }
    if by.len() < quorum {
        return Err(format!(
            "receipts by {} of the {} validators in force; {quorum} needed",
            by.len(),
            set.len()
        ));
    }
    let names: Vec<&str> = by.iter().map(String::as_str).collect();
    Ok(format!(
        "receipts by {} ({} of {}, {quorum} needed) prove leaf {} under the checkpoint of tree size {}",
        names.join(", "),
        by.len(),
        set.len(),
        b.leaf_index,
        cp.tree_size
    ))
}

#[cfg(test)]
mod tests;
