//! Signed transactions as clients send them: `{body, signer, sig}`.
//!
//! Signed bytes = [`TX_DOMAIN`] ‖ RFC 8785 (JCS) bytes of `body`.
//! `sig` = Ed25519 (or, for SM2 keys, SM2-SM3: [`keys`]) over the signed
//! bytes; tx id = SHA-256 of the signed bytes.
//! The signature is not part of the id, so an id cannot be changed by
//! re-signing. `docs/signing.md` spells this out for other languages.

use ed25519_dalek::{Signature, SigningKey};
use serde_json::{Map, Value};

mod keys;
#[cfg(test)]
pub(crate) use keys::gmt_a2_key;
pub use keys::{AccountSigningKey, BadSm2SecretKey, SigAlg, SignerKey, Verifier, SM2_ID};

use crate::hash::sha256;
use crate::refusal::{refuse, Refusal, RefusalCode};
use crate::strict_json::StrictJsonError;

/// Domain separation: a ZSL transaction signature can never be mistaken for
/// a signature over anything else (a checkpoint, another protocol).
pub const TX_DOMAIN: &[u8] = b"ZSL-TX-V1\x00";

/// Upper bound on a submitted transaction's JSON, before any parsing.
pub const TX_BYTES_MAX: usize = 16 * 1024;

pub type TxId = [u8; 32];

/// A transaction whose envelope parsed and whose id is computed. The signature
/// is not yet checked: the state machine checks it (in batches) against the
/// account's keys.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedTx {
    pub body: Map<String, Value>,
    pub signer: SignerKey,
    pub sig: [u8; 64],
    /// `TX_DOMAIN ‖ JCS(body)`.
    pub signed_bytes: Vec<u8>,
    pub id: TxId,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    body: Value,
    signer: String,
    sig: String,
}

/// Parses outside JSON strictly ([`crate::strict_json`]): a duplicate
/// member name is `duplicate_key`, anything else unreadable is `syntax`.
pub fn parse_strict(bytes: &[u8], syntax: RefusalCode) -> Result<Value, Refusal> {
    crate::strict_json::parse(bytes).map_err(|e| match e {
        StrictJsonError::DuplicateKey(_) => refuse(RefusalCode::DuplicateKey, e.to_string()),
        StrictJsonError::Syntax(_) => refuse(syntax, e.to_string()),
    })
}

/// The JCS bytes of a JSON value.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, Refusal> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| {
        refuse(
            RefusalCode::MalformedBody,
            format!("body cannot be canonicalized: {e}"),
        )
    })
}

pub fn signed_bytes_of(body: &Map<String, Value>) -> Result<Vec<u8>, Refusal> {
    let jcs = canonical_json(&Value::Object(body.clone()))?;
    let mut out = Vec::with_capacity(TX_DOMAIN.len() + jcs.len());
    out.extend_from_slice(TX_DOMAIN);
    out.extend_from_slice(&jcs);
    Ok(out)
}

fn decode_hex<const N: usize>(field: &str, text: &str) -> Result<[u8; N], Refusal> {
    let mut out = [0u8; N];
    // Lowercase only: one spelling per value, as the node writes it.
    let lowercase = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let decoded = if lowercase {
        hex::decode_to_slice(text, &mut out)
    } else {
        Err(hex::FromHexError::InvalidStringLength)
    };
    decoded.map_err(|_| {
        refuse(
            RefusalCode::MalformedTx,
            format!("`{field}` must be {} lowercase hex characters", N * 2),
        )
    })?;
    Ok(out)
}

impl SignedTx {
    /// Parses a submitted transaction. Refuses anything over [`TX_BYTES_MAX`],
    /// anything that is not exactly `{body, signer, sig}`, and a body that is not an object.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, Refusal> {
        if bytes.len() > TX_BYTES_MAX {
            return Err(refuse(
                RefusalCode::TxTooLarge,
                format!(
                    "transaction is {} bytes; the limit is {TX_BYTES_MAX}",
                    bytes.len()
                ),
            ));
        }
        Self::from_value(parse_strict(bytes, RefusalCode::MalformedTx)?)
    }

    /// Reads the envelope from a parsed value: exactly the object
    /// `{body, signer, sig}` (not an array of the three, no other member).
    pub fn from_value(value: Value) -> Result<Self, Refusal> {
        if !value.is_object() {
            return Err(refuse(
                RefusalCode::MalformedTx,
                "a transaction is the JSON object {\"body\", \"signer\", \"sig\"}",
            ));
        }
        let envelope: Envelope = serde_json::from_value(value).map_err(|e| {
            refuse(
                RefusalCode::MalformedTx,
                format!("a transaction is {{\"body\", \"signer\", \"sig\"}}: {e}"),
            )
        })?;
        let Value::Object(body) = envelope.body else {
            return Err(refuse(
                RefusalCode::MalformedBody,
                "`body` must be a JSON object",
            ));
        };
        let signer = parse_signer(&envelope.signer)?;
        let sig = decode_hex::<64>("sig", &envelope.sig)?;
        Self::from_parts(body, signer, sig)
    }

    pub fn from_parts(
        body: Map<String, Value>,
        signer: SignerKey,
        sig: [u8; 64],
    ) -> Result<Self, Refusal> {
        let signed_bytes = signed_bytes_of(&body)?;
        if signed_bytes.len() > TX_BYTES_MAX {
            return Err(refuse(
                RefusalCode::TxTooLarge,
                "canonical body exceeds the transaction size limit",
            ));
        }
        let id = sha256(&signed_bytes);
        Ok(Self {
            body,
            signer,
            sig,
            signed_bytes,
            id,
        })
    }

    /// Signs `body` with an Ed25519 `key` (for clients, tests, replay and the CLI).
    pub fn sign(body: Map<String, Value>, key: &SigningKey) -> Result<Self, Refusal> {
        Self::sign_with(body, &AccountSigningKey::Ed25519(key.clone()))
    }

    /// Signs `body` with an account key of either algorithm.
    pub fn sign_with(body: Map<String, Value>, key: &AccountSigningKey) -> Result<Self, Refusal> {
        let signed_bytes = signed_bytes_of(&body)?;
        let sig = key.sign(&signed_bytes);
        let id = sha256(&signed_bytes);
        Ok(Self {
            body,
            signer: key.public(),
            sig,
            signed_bytes,
            id,
        })
    }

    /// The wire form `{body, signer, sig}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "body": Value::Object(self.body.clone()),
            "signer": hex::encode(self.signer),
            "sig": hex::encode(self.sig),
        })
    }

    /// Checks the signature alone (strict: rejects small-order keys and non-canonical signatures).
    pub fn verify_signature(&self) -> Result<(), Refusal> {
        verify_one(&self.signer, &self.signed_bytes, &self.sig)
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }
}

/// Reads `signer`: an Ed25519 or SM2 key's one spelling ([`SignerKey::parse_hex`]).
fn parse_signer(text: &str) -> Result<SignerKey, Refusal> {
    SignerKey::parse_hex(text).ok_or_else(|| {
        refuse(
            RefusalCode::MalformedTx,
            "`signer` must be 64 lowercase hex characters (Ed25519) or 130 starting `04` (SM2)",
        )
    })
}

/// Strict verification of one signature under `signer`.
fn verify_one(signer: &SignerKey, msg: &[u8], sig: &[u8; 64]) -> Result<(), Refusal> {
    let Some(v) = signer.verifier() else {
        return Err(refuse(
            RefusalCode::BadSignature,
            format!(
                "`signer` is not a valid {} public key",
                signer.alg().label()
            ),
        ));
    };
    if !v.verify(msg, sig) {
        return Err(refuse(
            RefusalCode::BadSignature,
            "signature does not verify over the signed bytes",
        ));
    }
    Ok(())
}

/// First byte of a [`TxFrame`]'s bytes for an Ed25519 signer. A JSON wire
/// starts with `{` or whitespace, so a proposal's entries say by themselves
/// which form they are.
pub const FRAME_TAG: u8 = 0x01;
/// First byte of a frame whose signer is an SM2 key (65 bytes).
pub const FRAME_TAG_SM2: u8 = 0x02;
const FRAME_HEAD: usize = 1 + 32 + 64;
const FRAME_HEAD_SM2: usize = 1 + 65 + 64;

/// A transaction as block proposals carry it: `FRAME_TAG ‖ signer (32) ‖
/// sig (64) ‖ signed bytes` (or `FRAME_TAG_SM2 ‖ signer (65) ‖ sig (64) ‖
/// signed bytes`), the signed bytes being `TX_DOMAIN ‖ JCS(body)`
/// exactly as the client signed them. Nodes check that the body is already
/// canonical ([`crate::jcs`]) instead of canonicalising it again, and parse
/// records straight from those bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxFrame {
    pub signer: SignerKey,
    pub sig: [u8; 64],
    /// `TX_DOMAIN ‖ JCS(body)`.
    pub signed_bytes: Vec<u8>,
    pub id: TxId,
}

impl TxFrame {
    /// Reads a frame, refusing anything whose signed bytes are not
    /// `TX_DOMAIN ‖` a canonical JSON object within the size limit.
    pub fn parse(bytes: &[u8]) -> Result<Self, Refusal> {
        let head = match bytes.first() {
            Some(&FRAME_TAG) => FRAME_HEAD,
            Some(&FRAME_TAG_SM2) => FRAME_HEAD_SM2,
            _ => return Err(refuse(RefusalCode::MalformedTx, "not a transaction frame")),
        };
        if bytes.len() > head + TX_BYTES_MAX {
            return Err(refuse(
                RefusalCode::TxTooLarge,
                "canonical body exceeds the transaction size limit",
            ));
        }
        if bytes.len() < head + TX_DOMAIN.len() {
            return Err(refuse(RefusalCode::MalformedTx, "not a transaction frame"));
        }
        let signer = SignerKey::from_bytes(&bytes[1..head - 64]).ok_or_else(|| {
            refuse(
                RefusalCode::MalformedTx,
                "an SM2 signer is an uncompressed point (04 ‖ x ‖ y)",
            )
        })?;
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&bytes[head - 64..head]);
        Self::from_signed_bytes(signer, sig, bytes[head..].to_vec())
    }

    fn from_signed_bytes(
        signer: SignerKey,
        sig: [u8; 64],
        signed_bytes: Vec<u8>,
    ) -> Result<Self, Refusal> {
        let canonical = signed_bytes.starts_with(TX_DOMAIN)
            && crate::jcs::is_canonical_object(&signed_bytes[TX_DOMAIN.len()..]);
        if !canonical {
            return Err(refuse(
                RefusalCode::MalformedBody,
                "the signed bytes are not the domain prefix and a body in RFC 8785 canonical form",
            ));
        }
        let id = sha256(&signed_bytes);
        Ok(Self {
            signer,
            sig,
            signed_bytes,
            id,
        })
    }

    /// Reads a submitted JSON wire `{body, signer, sig}`. When the client
    /// sent the body already in canonical form (as signed), its bytes are
    /// taken as they are, without building a JSON tree; otherwise the body
    /// is canonicalised ([`SignedTx::from_json_bytes`], which also gives the
    /// refusal for anything malformed). Both give the same frame.
    pub fn from_wire(bytes: &[u8]) -> Result<Self, Refusal> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawEnvelope<'a> {
            #[serde(borrow)]
            body: &'a serde_json::value::RawValue,
            signer: &'a str,
            sig: &'a str,
        }
        let fast = || -> Option<Self> {
            // serde also reads a struct from an array; the envelope is an object.
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
            if bytes.len() > TX_BYTES_MAX || first != Some(&b'{') {
                return None;
            }
            let e: RawEnvelope<'_> = serde_json::from_slice(bytes).ok()?;
            let body = e.body.get().as_bytes();
            if body.len() + TX_DOMAIN.len() > TX_BYTES_MAX || !crate::jcs::is_canonical_object(body)
            {
                return None;
            }
            let signer = SignerKey::parse_hex(e.signer)?;
            let sig = decode_hex::<64>("sig", e.sig).ok()?;
            let mut signed_bytes = Vec::with_capacity(TX_DOMAIN.len() + body.len());
            signed_bytes.extend_from_slice(TX_DOMAIN);
            signed_bytes.extend_from_slice(body);
            let id = sha256(&signed_bytes);
            Some(Self {
                signer,
                sig,
                signed_bytes,
                id,
            })
        };
        match fast() {
            Some(f) => Ok(f),
            None => Ok(SignedTx::from_json_bytes(bytes)?.frame()),
        }
    }

    /// Reads either form a proposal may carry: a frame, or (older entries,
    /// tests, tools) the JSON wire `{body, signer, sig}`, canonicalised here.
    pub fn from_proposed(bytes: &[u8]) -> Result<Self, Refusal> {
        if matches!(bytes.first(), Some(&FRAME_TAG | &FRAME_TAG_SM2)) {
            return Self::parse(bytes);
        }
        Self::from_wire(bytes)
    }

    /// The frame's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FRAME_HEAD_SM2 + self.signed_bytes.len());
        out.push(match self.signer {
            SignerKey::Ed25519(_) => FRAME_TAG,
            SignerKey::Sm2(_) => FRAME_TAG_SM2,
        });
        out.extend_from_slice(self.signer.as_ref());
        out.extend_from_slice(&self.sig);
        out.extend_from_slice(&self.signed_bytes);
        out
    }

    /// The canonical body (JSON bytes).
    pub fn body_json(&self) -> &[u8] {
        &self.signed_bytes[TX_DOMAIN.len()..]
    }

    /// The compact JSON wire `{"body":…,"signer":"…","sig":"…"}`, written
    /// around the canonical body without parsing it.
    pub fn wire_json(&self) -> Vec<u8> {
        let body = self.body_json();
        let mut out = Vec::with_capacity(body.len() + 32 + 2 * (65 + 64));
        out.extend_from_slice(b"{\"body\":");
        out.extend_from_slice(body);
        out.extend_from_slice(b",\"signer\":\"");
        out.extend_from_slice(hex::encode(self.signer).as_bytes());
        out.extend_from_slice(b"\",\"sig\":\"");
        out.extend_from_slice(hex::encode(self.sig).as_bytes());
        out.extend_from_slice(b"\"}");
        out
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    /// The id, signature and signer: equal for two frames exactly when they
    /// carry the same signed bytes, signature and key.
    fn id_and_sig(&self) -> VerifiedFrame {
        (self.id, self.sig, self.signer)
    }

    /// Checks the signature alone (strict, as [`SignedTx::verify_signature`]).
    pub fn verify_signature(&self) -> Result<(), Refusal> {
        verify_one(&self.signer, &self.signed_bytes, &self.sig)
    }
}

impl SignedTx {
    /// This transaction as a proposal carries it.
    pub fn frame(&self) -> TxFrame {
        TxFrame {
            signer: self.signer,
            sig: self.sig,
            signed_bytes: self.signed_bytes.clone(),
            id: self.id,
        }
    }
}

/// Signatures verified together: batch verification amortises the
/// multiscalar multiplication. Chunks start at fixed positions of a
/// proposal, so every node verifies the same groups whatever its core
/// count, and the chunks run in parallel on every core.
pub const VERIFY_CHUNK: usize = 64;

/// Verifies many signatures at once; returns, per transaction, whether it verified.
/// Batch verification per chunk; a chunk that fails is checked one by one
/// (strictly) to find the bad ones.
pub fn verify_many(txs: &[&SignedTx]) -> Vec<bool> {
    let frames: Vec<TxFrame> = txs.iter().map(|t| t.frame()).collect();
    let refs: Vec<&TxFrame> = frames.iter().collect();
    verify_frames(&refs, &KeyCache::default())
}

/// [`verify_many`] over frames, with decompressed keys from `keys`.
pub fn verify_frames(txs: &[&TxFrame], keys: &KeyCache) -> Vec<bool> {
    use rayon::prelude::*;
    let vks = keys.resolve(txs.iter().map(|t| &t.signer));
    let chunks: Vec<(&[&TxFrame], &[Option<Verifier>])> = txs
        .chunks(VERIFY_CHUNK)
        .zip(vks.chunks(VERIFY_CHUNK))
        .collect();
    // One chunk is verified here: handing it to the pool would only add two
    // thread switches to a lone client's round.
    let verdicts: Vec<Vec<bool>> = if chunks.len() == 1 {
        chunks
            .into_iter()
            .map(|(t, k)| verify_chunk(t, k))
            .collect()
    } else {
        chunks
            .into_par_iter()
            .map(|(t, k)| verify_chunk(t, k))
            .collect()
    };
    verdicts.into_iter().flatten().collect()
}

/// Verdicts for one chunk: its Ed25519 frames in one batch (checked one by
/// one if the batch fails), its SM2 frames one by one (SM2 has no batch
/// equation). Which frames are batched depends on the chunk alone, so every
/// node gives the same verdicts.
fn verify_chunk(txs: &[&TxFrame], keys: &[Option<Verifier>]) -> Vec<bool> {
    let batch_ok = ed25519_batch(txs, keys);
    txs.iter()
        .zip(keys)
        .map(|(t, k)| match k {
            Some(Verifier::Ed25519(_)) if batch_ok => true,
            Some(v) => v.verify(&t.signed_bytes, &t.sig),
            None => false,
        })
        .collect()
}

/// Whether the chunk's Ed25519 frames pass one batch verification. A chunk
/// with an unusable or weak key is checked one by one, as before SM2: weak
/// keys would pass `verify_batch`, which is not strict.
fn ed25519_batch(txs: &[&TxFrame], keys: &[Option<Verifier>]) -> bool {
    let mut vks = Vec::with_capacity(txs.len());
    let mut messages: Vec<&[u8]> = Vec::with_capacity(txs.len());
    let mut sigs = Vec::with_capacity(txs.len());
    for (t, k) in txs.iter().zip(keys) {
        match k {
            Some(Verifier::Ed25519(k)) if !k.is_weak() => {
                vks.push(*k);
                messages.push(&t.signed_bytes);
                sigs.push(Signature::from_bytes(&t.sig));
            }
            Some(Verifier::Sm2(_)) => {}
            _ => return false,
        }
    }
    // The batch equation is cofactored, so it may accept a signature with a
    // small-order component that verify_strict refuses. That changes nothing that
    // matters: keys are checked strictly when bound, and the tx id does not cover
    // the signature, so a malleated signature cannot create a second transaction.
    !vks.is_empty() && ed25519_dalek::verify_batch(&messages, &sigs, &vks).is_ok()
}

/// Parsed keys by their bytes: accounts sign many transactions;
/// decompressing an Ed25519 point costs about a tenth of a verification,
/// and an SM2 key's ZA is a hash over the curve and the point. Bounded:
/// cleared when full.
#[derive(Default)]
pub struct KeyCache {
    keys: std::sync::Mutex<std::collections::HashMap<SignerKey, Option<Verifier>>>,
}

/// Keys a [`KeyCache`] holds at most.
pub const KEY_CACHE_MAX: usize = 100_000;

impl KeyCache {
    fn resolve<'a>(&self, signers: impl Iterator<Item = &'a SignerKey>) -> Vec<Option<Verifier>> {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        signers
            .map(|s| {
                if let Some(k) = keys.get(s) {
                    return k.clone();
                }
                let k = s.verifier();
                if keys.len() >= KEY_CACHE_MAX {
                    keys.clear();
                }
                keys.insert(*s, k.clone());
                k
            })
            .collect()
    }
}

/// What a node knows about signatures across blocks: decompressed keys,
/// and the frames it verified itself before proposing them.
///
/// The leader verifies each transaction when it builds a proposal and drops
/// those that fail; every frame it proposes therefore satisfies the
/// (cofactored) batch equation, so any grouping of them verifies, on any
/// node. When the leader applies a proposal all of whose frames it verified
/// itself, [`Self::verify`] answers "all valid" without verifying again —
/// the answer every follower computes. A proposal with any frame it did not
/// verify (another leader's, or after a restart) is verified in full, as a
/// follower does.
#[derive(Default)]
pub struct SignatureCache {
    pub keys: KeyCache,
    verified: std::sync::Mutex<std::collections::HashSet<VerifiedFrame>>,
}

/// What [`SignatureCache`] remembers of a frame it verified.
type VerifiedFrame = (TxId, [u8; 64], SignerKey);

/// Frames a [`SignatureCache`] remembers as verified at most.
pub const VERIFIED_MAX: usize = 200_000;

impl SignatureCache {
    /// Verdicts for `txs`, as [`verify_frames`] gives them.
    pub fn verify(&self, txs: &[&TxFrame]) -> Vec<bool> {
        if !txs.is_empty() && self.take_all_verified(txs) {
            return vec![true; txs.len()];
        }
        verify_frames(txs, &self.keys)
    }

    /// Removes `txs` from the verified set if every one is in it.
    fn take_all_verified(&self, txs: &[&TxFrame]) -> bool {
        let mut set = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys: Vec<VerifiedFrame> = txs.iter().map(|t| t.id_and_sig()).collect();
        if !keys.iter().all(|k| set.contains(k)) {
            return false;
        }
        for k in &keys {
            set.remove(k);
        }
        true
    }

    /// Verifies `txs` for a proposal: remembers those that pass (so that
    /// applying them later costs no second verification) and returns the verdicts.
    pub fn verify_for_proposal(&self, txs: &[&TxFrame]) -> Vec<bool> {
        let verdicts = verify_frames(txs, &self.keys);
        let mut set = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if set.len() + txs.len() > VERIFIED_MAX {
            // Forgetting only costs a second verification.
            set.clear();
        }
        for (t, ok) in txs.iter().zip(&verdicts) {
            if *ok {
                set.insert(t.id_and_sig());
            }
        }
        verdicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;
    use serde_json::json;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn body() -> Map<String, Value> {
        let Value::Object(m) = json!({"type": "document.notarize", "chain_id": "zsl-test", "account": "a",
            "created_at": "2024-03-01T09:00:00+08:00", "nonce": "1", "document_hash": "00"})
        else {
            unreachable!()
        };
        m
    }

    /// RFC 8032 §7.1, TEST 1, 2 and 3: the Ed25519 implementation we sign with.
    #[test]
    fn rfc8032_vectors() {
        let cases = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
        ];
        for (sk, pk, msg, sig) in cases {
            let sk: [u8; 32] = hex::decode(sk).unwrap().try_into().unwrap();
            let key = SigningKey::from_bytes(&sk);
            assert_eq!(hex::encode(key.verifying_key().to_bytes()), pk);
            let msg = hex::decode(msg).unwrap();
            let s = key.sign(&msg);
            assert_eq!(hex::encode(s.to_bytes()), sig);
            assert!(key.verifying_key().verify_strict(&msg, &s).is_ok());
        }
    }

    /// RFC 8785 §3.2.2 / Appendix examples: key sorting, number and string forms.
    #[test]
    fn rfc8785_vectors() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let out = String::from_utf8(canonical_json(&v).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        // Sorting by UTF-16 code units (RFC 8785 §3.2.3).
        let v: Value = serde_json::from_str(r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#).unwrap();
        let out = String::from_utf8(canonical_json(&v).unwrap()).unwrap();
        let keys: Vec<&str> = vec![
            "\r",
            "1",
            "\u{80}",
            "\u{f6}",
            "\u{20ac}",
            "\u{1f600}",
            "\u{fb33}",
        ];
        let mut pos = 0;
        for k in keys {
            let needle = serde_json::to_string(k).unwrap();
            let found = out[pos..]
                .find(&needle[1..needle.len() - 1])
                .map(|p| p + pos);
            assert!(found.is_some(), "key {k:?} out of order in {out}");
            pos = found.unwrap();
        }
    }

    /// The body of docs/signing.md's worked example.
    fn worked_example_body() -> Map<String, Value> {
        let Value::Object(body) = json!({
            "type": "batch.code", "chain_id": "zsl-devnet", "account": "91350100M000100Y43",
            "created_at": "2024-03-01T09:00:00+08:00", "nonce": "erp-000001",
            "batch_id": "PORK-20240301-01", "product_id": "pork-chilled", "quantity": 250, "unit": "kg",
            "production_date": "2024-03-01", "expiry_date": "2024-03-06", "origin_region": "330102"
        }) else {
            unreachable!()
        };
        body
    }

    /// The worked example of docs/signing.md (also reproduced by docs/examples/sign.py).
    #[test]
    fn documented_worked_example() {
        let sk: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let tx = SignedTx::sign(worked_example_body(), &SigningKey::from_bytes(&sk)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&tx.signed_bytes[TX_DOMAIN.len()..]),
            r#"{"account":"91350100M000100Y43","batch_id":"PORK-20240301-01","chain_id":"zsl-devnet","created_at":"2024-03-01T09:00:00+08:00","expiry_date":"2024-03-06","nonce":"erp-000001","origin_region":"330102","product_id":"pork-chilled","production_date":"2024-03-01","quantity":250,"type":"batch.code","unit":"kg"}"#
        );
        assert_eq!(hex::encode(&tx.signed_bytes[..10]), "5a534c2d54582d563100");
        assert_eq!(hex::encode(tx.sig), "4ebddd65c6f83c2d9a487a7325c34bdb760543c21ec13a212e9e0b0e928f55588f433d6cb29714267fa99f819449d8bede95756d915cba68b5b82f97fbec100b");
        assert_eq!(
            tx.id_hex(),
            "5a5c6130498627e396025979edb0737a676ac5614d4b9105b36ff2cd04eff68c"
        );
    }

    /// The worked example of docs/signing.md signed with the GM/T 0003.5
    /// A.2 SM2 key: the same signed bytes and tx id as with Ed25519; the
    /// signature is deterministic (RFC 6979 with HMAC-SM3).
    #[test]
    fn sm2_worked_example() {
        let key = keys::gmt_a2_key();
        let tx = SignedTx::sign_with(worked_example_body(), &key).unwrap();
        assert_eq!(
            tx.id_hex(),
            "5a5c6130498627e396025979edb0737a676ac5614d4b9105b36ff2cd04eff68c"
        );
        assert_eq!(hex::encode(tx.signer), "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13");
        // Also verified by OpenSSL 3.0, gmssl and gmalg (docs/design/sm2-plan.md §4E).
        assert_eq!(hex::encode(tx.sig), "cbb4f6ad0b4325216e981a018891a7d70b933c7fa1965bf50c52c4ee60fd25a7bf9ab4f81b85d090806956af4d87848ceeb2b630718ad435921adb9c30148073");
        tx.verify_signature().unwrap();
        // Deterministic: the same key and body give the same signature.
        assert_eq!(
            SignedTx::sign_with(tx.body.clone(), &key).unwrap().sig,
            tx.sig
        );
        // Through the wire and the frame, both ways.
        let wire = serde_json::to_vec(&tx.to_json()).unwrap();
        let f = TxFrame::from_wire(&wire).unwrap();
        assert_eq!(f, tx.frame());
        assert_eq!(f.to_bytes()[0], FRAME_TAG_SM2);
        assert_eq!(TxFrame::parse(&f.to_bytes()).unwrap(), f);
        assert_eq!(TxFrame::from_proposed(&f.to_bytes()).unwrap(), f);
        assert_eq!(TxFrame::from_wire(&f.wire_json()).unwrap(), f);
        f.verify_signature().unwrap();
        // A compressed or off-prefix SM2 signer in a frame is refused.
        let mut bad = f.to_bytes();
        bad[1] = 0x02;
        assert_eq!(
            TxFrame::parse(&bad).unwrap_err().code,
            RefusalCode::MalformedTx
        );
        let mut forged = f.clone();
        forged.sig[40] ^= 1;
        assert_eq!(
            forged.verify_signature().unwrap_err().code,
            RefusalCode::BadSignature
        );
    }

    /// A chunk mixing Ed25519 and SM2 frames: the Ed25519 ones in a batch,
    /// the SM2 ones singly; a bad frame of either kind is found.
    #[test]
    fn mixed_chunks_find_the_bad_ones() {
        let sm2 = AccountSigningKey::generate_sm2();
        let frames: Vec<TxFrame> = (0..6u8)
            .map(|i| {
                let mut b = body();
                b.insert("nonce".into(), json!(format!("m{i}")));
                if i % 2 == 0 {
                    SignedTx::sign(b, &key(i + 1)).unwrap().frame()
                } else {
                    SignedTx::sign_with(b, &sm2).unwrap().frame()
                }
            })
            .collect();
        let refs: Vec<&TxFrame> = frames.iter().collect();
        let cache = SignatureCache::default();
        assert_eq!(cache.verify(&refs), vec![true; 6]);
        for bad_at in [2, 3] {
            let mut bad = frames[bad_at].clone();
            bad.sig[7] ^= 1;
            let mut all = refs.clone();
            all[bad_at] = &bad;
            let mut want = vec![true; 6];
            want[bad_at] = false;
            assert_eq!(cache.verify(&all), want);
        }
        // A verified frame whose signer is swapped is not taken from memory.
        assert_eq!(cache.verify_for_proposal(&refs[..2]), vec![true, true]);
        let mut swapped = frames[1].clone();
        swapped.signer = frames[0].signer;
        assert!(!cache.take_all_verified(&[&frames[0], &swapped]));
    }

    #[test]
    fn sign_parse_verify_roundtrip() {
        let tx = SignedTx::sign(body(), &key(7)).unwrap();
        let wire = serde_json::to_vec(&tx.to_json()).unwrap();
        let parsed = SignedTx::from_json_bytes(&wire).unwrap();
        assert_eq!(parsed.id, tx.id);
        parsed.verify_signature().unwrap();
        assert_eq!(&parsed.signed_bytes[..TX_DOMAIN.len()], TX_DOMAIN);
    }

    #[test]
    fn tampering_breaks_the_signature_and_changes_the_id() {
        let tx = SignedTx::sign(body(), &key(7)).unwrap();
        let mut b = tx.body.clone();
        b.insert("nonce".into(), json!("2"));
        let forged = SignedTx::from_parts(b, tx.signer, tx.sig).unwrap();
        assert_ne!(forged.id, tx.id);
        assert_eq!(
            forged.verify_signature().unwrap_err().code,
            RefusalCode::BadSignature
        );
    }

    #[test]
    fn envelope_errors_are_typed() {
        let cases: [(&[u8], RefusalCode); 5] = [
            (b"{", RefusalCode::MalformedTx),
            (
                br#"{"body": 1, "signer": "00", "sig": "00"}"#,
                RefusalCode::MalformedBody,
            ),
            (
                br#"{"body": {}, "signer": "zz", "sig": "00"}"#,
                RefusalCode::MalformedTx,
            ),
            (
                br#"{"body": {}, "signer": "00", "sig": "00", "x": 1}"#,
                RefusalCode::MalformedTx,
            ),
            (br#"[]"#, RefusalCode::MalformedTx),
        ];
        for (input, code) in cases {
            assert_eq!(
                SignedTx::from_json_bytes(input).unwrap_err().code,
                code,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let big = vec![b' '; TX_BYTES_MAX + 1];
        assert_eq!(
            SignedTx::from_json_bytes(&big).unwrap_err().code,
            RefusalCode::TxTooLarge
        );
    }

    #[test]
    fn frames_refuse_what_is_not_canonical_or_too_big() {
        let tx = SignedTx::sign(body(), &key(7)).unwrap();
        let f = tx.frame();
        let mut bytes = f.to_bytes();
        assert_eq!(TxFrame::parse(&bytes).unwrap(), f);
        // A space inside the body: still JSON, no longer the canonical form.
        let at = bytes.len() - 1;
        bytes.insert(at, b' ');
        assert_eq!(
            TxFrame::parse(&bytes).unwrap_err().code,
            RefusalCode::MalformedBody
        );
        // Another domain prefix.
        let mut other = f.to_bytes();
        other[1 + 32 + 64] ^= 1;
        assert_eq!(
            TxFrame::parse(&other).unwrap_err().code,
            RefusalCode::MalformedBody
        );
        assert_eq!(
            TxFrame::parse(&[FRAME_TAG; 10]).unwrap_err().code,
            RefusalCode::MalformedTx
        );
        let big = vec![FRAME_TAG; 1 + 32 + 64 + TX_BYTES_MAX + 1];
        assert_eq!(
            TxFrame::parse(&big).unwrap_err().code,
            RefusalCode::TxTooLarge
        );
        // A forged signature reads as a frame; verification refuses it.
        let mut forged = f.clone();
        forged.sig[0] ^= 1;
        let back = TxFrame::parse(&forged.to_bytes()).unwrap();
        assert_eq!(
            back.verify_signature().unwrap_err().code,
            RefusalCode::BadSignature
        );
        let cache = SignatureCache::default();
        assert_eq!(cache.verify(&[&back, &f]), vec![false, true]);
    }

    #[test]
    fn the_leader_reuses_its_own_verdicts_only_for_a_whole_proposal() {
        let frames: Vec<TxFrame> = (0..3u8)
            .map(|i| {
                let mut b = body();
                b.insert("nonce".into(), json!(format!("n{i}")));
                SignedTx::sign(b, &key(i + 1)).unwrap().frame()
            })
            .collect();
        let mut forged = frames[2].clone();
        forged.sig[5] ^= 1;
        let cache = SignatureCache::default();
        let admitted: Vec<&TxFrame> = vec![&frames[0], &frames[1], &forged];
        assert_eq!(
            cache.verify_for_proposal(&admitted),
            vec![true, true, false]
        );
        // The proposal of the two that passed: answered from memory (and forgotten).
        assert!(cache.take_all_verified(&[&frames[0], &frames[1]]));
        assert!(!cache.take_all_verified(&[&frames[0]]));
        // A proposal with one frame this node never verified is verified in full.
        cache.verify_for_proposal(&[&frames[0]]);
        assert_eq!(cache.verify(&[&frames[0], &forged]), vec![true, false]);
    }

    #[test]
    fn batch_verification_finds_the_bad_one() {
        let good: Vec<SignedTx> = (0..5u8)
            .map(|i| {
                let mut b = body();
                b.insert("nonce".into(), json!(i.to_string()));
                SignedTx::sign(b, &key(i + 1)).unwrap()
            })
            .collect();
        let mut bad = good[2].clone();
        bad.sig[0] ^= 1;
        let mut all: Vec<&SignedTx> = good.iter().collect();
        assert_eq!(verify_many(&all), vec![true; 5]);
        all[2] = &bad;
        assert_eq!(verify_many(&all), vec![true, true, false, true, true]);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn arb_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i32>().prop_map(|n| json!(n)),
                "[a-z0-9 \u{4e00}-\u{4e10}]{0,12}".prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z_]{1,6}", inner, 0..5)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            /// Canonical bytes do not depend on key order or whitespace, and re-parse to the same value.
            #[test]
            fn canonical_form_is_stable(v in arb_json()) {
                let jcs = canonical_json(&v).unwrap();
                let reparsed: Value = serde_json::from_slice(&jcs).unwrap();
                prop_assert_eq!(&reparsed, &v);
                let pretty = serde_json::to_vec_pretty(&v).unwrap();
                let v2: Value = serde_json::from_slice(&pretty).unwrap();
                prop_assert_eq!(canonical_json(&v2).unwrap(), jcs);
            }

            /// A wire with the body as signed (canonical) and one in any other
            /// order read to the same frame, and that frame reads back from its bytes.
            #[test]
            fn wire_forms_give_one_frame(v in arb_json()) {
                let mut b = body();
                b.insert("payload".into(), v);
                let tx = SignedTx::sign(b, &key(5)).unwrap();
                let slow = SignedTx::from_json_bytes(&serde_json::to_vec(&tx.to_json()).unwrap()).unwrap().frame();
                let canonical_wire = slow.wire_json();
                let fast = TxFrame::from_wire(&canonical_wire).unwrap();
                prop_assert_eq!(&fast, &slow);
                prop_assert_eq!(&TxFrame::from_wire(&serde_json::to_vec(&tx.to_json()).unwrap()).unwrap(), &slow);
                prop_assert_eq!(&TxFrame::parse(&slow.to_bytes()).unwrap(), &slow);
                prop_assert_eq!(SignedTx::from_json_bytes(&canonical_wire).unwrap().frame(), slow);
            }

            /// A signed body verifies, and flipping any byte of the signature or signer fails.
            #[test]
            fn any_signature_mutation_fails(v in arb_json(), at in 0usize..96, bit in 0u8..8) {
                let mut b = body();
                b.insert("payload".into(), v);
                let tx = SignedTx::sign(b, &key(3)).unwrap();
                prop_assert!(tx.verify_signature().is_ok());
                let mut m = tx.clone();
                match &mut m.signer {
                    _ if at < 64 => m.sig[at] ^= 1 << bit,
                    SignerKey::Ed25519(k) => k[at - 64] ^= 1 << bit,
                    SignerKey::Sm2(_) => unreachable!(),
                }
                prop_assert!(m.verify_signature().is_err());
            }
        }
    }
}
