//! Witnessing checkpoints (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature)
//! and the policies that require witnesses (c2sp.org/tlog-policy). Pure: the
//! caller persists the witness's state, supplies the clock and does the I/O.
//!
//! - A **witness** keeps, per log origin it trusts, the latest checkpoint it
//!   cosigned; [`decide`] takes an `add-checkpoint` request and that state
//!   and answers what the protocol says (200 with a cosignature, 404, 403,
//!   409, 422, 400), never a cosignature for a tree inconsistent with one it
//!   cosigned before.
//! - A **cosignature** ([`cosign`], [`verify_cosignature`]) is the Ed25519
//!   `cosignature/v1` type: key ID over signature type 0x04, a signature
//!   of `"cosignature/v1\ntime <t>\n" ‖ note text`, carried as
//!   `timestamp (u64 BE) ‖ signature` in an ordinary note signature line.
//! - A **policy** ([`Policy`]) names witnesses and groups with thresholds and
//!   one quorum; [`Policy::check`] says whether a note's cosignatures meet it.
//!
//! May depend on `checkpoint`, `merkle` and `hash` only.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::checkpoint::{parse_decimal, NoteKeys, NoteSignature, SignedNote};
use crate::hash::H32;
use crate::merkle;

/// Signature type byte of Ed25519 `cosignature/v1` (c2sp.org/signed-note).
pub const COSIGNATURE_V1_TYPE: u8 = 0x04;
/// Consistency proof lines an `add-checkpoint` request may carry (the protocol's bound).
pub const PROOF_LINES_MAX: usize = 63;
/// Bytes of an `add-checkpoint` request body a witness reads at most.
pub const REQUEST_BYTES_MAX: usize = 64 * 1024;
/// Lines of a policy file at most.
pub const POLICY_LINES_MAX: usize = 1_000;

/// SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)`[:4]`.
pub fn cosigner_key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    crate::checkpoint::key_id_typed(name, COSIGNATURE_V1_TYPE, public_key)
}

/// The C2SP vkey of a cosigner: `<name>+<hex key ID>+<base64(0x04 ‖ key)>`.
pub fn cosigner_vkey(name: &str, public_key: &[u8; 32]) -> String {
    crate::checkpoint::vkey_typed(name, COSIGNATURE_V1_TYPE, public_key)
}

/// A cosigner's key as a verifier is configured with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigner {
    pub name: String,
    pub public_key: [u8; 32],
}

impl Cosigner {
    /// Parses a vkey of signature type 0x04.
    pub fn from_vkey(vkey: &str) -> Result<Self, String> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("`{vkey}` is not a vkey (name+id+key)"));
        };
        if !crate::validate::valid_key_name(name) {
            return Err(format!("vkey name `{name}` is not a key name"));
        }
        let material = B64
            .decode(material)
            .map_err(|_| "vkey key material is not base64".to_string())?;
        let [COSIGNATURE_V1_TYPE, key @ ..] = material.as_slice() else {
            return Err("vkey is not a cosignature/v1 (type 0x04) key".into());
        };
        let public_key: [u8; 32] = key
            .try_into()
            .map_err(|_| "vkey key is not 32 bytes".to_string())?;
        if hex::encode(cosigner_key_id(name, &public_key)) != id {
            return Err(format!("vkey `{name}` carries the wrong key id"));
        }
        Ok(Cosigner {
            name: name.into(),
            public_key,
        })
    }

    pub fn key_id(&self) -> [u8; 4] {
        cosigner_key_id(&self.name, &self.public_key)
    }

    pub fn vkey(&self) -> String {
        cosigner_vkey(&self.name, &self.public_key)
    }
}

fn cosigned_message(text: &str, time_s: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time_s}\n{text}").into_bytes()
}

/// A `cosignature/v1` signature line over a note's text at `time_s`.
pub fn cosign(text: &str, name: &str, key: &SigningKey, time_s: u64) -> NoteSignature {
    debug_assert!(time_s < 1 << 63, "the protocol bounds the timestamp");
    let sig = key.sign(&cosigned_message(text, time_s));
    let mut signature = time_s.to_be_bytes().to_vec();
    signature.extend_from_slice(&sig.to_bytes());
    NoteSignature {
        name: name.into(),
        key_id: cosigner_key_id(name, &key.verifying_key().to_bytes()),
        signature,
    }
}

/// The time a `cosignature/v1` line by `c` states, if it verifies over `text`.
pub fn verify_cosignature(text: &str, line: &NoteSignature, c: &Cosigner) -> Option<u64> {
    if line.name != c.name || line.key_id != c.key_id() || line.signature.len() != 72 {
        return None;
    }
    let time_s = u64::from_be_bytes(line.signature[..8].try_into().ok()?);
    if time_s >= 1 << 63 {
        return None;
    }
    let sig: [u8; 64] = line.signature[8..].try_into().ok()?;
    VerifyingKey::from_bytes(&c.public_key)
        .ok()?
        .verify_strict(
            &cosigned_message(text, time_s),
            &Signature::from_bytes(&sig),
        )
        .ok()
        .map(|()| time_s)
}

/// An `add-checkpoint` request body: `old <size>`, proof lines, a blank
/// line, the signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<H32>,
    pub note: SignedNote,
}

impl AddCheckpoint {
    pub fn render(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for h in &self.proof {
            out.push_str(&B64.encode(h.0));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note.render());
        out
    }

    pub fn parse(body: &str) -> Result<Self, String> {
        if body.len() > REQUEST_BYTES_MAX {
            return Err(format!("request over {REQUEST_BYTES_MAX} bytes"));
        }
        let (head, note) = body
            .split_once("\n\n")
            .ok_or("no blank line before the checkpoint")?;
        let mut lines = head.split('\n');
        let old_size = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(parse_decimal)
            .ok_or("the first line is not `old <size>`")?;
        let mut proof = Vec::new();
        for l in lines {
            let h: [u8; 32] = B64
                .decode(l)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or("a proof line is not a base64 hash")?;
            proof.push(H32(h));
            if proof.len() > PROOF_LINES_MAX {
                return Err(format!("more than {PROOF_LINES_MAX} proof lines"));
            }
        }
        let note = SignedNote::parse(note).map_err(|e| e.to_string())?;
        Ok(AddCheckpoint {
            old_size,
            proof,
            note,
        })
    }
}

/// A log this witness trusts: its origin, the keys that sign for it and how
/// many of them must (a ZSL chain: its validators and checkpoint quorum).
#[derive(Debug, Clone)]
pub struct TrustedLog {
    pub origin: String,
    pub keys: NoteKeys,
    pub quorum: usize,
}

/// What a witness remembers of a log: the latest checkpoint it cosigned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WitnessedState {
    pub size: u64,
    pub root: H32,
    /// The note as cosigned (log signatures and this witness's lines), for
    /// the monitoring endpoint.
    pub note: String,
}

/// A witness's answer to an `add-checkpoint` request that it did not cosign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessRefusal {
    /// 400: malformed, or an old size beyond the checkpoint's.
    BadRequest(String),
    /// 403: no quorum of trusted signatures, or a trusted key's bad signature.
    Forbidden(String),
    /// 404: the origin is not a log this witness trusts.
    UnknownLog(String),
    /// 409: the old size is not the latest this witness cosigned (that size).
    Conflict(u64),
    /// 422: the consistency proof does not verify, or a fork at one size.
    Unprocessable(String),
}

impl WitnessRefusal {
    pub fn status(&self) -> u16 {
        match self {
            WitnessRefusal::BadRequest(_) => 400,
            WitnessRefusal::Forbidden(_) => 403,
            WitnessRefusal::UnknownLog(_) => 404,
            WitnessRefusal::Conflict(_) => 409,
            WitnessRefusal::Unprocessable(_) => 422,
        }
    }
}

/// Decides an `add-checkpoint` request: `Ok` is the tree size and root to
/// persist (atomically with the check) before answering with the cosignature.
pub fn decide(
    req: &AddCheckpoint,
    logs: &BTreeMap<String, TrustedLog>,
    state: Option<&WitnessedState>,
) -> Result<(u64, H32), WitnessRefusal> {
    let (origin, size, root) = parse_checkpoint_lines(&req.note.text)?;
    let log = logs
        .get(&origin)
        .ok_or(WitnessRefusal::UnknownLog(origin))?;
    let verdict = req
        .note
        .verify(&log.keys)
        .map_err(|e| WitnessRefusal::Forbidden(e.to_string()))?;
    if verdict.signers.len() < log.quorum.max(1) {
        return Err(WitnessRefusal::Forbidden(format!(
            "{} of the log's keys signed; {} must",
            verdict.signers.len(),
            log.quorum
        )));
    }
    if req.old_size > size {
        return Err(WitnessRefusal::BadRequest(format!(
            "old size {} is beyond the checkpoint's {size}",
            req.old_size
        )));
    }
    let (known_size, known_root) =
        state.map_or((0, H32(merkle::empty_root())), |s| (s.size, s.root));
    if req.old_size != known_size {
        return Err(WitnessRefusal::Conflict(known_size));
    }
    if size == 0 && root.0 != merkle::empty_root() {
        return Err(WitnessRefusal::Unprocessable(
            "a tree of size 0 has the empty root".into(),
        ));
    }
    let path: Vec<merkle::Hash> = req.proof.iter().map(|h| h.0).collect();
    merkle::verify_consistency(known_size, size, &known_root.0, &root.0, &path)
        .map_err(|e| WitnessRefusal::Unprocessable(format!("consistency: {e}")))?;
    Ok((size, root))
}

/// Origin, size and root: the three lines a witness vouches for.
fn parse_checkpoint_lines(text: &str) -> Result<(String, u64, H32), WitnessRefusal> {
    let bad = |m: &str| WitnessRefusal::BadRequest(format!("checkpoint: {m}"));
    let mut lines = text.split('\n');
    let origin = lines
        .next()
        .filter(|o| !o.is_empty())
        .ok_or(bad("no origin"))?;
    let size = lines
        .next()
        .and_then(parse_decimal)
        .ok_or(bad("no tree size"))?;
    let root: [u8; 32] = lines
        .next()
        .and_then(|r| B64.decode(r).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or(bad("no root hash"))?;
    Ok((origin.to_string(), size, H32(root)))
}

/// A c2sp.org/tlog-policy: witnesses, groups with thresholds, one quorum.
/// (Its `log` lines are accepted and ignored: a ZSL verifier takes the log's
/// keys and quorum from genesis.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    witnesses: BTreeMap<String, Cosigner>,
    groups: BTreeMap<String, (usize, Vec<String>)>,
    quorum: Option<String>,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut p = Policy {
            witnesses: BTreeMap::new(),
            groups: BTreeMap::new(),
            quorum: None,
        };
        let mut quorum_lines = 0;
        for (n, raw) in text.lines().enumerate() {
            if n >= POLICY_LINES_MAX {
                return Err(format!("more than {POLICY_LINES_MAX} lines"));
            }
            let at = |m: String| format!("policy line {}: {m}", n + 1);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let defined = |p: &Policy, name: &str| {
                p.witnesses.contains_key(name) || p.groups.contains_key(name)
            };
            match words.as_slice() {
                ["log", _vkey, ..] => {}
                ["witness", name, vkey, ..] => {
                    if *name == "none" || defined(&p, name) {
                        return Err(at(format!("`{name}` is defined twice or reserved")));
                    }
                    let c = Cosigner::from_vkey(vkey).map_err(at)?;
                    if p.witnesses.values().any(|w| w.public_key == c.public_key) {
                        return Err(at("a witness key listed twice".into()));
                    }
                    p.witnesses.insert(name.to_string(), c);
                }
                ["group", name, k, members @ ..] => {
                    if *name == "none" || defined(&p, name) {
                        return Err(at(format!("`{name}` is defined twice or reserved")));
                    }
                    if members.is_empty() {
                        return Err(at("a group needs members".into()));
                    }
                    if let Some(m) = members.iter().find(|m| !defined(&p, m)) {
                        return Err(at(format!("`{m}` is not defined on an earlier line")));
                    }
                    let n = members.len();
                    let k = match *k {
                        "all" => n,
                        "any" => 1,
                        k => parse_decimal(k)
                            .map(|k| k as usize)
                            .filter(|k| (1..=n).contains(k))
                            .ok_or_else(|| at(format!("threshold `{k}` is not 1..{n}")))?,
                    };
                    let members = members.iter().map(|m| m.to_string()).collect();
                    p.groups.insert(name.to_string(), (k, members));
                }
                ["quorum", name] => {
                    quorum_lines += 1;
                    if *name != "none" && !defined(&p, name) {
                        return Err(at(format!("`{name}` is not defined on an earlier line")));
                    }
                    p.quorum = Some(name.to_string());
                }
                _ => return Err(at(format!("cannot read `{line}`"))),
            }
        }
        if quorum_lines != 1 {
            return Err("a policy has exactly one quorum line".into());
        }
        Ok(p)
    }

    /// The witnesses whose cosignatures on `note` verify, by policy name,
    /// with their times; `Err` unless they meet the quorum.
    pub fn check(&self, note: &SignedNote) -> Result<BTreeMap<String, u64>, String> {
        let mut cosigned = BTreeMap::new();
        for (name, c) in &self.witnesses {
            if let Some(t) = note
                .signatures
                .iter()
                .find_map(|s| verify_cosignature(&note.text, s, c))
            {
                cosigned.insert(name.clone(), t);
            }
        }
        let quorum = self.quorum.as_deref().unwrap_or("none");
        let done: BTreeSet<&str> = cosigned.keys().map(String::as_str).collect();
        if quorum == "none" || self.witnessed(quorum, &done) {
            Ok(cosigned)
        } else {
            Err(format!(
                "the policy's quorum `{quorum}` is not met: cosigned by {}",
                if done.is_empty() {
                    "no listed witness".to_string()
                } else {
                    done.into_iter().collect::<Vec<_>>().join(", ")
                }
            ))
        }
    }

    fn witnessed(&self, name: &str, done: &BTreeSet<&str>) -> bool {
        match self.groups.get(name) {
            // Groups only name earlier definitions, so this recursion ends.
            Some((k, members)) => members.iter().filter(|m| self.witnessed(m, done)).count() >= *k,
            None => done.contains(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, LogIdentity};
    use crate::hash::sha256;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    /// A one-validator log and its tree of `n` leaves.
    fn log_note(n: u64) -> (SignedNote, TrustedLog, merkle::MemoryTree) {
        let mut tree = merkle::MemoryTree::default();
        for i in 0..n {
            tree.push(&sha256(&i.to_be_bytes())).unwrap();
        }
        let log = LogIdentity::new("zsl-a", Some("a.example"), &H32([1; 32]));
        let c = Checkpoint {
            origin: log.origin.clone(),
            tree_size: n,
            root: H32(tree.root().unwrap()),
            height: n,
            block_hash: H32([2; 32]),
            time_ms: 1_700_000_000_000 + n as i64,
        };
        let note = SignedNote::sign(c.text(), &log.origin, &key(1)).unwrap();
        let keys = log
            .note_keys([("v1", key(1).verifying_key().to_bytes())])
            .unwrap();
        let trusted = TrustedLog {
            origin: log.origin,
            keys,
            quorum: 1,
        };
        (note, trusted, tree)
    }

    fn logs(t: &TrustedLog) -> BTreeMap<String, TrustedLog> {
        [(t.origin.clone(), t.clone())].into()
    }

    /// The Ed25519 cosignature/v1 vector of c2sp.org/tlog-cosignature's
    /// reference implementation is not published as a file; this checks the
    /// format's parts instead: the key id's type byte, the signed message,
    /// the 8-byte big-endian timestamp, the vkey round trip.
    #[test]
    fn cosignature_v1_format() {
        let k = key(9);
        let pk = k.verifying_key().to_bytes();
        let mut id_input = b"w.example/w1\n".to_vec();
        id_input.push(0x04);
        id_input.extend_from_slice(&pk);
        assert_eq!(cosigner_key_id("w.example/w1", &pk), sha256(&id_input)[..4]);
        let line = cosign("o\n1\nAA==\n", "w.example/w1", &k, 1_679_315_147);
        assert_eq!(&line.signature[..8], &1_679_315_147u64.to_be_bytes());
        let msg = b"cosignature/v1\ntime 1679315147\no\n1\nAA==\n";
        let sig: [u8; 64] = line.signature[8..].try_into().unwrap();
        k.verifying_key()
            .verify_strict(msg, &Signature::from_bytes(&sig))
            .unwrap();
        let c = Cosigner::from_vkey(&cosigner_vkey("w.example/w1", &pk)).unwrap();
        assert_eq!(
            verify_cosignature("o\n1\nAA==\n", &line, &c),
            Some(1_679_315_147)
        );
        assert_eq!(verify_cosignature("o\n2\nAA==\n", &line, &c), None);
        assert!(Cosigner::from_vkey(&crate::checkpoint::vkey("w.example/w1", &pk)).is_err());
    }

    #[test]
    fn a_witness_follows_the_tree_and_refuses_what_the_protocol_says() {
        let (note3, log, _) = log_note(3);
        let logs = logs(&log);
        let req = |old, proof: Vec<H32>, note: &SignedNote| AddCheckpoint {
            old_size: old,
            proof,
            note: note.clone(),
        };
        // First contact: old 0, empty proof.
        let (size, root) = decide(&req(0, vec![], &note3), &logs, None).unwrap();
        assert_eq!(size, 3);
        let state = WitnessedState {
            size: 3,
            root,
            note: note3.render(),
        };
        // The request round-trips through its text form.
        let r = req(0, vec![H32([5; 32])], &note3);
        assert_eq!(AddCheckpoint::parse(&r.render()).unwrap(), r);
        // Growing to 5 with the right proof.
        let (note5, _, tree5) = log_note(5);
        let proof: Vec<H32> = tree5
            .consistency_proof(3, 5)
            .unwrap()
            .into_iter()
            .map(H32)
            .collect();
        decide(&req(3, proof.clone(), &note5), &logs, Some(&state)).unwrap();
        // Wrong old size: 409 with the size the witness has.
        assert_eq!(
            decide(&req(0, vec![], &note5), &logs, Some(&state)),
            Err(WitnessRefusal::Conflict(3))
        );
        // A bad proof: 422.
        let mut bad = proof.clone();
        bad[0].0[0] ^= 1;
        assert_eq!(
            decide(&req(3, bad, &note5), &logs, Some(&state))
                .unwrap_err()
                .status(),
            422
        );
        // A fork at the same size: 422.
        let (mut fork, _, _) = log_note(3);
        let mut c = Checkpoint::parse_text(&fork.text).unwrap();
        c.root = H32([7; 32]);
        fork = SignedNote::sign(c.text(), &log.origin, &key(1)).unwrap();
        assert_eq!(
            decide(&req(3, vec![], &fork), &logs, Some(&state))
                .unwrap_err()
                .status(),
            422
        );
        // Old size beyond the checkpoint: 400.
        assert_eq!(
            decide(&req(9, vec![], &note5), &logs, Some(&state))
                .unwrap_err()
                .status(),
            400
        );
        // Unknown origin: 404; no trusted signature: 403; a trusted key's bad signature: 403.
        let stranger =
            SignedNote::sign(note5.text.replace("a.example", "b.example"), "x", &key(2)).unwrap();
        assert_eq!(
            decide(&req(3, vec![], &stranger), &logs, Some(&state))
                .unwrap_err()
                .status(),
            404
        );
        let unsigned = SignedNote::sign(note5.text.clone(), &log.origin, &key(2)).unwrap();
        assert_eq!(
            decide(&req(3, proof.clone(), &unsigned), &logs, Some(&state))
                .unwrap_err()
                .status(),
            403
        );
        let mut forged = note5.clone();
        forged.signatures[0].signature[3] ^= 1;
        assert_eq!(
            decide(&req(3, proof, &forged), &logs, Some(&state))
                .unwrap_err()
                .status(),
            403
        );
    }

    #[test]
    fn policies_count_groups_and_thresholds() {
        let (note, _, _) = log_note(2);
        let w = |i: u8| {
            cosigner_vkey(
                &format!("w{i}.example"),
                &key(10 + i).verifying_key().to_bytes(),
            )
        };
        let text = format!(
            "# two regions\nlog {}\nwitness A1 {}\nwitness A2 {}\nwitness B1 {}\ngroup A 2 A1 A2\ngroup B any B1\ngroup AB all A B\nquorum AB\n",
            crate::checkpoint::vkey("zsl", &key(1).verifying_key().to_bytes()),
            w(1),
            w(2),
            w(3)
        );
        let p = Policy::parse(&text).unwrap();
        let mut n = note.clone();
        let sign = |n: &mut SignedNote, i: u8| {
            let line = cosign(
                &n.text,
                &format!("w{i}.example"),
                &key(10 + i),
                1_700_000_000,
            );
            n.signatures.push(line);
        };
        assert!(p.check(&n).is_err());
        sign(&mut n, 1);
        sign(&mut n, 3);
        assert!(p.check(&n).is_err(), "A needs both");
        sign(&mut n, 2);
        assert_eq!(p.check(&n).unwrap().len(), 3);
        assert!(Policy::parse("quorum none\n").unwrap().check(&note).is_ok());
        for bad in [
            "",
            "quorum X\n",
            "group G 1 X\nquorum G\n",
            "quorum none\nquorum none\n",
            &format!("witness A {}\ngroup G 2 A\nquorum G\n", w(1)),
            &format!("witness A {}\nwitness B {}\nquorum A\n", w(1), w(1)),
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }
}
