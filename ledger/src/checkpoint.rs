//! Checkpoints of the transaction tree as C2SP signed notes
//! (c2sp.org/tlog-checkpoint body, c2sp.org/signed-note Ed25519 signatures),
//! quorum verification against a validator set, and the rules a validator
//! applies before it signs. Pure: the caller supplies clocks and keys.
//!
//! Checkpoint text:
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! zsl-height <block height>
//! zsl-block <block hash, lowercase hex>
//! zsl-time <block time, ms since the Unix epoch>
//! ```
//!
//! Each signature line is `— <key name> base64(key ID ‖ Ed25519 signature)`
//! over the text, with key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`[:4]`.
//! The origin and the key names depend on the note format
//! ([`LogIdentity`]): in v2 the origin is
//! `<log host>/<chain id>/<genesis hash>` and every validator signs under
//! that origin (the log's key name matches its origin), told apart by key
//! ID; v1, for genesis files without a `log_host`, used the chain id as the
//! origin and each validator's name as its key name.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::hash::sha256;
use crate::hash::H32;
use crate::validate::valid_key_name;

/// Signature type byte of Ed25519 in c2sp.org/signed-note.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;
/// Bytes of a note we parse at most (text and signatures).
pub const NOTE_BYTES_MAX: usize = 16 * 1024;
/// Signature lines a note may carry.
pub const NOTE_SIGNATURES_MAX: usize = 100;
const SIG_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed checkpoint body: {0}")]
    Body(&'static str),
    #[error("signature by known key `{0}` does not verify")]
    BadSignature(String),
    #[error("{got} valid validator signatures; the quorum is {quorum}")]
    NoQuorum { got: usize, quorum: usize },
    #[error("refusing to sign: {0}")]
    Refused(String),
}

/// The two note formats a chain's genesis can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NoteFormat {
    /// Origin = chain id; each validator signs under its own name.
    V1,
    /// Origin = `<log host>/<chain id>/<genesis hash hex>`; every validator
    /// signs under the origin.
    V2,
}

/// How a chain's checkpoints name themselves: the origin line and the key
/// names its validators sign under. Fixed by genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogIdentity {
    pub origin: String,
    pub format: NoteFormat,
}

impl LogIdentity {
    /// `log_host` set (genesis `log_host`): v2, whose origin commits to the
    /// genesis hash, so a bundle cannot be relabelled for another genesis
    /// with the same validators. Unset: v1.
    pub fn new(chain_id: &str, log_host: Option<&str>, genesis_hash: &H32) -> Self {
        match log_host {
            Some(host) => LogIdentity {
                origin: format!("{host}/{chain_id}/{genesis_hash}"),
                format: NoteFormat::V2,
            },
            None => LogIdentity {
                origin: chain_id.to_string(),
                format: NoteFormat::V1,
            },
        }
    }

    /// The key name validator `validator_name` signs checkpoints under.
    pub fn key_name<'a>(&'a self, validator_name: &'a str) -> &'a str {
        match self.format {
            NoteFormat::V1 => validator_name,
            NoteFormat::V2 => &self.origin,
        }
    }

    /// The note keys of a validator set: who signs under which (name, key ID).
    /// Fails if two validators' keys would share a name and key ID, which a
    /// verifier could not tell apart.
    pub fn note_keys<'a>(
        &self,
        validators: impl IntoIterator<Item = (&'a str, [u8; 32])>,
    ) -> Result<NoteKeys, CheckpointError> {
        let mut keys = NoteKeys::new();
        for (owner, public_key) in validators {
            let name = self.key_name(owner).to_string();
            let id = key_id(&name, &public_key);
            let key = NoteKey {
                owner: owner.to_string(),
                public_key,
            };
            if keys.insert((name, id), key).is_some() {
                return Err(CheckpointError::Malformed(
                    "two validators share a note key name and key id",
                ));
            }
        }
        Ok(keys)
    }

    /// The C2SP vkey of a validator's note key:
    /// `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`.
    pub fn vkey(&self, validator_name: &str, public_key: &[u8; 32]) -> String {
        vkey(self.key_name(validator_name), public_key)
    }
}

/// A C2SP vkey for an Ed25519 signed-note key.
pub fn vkey(name: &str, public_key: &[u8; 32]) -> String {
    vkey_typed(name, ED25519_SIGNATURE_TYPE, public_key)
}

/// A C2SP vkey, `<name>+<hex key ID>+<base64(type ‖ public key)>`, for a
/// key of signature type `sig_type`.
pub fn vkey_typed(name: &str, sig_type: u8, public_key: &[u8; 32]) -> String {
    let mut material = vec![sig_type];
    material.extend_from_slice(public_key);
    format!(
        "{name}+{}+{}",
        hex::encode(key_id_typed(name, sig_type, public_key)),
        B64.encode(material)
    )
}

/// A key a verifier knows, found by the (key name, key ID) of a signature
/// line: its public key and whose it is (a validator's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteKey {
    pub owner: String,
    pub public_key: [u8; 32],
}

/// Known note keys by (key name, key ID), the tuple that identifies a key in
/// c2sp.org/signed-note.
pub type NoteKeys = BTreeMap<(String, [u8; 4]), NoteKey>;

/// What verifying a note against known keys found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerdict {
    /// Owners of the known keys whose signatures verified, sorted, distinct.
    pub signers: Vec<String>,
    /// Signature lines by keys the verifier does not know (ignored, as
    /// c2sp.org/signed-note requires: a witness's cosignature, say).
    pub ignored: usize,
}

/// What a checkpoint commits to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root: H32,
    pub height: u64,
    pub block_hash: H32,
    pub time_ms: i64,
}

impl Checkpoint {
    /// The note text (ends in a newline).
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\nzsl-height {}\nzsl-block {}\nzsl-time {}\n",
            self.origin,
            self.tree_size,
            B64.encode(self.root.0),
            self.height,
            self.block_hash,
            self.time_ms
        )
    }

    pub fn parse_text(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Body("text must end in a newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, height, block, time] = lines.as_slice() else {
            return Err(CheckpointError::Body(
                "expected origin, size, root and three zsl- extension lines",
            ));
        };
        if origin.is_empty() {
            return Err(CheckpointError::Body("empty origin"));
        }
        let tree_size = parse_decimal(size)
            .ok_or(CheckpointError::Body("tree size is not a decimal number"))?;
        let root_bytes = B64
            .decode(root)
            .map_err(|_| CheckpointError::Body("root is not base64"))?;
        let root: [u8; 32] = root_bytes
            .try_into()
            .map_err(|_| CheckpointError::Body("root is not 32 bytes"))?;
        let height = height
            .strip_prefix("zsl-height ")
            .and_then(parse_decimal)
            .ok_or(CheckpointError::Body("bad zsl-height line"))?;
        let block_hash = block
            .strip_prefix("zsl-block ")
            .and_then(H32::parse)
            .ok_or(CheckpointError::Body("bad zsl-block line"))?;
        let time_ms = time
            .strip_prefix("zsl-time ")
            .filter(|t| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or(CheckpointError::Body("bad zsl-time line"))?;
        let c = Checkpoint {
            origin: origin.to_string(),
            tree_size,
            root: H32(root),
            height,
            block_hash,
            time_ms,
        };
        // Canonical form only: one text per checkpoint, so signatures are unambiguous.
        if c.text() != text {
            return Err(CheckpointError::Body("not in canonical form"));
        }
        Ok(c)
    }
}

pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    // No sign, no leading zeros (except "0"), so the text is canonical.
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`[:4]`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    key_id_typed(name, ED25519_SIGNATURE_TYPE, public_key)
}

/// SHA-256(name ‖ 0x0A ‖ `sig_type` ‖ public key)`[:4]` (c2sp.org/signed-note).
pub fn key_id_typed(name: &str, sig_type: u8, public_key: &[u8; 32]) -> [u8; 4] {
    let mut input = name.as_bytes().to_vec();
    input.push(b'\n');
    input.push(sig_type);
    input.extend_from_slice(public_key);
    let h = sha256(&input);
    [h[0], h[1], h[2], h[3]]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, `— <name> base64(key ID ‖ signature)` and a newline.
    pub fn line(&self) -> String {
        let mut blob = self.key_id.to_vec();
        blob.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }

    /// One signature line, without its newline.
    pub fn parse_line(line: &str) -> Result<Self, CheckpointError> {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(CheckpointError::Malformed(
                "a signature line starts with an em dash",
            ))?;
        let (name, b64) = rest.split_once(' ').ok_or(CheckpointError::Malformed(
            "signature line without a signature",
        ))?;
        if !valid_key_name(name) {
            return Err(CheckpointError::Malformed("invalid key name"));
        }
        let blob = B64
            .decode(b64)
            .map_err(|_| CheckpointError::Malformed("signature is not base64"))?;
        if blob.len() < 5 {
            return Err(CheckpointError::Malformed("signature too short"));
        }
        Ok(NoteSignature {
            name: name.into(),
            key_id: [blob[0], blob[1], blob[2], blob[3]],
            signature: blob[4..].to_vec(),
        })
    }
}

/// A signed note: text plus signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    pub fn sign(text: String, name: &str, key: &SigningKey) -> Result<Self, CheckpointError> {
        let mut n = SignedNote {
            text,
            signatures: Vec::new(),
        };
        n.add_signature(name, key)?;
        Ok(n)
    }

    pub fn add_signature(&mut self, name: &str, key: &SigningKey) -> Result<(), CheckpointError> {
        if !valid_key_name(name) {
            return Err(CheckpointError::Malformed("invalid key name"));
        }
        let sig = key.sign(self.text.as_bytes()).to_bytes().to_vec();
        let id = key_id(name, &key.verifying_key().to_bytes());
        self.signatures
            .retain(|s| !(s.name == name && s.key_id == id));
        self.signatures.push(NoteSignature {
            name: name.into(),
            key_id: id,
            signature: sig,
        });
        Ok(())
    }

    /// The serialized note: text, blank line, signature lines.
    pub fn render(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    pub fn parse(note: &str) -> Result<Self, CheckpointError> {
        if note.len() > NOTE_BYTES_MAX {
            return Err(CheckpointError::Malformed("note too large"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(CheckpointError::Malformed("control characters"));
        }
        let split = note.rfind("\n\n").ok_or(CheckpointError::Malformed(
            "no blank line before the signatures",
        ))?;
        let text = &note[..split + 1];
        let sigs = &note[split + 2..];
        let sigs = sigs.strip_suffix('\n').ok_or(CheckpointError::Malformed(
            "signatures must end in a newline",
        ))?;
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            signatures.push(NoteSignature::parse_line(line)?);
            if signatures.len() > NOTE_SIGNATURES_MAX {
                return Err(CheckpointError::Malformed("too many signatures"));
            }
        }
        if signatures.is_empty() {
            return Err(CheckpointError::Malformed("no signatures"));
        }
        Ok(SignedNote {
            text: text.into(),
            signatures,
        })
    }

    /// Verifies against known keys. Lines whose (key name, key ID) no known
    /// key has are ignored, as c2sp.org/signed-note requires; every known
    /// key's line is verified ("verifiers MUST verify the signature"), and
    /// one that fails rejects the note. A known key's line repeated counts
    /// once (golang.org/x/mod/sumdb/note drops repeats too, though it skips
    /// verifying them).
    pub fn verify(&self, known: &NoteKeys) -> Result<NoteVerdict, CheckpointError> {
        let mut signers = std::collections::BTreeSet::new();
        let mut ignored = 0;
        for s in &self.signatures {
            let Some(k) = known.get(&(s.name.clone(), s.key_id)) else {
                ignored += 1;
                continue;
            };
            let bad = || CheckpointError::BadSignature(k.owner.clone());
            let vk = VerifyingKey::from_bytes(&k.public_key).map_err(|_| bad())?;
            let sig: [u8; 64] = s.signature.as_slice().try_into().map_err(|_| bad())?;
            vk.verify_strict(self.text.as_bytes(), &Signature::from_bytes(&sig))
                .map_err(|_| bad())?;
            signers.insert(k.owner.clone());
        }
        Ok(NoteVerdict {
            signers: signers.into_iter().collect(),
            ignored,
        })
    }

    /// Verifies that at least `quorum` distinct known validators signed.
    pub fn verify_quorum(
        &self,
        known: &NoteKeys,
        quorum: usize,
    ) -> Result<NoteVerdict, CheckpointError> {
        let verdict = self.verify(known)?;
        if quorum == 0 || verdict.signers.len() < quorum {
            return Err(CheckpointError::NoQuorum {
                got: verdict.signers.len(),
                quorum,
            });
        }
        Ok(verdict)
    }
}

/// What a validator remembers about what it signed, to never sign two roots
/// for one size nor go back in time. The node persists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignerState {
    pub last_time_ms: i64,
    pub last_size: u64,
    pub last_root: H32,
}

/// Decides whether to sign `c`, given this validator's clock and state.
pub fn may_sign(
    state: &SignerState,
    c: &Checkpoint,
    clock_ms: i64,
    tolerance_ms: i64,
) -> Result<(), CheckpointError> {
    if (c.time_ms - clock_ms).abs() > tolerance_ms {
        return Err(CheckpointError::Refused(format!(
            "block time {} is more than {tolerance_ms} ms from this validator's clock {clock_ms}",
            c.time_ms
        )));
    }
    if c.time_ms < state.last_time_ms || c.tree_size < state.last_size {
        return Err(CheckpointError::Refused(
            "the checkpoint goes backwards".into(),
        ));
    }
    if c.tree_size == state.last_size && c.root != state.last_root && state.last_size > 0 {
        return Err(CheckpointError::Refused(format!(
            "a different root for tree size {} was signed before",
            c.tree_size
        )));
    }
    Ok(())
}

impl SignerState {
    pub fn record(&mut self, c: &Checkpoint) {
        self.last_time_ms = c.time_ms;
        self.last_size = c.tree_size;
        self.last_root = c.root;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: "zsl-devnet".into(),
            tree_size: 7,
            root: H32([3; 32]),
            height: 2,
            block_hash: H32([9; 32]),
            time_ms: 1_700_000_000_000,
        }
    }

    fn keys(n: u8) -> Vec<(String, SigningKey)> {
        (0..n)
            .map(|i| {
                (
                    format!("zsl-devnet/validator-{i}"),
                    SigningKey::from_bytes(&[i + 1; 32]),
                )
            })
            .collect()
    }

    fn known(k: &[(String, SigningKey)]) -> NoteKeys {
        LogIdentity::new("zsl-devnet", None, &H32([0; 32]))
            .note_keys(
                k.iter()
                    .map(|(n, s)| (n.as_str(), s.verifying_key().to_bytes())),
            )
            .unwrap()
    }

    /// The Ed25519 signed-note test vector of golang.org/x/mod/sumdb/note.
    #[test]
    fn go_note_vector() {
        let skey = B64
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        let material = B64
            .decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .unwrap();
        assert_eq!((skey[0], material[0]), (1, 1));
        let key = SigningKey::from_bytes(&skey[1..].try_into().unwrap());
        assert_eq!(
            key.verifying_key().to_bytes().to_vec(),
            material[1..].to_vec()
        );
        assert_eq!(
            hex::encode(key_id("PeterNeumann", &key.verifying_key().to_bytes())),
            "c74f20a3"
        );
        assert_eq!(
            vkey("PeterNeumann", &key.verifying_key().to_bytes()),
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        );
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let note = SignedNote::sign(text.into(), "PeterNeumann", &key).unwrap();
        assert_eq!(
            note.render(),
            format!("{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
        );
    }

    #[test]
    fn checkpoint_text_roundtrips_and_is_canonical() {
        let c = cp();
        assert_eq!(Checkpoint::parse_text(&c.text()).unwrap(), c);
        assert!(Checkpoint::parse_text(&c.text().replace("\n7\n", "\n07\n")).is_err());
        assert!(Checkpoint::parse_text(&c.text().replace("zsl-time ", "zsl-time +")).is_err());
        assert!(Checkpoint::parse_text(c.text().trim_end()).is_err());
    }

    #[test]
    fn quorum_is_counted_over_known_distinct_keys() {
        let k = keys(3);
        let mut note = SignedNote::sign(cp().text(), &k[0].0, &k[0].1).unwrap();
        let known = known(&k);
        assert!(matches!(
            note.verify_quorum(&known, 2),
            Err(CheckpointError::NoQuorum { got: 1, quorum: 2 })
        ));
        // The same validator twice is still one.
        note.add_signature(&k[0].0, &k[0].1).unwrap();
        assert!(note.verify_quorum(&known, 2).is_err());
        // An outsider's signature does not count.
        let outsider = SigningKey::from_bytes(&[77; 32]);
        note.add_signature("zsl-devnet/validator-9", &outsider)
            .unwrap();
        assert!(note.verify_quorum(&known, 2).is_err());
        note.add_signature(&k[1].0, &k[1].1).unwrap();
        let parsed = SignedNote::parse(&note.render()).unwrap();
        assert_eq!(parsed, note);
        let verdict = parsed.verify_quorum(&known, 2).unwrap();
        assert_eq!(verdict.signers.len(), 2);
        assert_eq!(verdict.ignored, 1, "the outsider's line is ignored");
    }

    #[test]
    fn v2_validators_sign_under_the_origin_and_are_told_apart_by_key_id() {
        let log = LogIdentity::new("zsl-devnet", Some("zsl.example"), &H32([0xab; 32]));
        assert_eq!(log.format, NoteFormat::V2);
        assert_eq!(
            log.origin,
            format!("zsl.example/zsl-devnet/{}", "ab".repeat(32))
        );
        let k = keys(3);
        let known = log
            .note_keys(
                k.iter()
                    .map(|(n, s)| (n.as_str(), s.verifying_key().to_bytes())),
            )
            .unwrap();
        let c = Checkpoint {
            origin: log.origin.clone(),
            ..cp()
        };
        let mut note = SignedNote::sign(c.text(), log.key_name(&k[0].0), &k[0].1).unwrap();
        note.add_signature(log.key_name(&k[2].0), &k[2].1).unwrap();
        assert!(note.signatures.iter().all(|s| s.name == log.origin));
        let verdict = SignedNote::parse(&note.render())
            .unwrap()
            .verify_quorum(&known, 2)
            .unwrap();
        assert_eq!(verdict.signers, vec![k[0].0.clone(), k[2].0.clone()]);
        // A validator signing under its own name (the v1 way) is an unknown key here.
        note.add_signature(&k[1].0, &k[1].1).unwrap();
        assert_eq!(note.verify(&known).unwrap().ignored, 1);
        // The vkey names the origin.
        assert!(log
            .vkey(&k[0].0, &k[0].1.verifying_key().to_bytes())
            .starts_with(&format!("{}+", log.origin)));
    }

    #[test]
    fn a_known_key_twice_counts_once_and_a_bad_known_signature_rejects_the_note() {
        let k = keys(2);
        let known = known(&k);
        let mut note = SignedNote::sign(cp().text(), &k[0].0, &k[0].1).unwrap();
        let mut twice = note.clone();
        twice.signatures.push(note.signatures[0].clone());
        assert_eq!(twice.verify(&known).unwrap().signers, vec![k[0].0.clone()]);
        assert!(twice.verify_quorum(&known, 2).is_err());
        // A repeated line is verified too.
        twice.signatures[1].signature[0] ^= 1;
        assert!(twice.verify(&known).is_err());
        note.signatures[0].signature[0] ^= 1;
        assert_eq!(
            note.verify(&known),
            Err(CheckpointError::BadSignature(k[0].0.clone()))
        );
    }

    #[test]
    fn any_flipped_byte_fails() {
        let k = keys(3);
        let mut note = SignedNote::sign(cp().text(), &k[0].0, &k[0].1).unwrap();
        note.add_signature(&k[1].0, &k[1].1).unwrap();
        let rendered = note.render();
        let known = known(&k);
        let bytes = rendered.as_bytes();
        for i in 0..bytes.len() {
            let mut m = bytes.to_vec();
            m[i] ^= 0x01;
            let Ok(text) = String::from_utf8(m) else {
                continue;
            };
            let ok = SignedNote::parse(&text)
                .and_then(|n| n.verify_quorum(&known, 2).map(|_| n))
                .and_then(|n| Checkpoint::parse_text(&n.text));
            assert!(
                ok.is_err() || ok.as_ref().is_ok_and(|c| *c == cp()) && text == rendered,
                "byte {i} flipped still verifies"
            );
        }
    }

    #[test]
    fn signing_rules() {
        let mut st = SignerState::default();
        let c = cp();
        may_sign(&st, &c, c.time_ms + 1_000, 5_000).unwrap();
        assert!(
            may_sign(&st, &c, c.time_ms + 10_000, 5_000).is_err(),
            "clock tolerance"
        );
        st.record(&c);
        let older = Checkpoint {
            time_ms: c.time_ms - 1,
            ..c.clone()
        };
        assert!(
            may_sign(&st, &older, c.time_ms, 5_000).is_err(),
            "backwards"
        );
        let fork = Checkpoint {
            root: H32([4; 32]),
            ..c.clone()
        };
        assert!(
            may_sign(&st, &fork, c.time_ms, 5_000).is_err(),
            "two roots for one size"
        );
        let next = Checkpoint {
            tree_size: 8,
            time_ms: c.time_ms + 1,
            ..c.clone()
        };
        may_sign(&st, &next, c.time_ms, 5_000).unwrap();
    }
}
