//! Account keys: Ed25519 (RFC 8032), or 国密 SM2 with SM3 (GB/T 32918.2,
//! GB/T 32905) where the chain allows it (`ChainSpec::sm2_accounts`).
//!
//! The key's encoding names the algorithm, so a transaction stays
//! `{body, signer, sig}`: 64 lowercase hex is an Ed25519 key; 130 lowercase
//! hex starting `04` is an SM2 point in SEC1 uncompressed form. One spelling
//! per key, so `key/{hex}` and the key lists compare as strings. Both sign
//! the same bytes, `TX_DOMAIN ‖ JCS(body)`; an SM2 signature is r ‖ s over
//! e = SM3(ZA ‖ M) with the default ID [`SM2_ID`]. The tx id (SHA-256 of the
//! signed bytes) does not depend on the algorithm.

use ed25519_dalek::Signer as _;
use sm2::dsa::signature::{Signer as _, Verifier as _};

/// The distinguishing ID in ZA: GB/T 35276's default, the one UKeys, HSMs and
/// most libraries use. Domain separation comes from `TX_DOMAIN` in M.
pub const SM2_ID: &str = "1234567812345678";

/// A public key a transaction may name as its signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignerKey {
    Ed25519([u8; 32]),
    /// SEC1 uncompressed: `04 ‖ x ‖ y`, 65 bytes.
    Sm2([u8; 65]),
}

/// The signature algorithm of a [`SignerKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    Ed25519,
    Sm2Sm3,
}

impl SigAlg {
    /// How evidence and the verifiers name it.
    pub fn label(self) -> &'static str {
        match self {
            SigAlg::Ed25519 => "Ed25519",
            SigAlg::Sm2Sm3 => "SM2-SM3",
        }
    }
}

fn lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl SignerKey {
    /// Reads a key's spelling: 64 lowercase hex (Ed25519) or 130 lowercase
    /// hex starting `04` (SM2). Checks the syntax only, not that the bytes are
    /// a usable point: [`Self::check_point`] does.
    pub fn parse_hex(text: &str) -> Option<Self> {
        let mut buf = [0u8; 65];
        let bytes = buf.get_mut(..text.len() / 2)?;
        if !lower_hex(text) || hex::decode_to_slice(text, &mut *bytes).is_err() {
            return None;
        }
        Self::from_bytes(bytes)
    }

    /// Reads a key's bytes: 32 (Ed25519) or 65 starting `04` (SM2).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if let Ok(k) = <[u8; 32]>::try_from(bytes) {
            return Some(Self::Ed25519(k));
        }
        let k = <[u8; 65]>::try_from(bytes).ok()?;
        (k[0] == 0x04).then_some(Self::Sm2(k))
    }

    pub fn alg(&self) -> SigAlg {
        match self {
            Self::Ed25519(_) => SigAlg::Ed25519,
            Self::Sm2(_) => SigAlg::Sm2Sm3,
        }
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self)
    }

    /// Whether the key is a point a signature can verify under: on the
    /// curve, not the identity; for Ed25519 also not of small order.
    pub fn check_point(&self) -> bool {
        match self.verifier() {
            Some(Verifier::Ed25519(vk)) => !vk.is_weak(),
            Some(Verifier::Sm2(_)) => true,
            None => false,
        }
    }

    /// The key ready to verify with (ZA computed once for SM2), or `None`
    /// when it is no valid point.
    pub fn verifier(&self) -> Option<Verifier> {
        match self {
            Self::Ed25519(k) => ed25519_dalek::VerifyingKey::from_bytes(k)
                .ok()
                .map(Verifier::Ed25519),
            Self::Sm2(k) => sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_ID, k)
                .ok()
                .map(|vk| Verifier::Sm2(std::sync::Arc::new(vk))),
        }
    }
}

impl AsRef<[u8]> for SignerKey {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Ed25519(k) => k,
            Self::Sm2(k) => k,
        }
    }
}

/// A parsed public key, as [`super::KeyCache`] keeps it.
#[derive(Clone)]
pub enum Verifier {
    Ed25519(ed25519_dalek::VerifyingKey),
    Sm2(std::sync::Arc<sm2::dsa::VerifyingKey>),
}

impl Verifier {
    /// Strict single verification: Ed25519 `verify_strict`; SM2 per GB/T
    /// 32918.2 §7 (r, s in [1, n−1], t ≠ 0, and the sum point not the identity).
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        match self {
            Verifier::Ed25519(vk) => vk
                .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
                .is_ok(),
            Verifier::Sm2(vk) => {
                sm2::dsa::Signature::from_slice(sig).is_ok_and(|s| vk.verify(msg, &s).is_ok())
            }
        }
    }
}

/// A secret account key, as a key file holds it. Ed25519 stays unboxed:
/// it signs on the hot paths (tests, benches, replay).
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
pub enum AccountSigningKey {
    Ed25519(ed25519_dalek::SigningKey),
    Sm2(Box<sm2::dsa::SigningKey>),
}

impl std::fmt::Debug for AccountSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountSigningKey({})", self.public().to_hex())
    }
}

/// Why an SM2 secret key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an SM2 secret key is 32 bytes d with 1 ≤ d ≤ n−2 (GB/T 32918.1 §6.1)")]
pub struct BadSm2SecretKey;

impl AccountSigningKey {
    /// An SM2 key from its secret scalar d. d = n−1 is a valid scalar but
    /// cannot sign (1 + d has no inverse), so it is refused here too.
    pub fn sm2_from_secret(d: &[u8; 32]) -> Result<Self, BadSm2SecretKey> {
        let key = sm2::dsa::SigningKey::from_slice(SM2_ID, d).map_err(|_| BadSm2SecretKey)?;
        let probe: Result<sm2::dsa::Signature, _> = key.try_sign(b"ZSL-KEY-CHECK");
        probe.map_err(|_| BadSm2SecretKey)?;
        Ok(Self::Sm2(Box::new(key)))
    }

    /// A fresh SM2 key from the operating system's randomness.
    pub fn generate_sm2() -> Self {
        use rand_core::RngCore as _;
        loop {
            let mut d = [0u8; 32];
            rand_core::OsRng.fill_bytes(&mut d);
            // Fails for d = 0 or d ≥ n−1, chance about 2^-224 per draw.
            if let Ok(k) = Self::sm2_from_secret(&d) {
                return k;
            }
        }
    }

    /// The 32 secret bytes a key file holds: the Ed25519 seed, or SM2's d.
    pub fn secret_bytes(&self) -> [u8; 32] {
        match self {
            Self::Ed25519(k) => k.to_bytes(),
            Self::Sm2(k) => {
                let mut out = [0u8; 32];
                out.copy_from_slice(&k.to_bytes());
                out
            }
        }
    }

    pub fn public(&self) -> SignerKey {
        match self {
            Self::Ed25519(k) => SignerKey::Ed25519(k.verifying_key().to_bytes()),
            Self::Sm2(k) => {
                let sec1 = k.verifying_key().to_sec1_bytes();
                let mut out = [0u8; 65];
                out.copy_from_slice(&sec1);
                SignerKey::Sm2(out)
            }
        }
    }

    /// Signs `msg`: Ed25519, or SM2 with RFC 6979 nonces (HMAC-SM3), so
    /// the same key and message give the same signature.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        match self {
            Self::Ed25519(k) => k.sign(msg).to_bytes(),
            Self::Sm2(k) => {
                // `sm2_from_secret` checked that this key signs.
                let sig: sm2::dsa::Signature = k.sign(msg);
                let mut out = [0u8; 64];
                out.copy_from_slice(&sig.to_bytes());
                out
            }
        }
    }
}

impl From<ed25519_dalek::SigningKey> for AccountSigningKey {
    fn from(k: ed25519_dalek::SigningKey) -> Self {
        Self::Ed25519(k)
    }
}

/// The SM2 key of GM/T 0003.5-2012 Annex A.2 (d = 3945…c5b8).
#[cfg(test)]
pub(crate) fn gmt_a2_key() -> AccountSigningKey {
    let d = hex::decode("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8");
    AccountSigningKey::sm2_from_secret(&d.unwrap().try_into().unwrap()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// GM/T 0003.5-2012 Annex A.2 on the recommended curve, ID
    /// 1234567812345678, M = "message digest": the public key from d, and
    /// the given r ‖ s verifies; any other ID or message refuses it.
    #[test]
    fn gmt_0003_5_annex_a2() {
        let key = gmt_a2_key();
        assert_eq!(
            key.public().to_hex(),
            "04\
             09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020\
             ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
        );
        let sig: [u8; 64] = unhex(
            "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3\
             b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa",
        );
        let v = key.public().verifier().unwrap();
        assert!(v.verify(b"message digest", &sig));
        assert!(!v.verify(b"message digesu", &sig));
        let other_id =
            sm2::dsa::VerifyingKey::from_sec1_bytes("ALICE123@YAHOO.COM", key.public().as_ref())
                .unwrap();
        let s = sm2::dsa::Signature::from_slice(&sig).unwrap();
        assert!(other_id.verify(b"message digest", &s).is_err());
        // Our own signature (deterministic k) verifies too.
        let ours = key.sign(b"message digest");
        assert!(v.verify(b"message digest", &ours));
        assert_eq!(ours, key.sign(b"message digest"));
    }

    /// The RustCrypto sm2 crate's OpenSSL-made vector (tests/sm2dsa.rs),
    /// under its own ID: the verifier agrees with OpenSSL's signer.
    #[test]
    fn openssl_made_signature_verifies() {
        let pk: [u8; 65] = unhex("0408d77ae04c01cc4c1104360dd8af6b6f7df334283d7c1a6afd5652407b87bee5014e2a57c36c150d16324dc664e31e6432359609c4e79847a5b161c8c7364c8a");
        let sig: [u8; 64] = unhex("d1dcccedd9fb785e0f67c16b7c52901625c0b69de9bca2144acc7be713cad2fcf7d1eae6e3a157b36c65f672f738ca8b46298bf149a6510072c431b49cd88b1c");
        let vk = sm2::dsa::VerifyingKey::from_sec1_bytes("example@rustcrypto.org", &pk).unwrap();
        let s = sm2::dsa::Signature::from_slice(&sig).unwrap();
        assert!(vk.verify(b"testing", &s).is_ok());
        // Under ZSL's ID the same signature is refused.
        assert!(!SignerKey::Sm2(pk)
            .verifier()
            .unwrap()
            .verify(b"testing", &sig));
    }

    #[test]
    fn one_spelling_per_key() {
        let sm2 = AccountSigningKey::generate_sm2().public();
        let hex = sm2.to_hex();
        assert_eq!(SignerKey::parse_hex(&hex), Some(sm2));
        assert!(sm2.check_point());
        let ed = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        assert_eq!(SignerKey::parse_hex(ed).unwrap().alg(), SigAlg::Ed25519);
        let refused = [
            hex.to_uppercase(),
            // Compressed: a second spelling of a point.
            format!("02{}", &hex[2..66]),
            format!("05{}", &hex[2..]),
            format!("{hex}00"),
            ed.to_uppercase(),
            String::new(),
        ];
        for text in refused {
            assert_eq!(SignerKey::parse_hex(&text), None, "{text}");
        }
        // 04 ‖ a point off the curve: the syntax reads, the point is refused.
        let mut off = hex.into_bytes();
        off[129] = if off[129] == b'0' { b'1' } else { b'0' };
        let off = SignerKey::parse_hex(std::str::from_utf8(&off).unwrap()).unwrap();
        assert!(!off.check_point());
        assert!(off.verifier().is_none());
    }

    #[test]
    fn out_of_range_signatures_and_secrets_are_refused() {
        let key = AccountSigningKey::generate_sm2();
        let v = key.public().verifier().unwrap();
        let n: [u8; 32] = unhex("fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123");
        let good = key.sign(b"m");
        assert!(v.verify(b"m", &good));
        let mut zero_r = good;
        zero_r[..32].fill(0);
        let mut s_is_n = good;
        s_is_n[32..].copy_from_slice(&n);
        assert!(!v.verify(b"m", &zero_r));
        assert!(!v.verify(b"m", &s_is_n));
        let mut n_minus_1 = n;
        n_minus_1[31] -= 1;
        assert_eq!(
            AccountSigningKey::sm2_from_secret(&n_minus_1).unwrap_err(),
            BadSm2SecretKey
        );
        assert!(AccountSigningKey::sm2_from_secret(&n).is_err());
        assert!(AccountSigningKey::sm2_from_secret(&[0; 32]).is_err());
        let mut n_minus_2 = n;
        n_minus_2[31] -= 2;
        assert!(AccountSigningKey::sm2_from_secret(&n_minus_2).is_ok());
        // An Ed25519 signature under an SM2 key, and the other way round.
        let ed = AccountSigningKey::from(ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
        assert!(!v.verify(b"m", &ed.sign(b"m")));
        assert!(!ed.public().verifier().unwrap().verify(b"m", &good));
    }
}
