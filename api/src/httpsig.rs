//! HTTP Message Signatures (RFC 9421) with Ed25519 or SM2, the profile ZSL
//! reads take: one signature per request, covering at least `@method`,
//! `@path`, `@query` and, when the request has a body, `content-digest` (RFC
//! 9530, `sha-256`); `created` is required, `keyid` is the signer's public
//! key in lowercase hex (Ed25519, 64; SM2, 130), `alg` if given is the key's:
//! `ed25519`, or `sm2-sm3` (SM2 with SM3 and ID `1234567812345678`; RFC 9421's
//! registry has no SM2, so a name of ZSL's). Parsing is strict: a header that
//! is not exactly this subset of RFC 8941 is refused.
//!
//! Pure functions over the request's parts; the clock, the replay window
//! and who the key belongs to are the caller's ([`crate::auth`]).

use axum::http::{HeaderMap, Method, Uri};
use base64::Engine as _;
use ledger::signing::{AccountSigningKey, SigAlg, SignerKey, Verifier};

/// Components a ZSL request signature must cover.
pub const REQUIRED_COMPONENTS: [&str; 3] = ["@method", "@path", "@query"];
/// Components covered at most (header names included).
const COMPONENTS_MAX: usize = 16;
/// Longest `Signature-Input` / `Signature` header read.
const HEADER_BYTES_MAX: usize = 2_048;

/// Why a request's signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("malformed signature header: {0}")]
    Malformed(String),
    #[error("the signature does not cover `{0}`")]
    NotCovered(&'static str),
    #[error("`content-digest` does not match the body")]
    DigestMismatch,
    #[error("the signature does not verify over the signature base")]
    BadSignature,
}

/// A parsed `Signature-Input` member with its `Signature` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub label: String,
    pub components: Vec<String>,
    pub created: i64,
    pub expires: Option<i64>,
    pub keyid: String,
    pub alg: Option<String>,
    pub nonce: Option<String>,
    /// The `@signature-params` value exactly as sent.
    pub params_text: String,
    pub signature: [u8; 64],
}

/// The `alg` parameter that names a key's algorithm.
pub fn alg_name(alg: SigAlg) -> &'static str {
    match alg {
        SigAlg::Ed25519 => "ed25519",
        SigAlg::Sm2Sm3 => "sm2-sm3",
    }
}

/// A key that signs requests: a validator's Ed25519 key or an account key.
pub trait RequestKey {
    fn public(&self) -> SignerKey;
    fn sign_base(&self, base: &[u8]) -> [u8; 64];
}

impl RequestKey for ed25519_dalek::SigningKey {
    fn public(&self) -> SignerKey {
        SignerKey::Ed25519(self.verifying_key().to_bytes())
    }
    fn sign_base(&self, base: &[u8]) -> [u8; 64] {
        ed25519_dalek::Signer::sign(self, base).to_bytes()
    }
}

impl RequestKey for AccountSigningKey {
    fn public(&self) -> SignerKey {
        AccountSigningKey::public(self)
    }
    fn sign_base(&self, base: &[u8]) -> [u8; 64] {
        self.sign(base)
    }
}

fn malformed(what: impl Into<String>) -> SigError {
    SigError::Malformed(what.into())
}

/// Reads an RFC 8941 key (`label`, parameter names): lowercase letters,
/// digits, `_-.*`, starting with a letter or `*`.
fn take_key(s: &str) -> Option<(&str, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c)))
        .unwrap_or(s.len());
    let key = &s[..end];
    let first = key.chars().next()?;
    (first.is_ascii_lowercase() || first == '*').then_some((key, &s[end..]))
}

/// Reads an RFC 8941 string: `"…"` with `\"` and `\\` escapes, printable ASCII.
fn take_string(s: &str) -> Option<(String, &str)> {
    let rest = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &rest[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                _ => return None,
            },
            ' '..='~' => out.push(c),
            _ => return None,
        }
    }
    None
}

/// Reads an RFC 8941 integer (at most 15 digits).
fn take_integer(s: &str) -> Option<(i64, &str)> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 || end > 15 {
        return None;
    }
    let n: i64 = digits[..end].parse().ok()?;
    Some((if neg { -n } else { n }, &digits[end..]))
}

/// Parses `label=("c1" "c2");created=…;keyid="…"` (one member only).
fn parse_input(header: &str) -> Result<(String, Vec<String>, String, Params), SigError> {
    let (label, rest) = take_key(header).ok_or_else(|| malformed("Signature-Input label"))?;
    let params_text = rest
        .strip_prefix('=')
        .ok_or_else(|| malformed("Signature-Input: `=` after the label"))?;
    let mut rest = params_text
        .strip_prefix('(')
        .ok_or_else(|| malformed("Signature-Input: an inner list"))?;
    let mut components = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if let Some(r) = rest.strip_prefix(')') {
            rest = r;
            break;
        }
        let (c, r) = take_string(rest).ok_or_else(|| malformed("a component name"))?;
        if components.len() >= COMPONENTS_MAX || components.contains(&c) {
            return Err(malformed("too many or repeated components"));
        }
        components.push(c);
        rest = r;
        if !(rest.starts_with(' ') || rest.starts_with(')')) {
            return Err(malformed("components are separated by one space"));
        }
    }
    let mut p = Params::default();
    while let Some(r) = rest.strip_prefix(';') {
        let (name, r) = take_key(r).ok_or_else(|| malformed("a parameter name"))?;
        let r = r
            .strip_prefix('=')
            .ok_or_else(|| malformed("a parameter value"))?;
        rest = match name {
            "created" | "expires" => {
                let (n, r) = take_integer(r).ok_or_else(|| malformed("an integer parameter"))?;
                let slot = if name == "created" {
                    &mut p.created
                } else {
                    &mut p.expires
                };
                if slot.replace(n).is_some() {
                    return Err(malformed("a repeated parameter"));
                }
                r
            }
            "keyid" | "alg" | "nonce" => {
                let (v, r) = take_string(r).ok_or_else(|| malformed("a string parameter"))?;
                let slot = match name {
                    "keyid" => &mut p.keyid,
                    "alg" => &mut p.alg,
                    _ => &mut p.nonce,
                };
                if slot.replace(v).is_some() {
                    return Err(malformed("a repeated parameter"));
                }
                r
            }
            other => return Err(malformed(format!("unknown parameter `{other}`"))),
        };
    }
    if !rest.is_empty() {
        return Err(malformed("one signature per request"));
    }
    Ok((label.to_string(), components, params_text.to_string(), p))
}

#[derive(Debug, Default)]
struct Params {
    created: Option<i64>,
    expires: Option<i64>,
    keyid: Option<String>,
    alg: Option<String>,
    nonce: Option<String>,
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, SigError> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() || v.len() > HEADER_BYTES_MAX {
        return Err(malformed(format!(
            "one `{name}` header, at most {HEADER_BYTES_MAX} bytes"
        )));
    }
    v.to_str()
        .map(Some)
        .map_err(|_| malformed(format!("`{name}` is not ASCII")))
}

/// Reads the request's signature headers: `None` when it carries none.
pub fn parse(headers: &HeaderMap) -> Result<Option<SignedRequest>, SigError> {
    let (input, sig) = match (
        header_text(headers, "signature-input")?,
        header_text(headers, "signature")?,
    ) {
        (None, None) => return Ok(None),
        (Some(i), Some(s)) => (i, s),
        _ => return Err(malformed("`Signature-Input` and `Signature` go together")),
    };
    let (label, components, params_text, p) = parse_input(input)?;
    let (sig_label, rest) = take_key(sig).ok_or_else(|| malformed("Signature label"))?;
    if sig_label != label {
        return Err(malformed(
            "`Signature` names another label than `Signature-Input`",
        ));
    }
    let b64 = rest
        .strip_prefix("=:")
        .and_then(|r| r.strip_suffix(':'))
        .ok_or_else(|| malformed("`Signature` is `label=:base64:`"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| malformed("`Signature` is not base64"))?;
    let signature: [u8; 64] = bytes
        .try_into()
        .map_err(|_| malformed("a signature is 64 bytes (Ed25519, or SM2's r ‖ s)"))?;
    Ok(Some(SignedRequest {
        label,
        components,
        created: p
            .created
            .ok_or_else(|| malformed("`created` is required"))?,
        expires: p.expires,
        keyid: p.keyid.ok_or_else(|| malformed("`keyid` is required"))?,
        alg: p.alg,
        nonce: p.nonce,
        params_text,
        signature,
    }))
}

/// The value of one covered component.
fn component_value(
    name: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<String, SigError> {
    Ok(match name {
        "@method" => method.as_str().to_string(),
        "@path" => uri.path().to_string(),
        // RFC 9421 §2.2.7: an absent query is `?`.
        "@query" => format!("?{}", uri.query().unwrap_or("")),
        "@authority" => headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase)
            .or_else(|| uri.authority().map(|a| a.as_str().to_ascii_lowercase()))
            .ok_or_else(|| malformed("`@authority` without a Host"))?,
        n if n.starts_with('@') => return Err(malformed(format!("unsupported component `{n}`"))),
        header => {
            if header.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(malformed("header component names are lowercase"));
            }
            let values: Vec<&str> = headers
                .get_all(header)
                .iter()
                .map(|v| v.to_str().map(str::trim))
                .collect::<Result<_, _>>()
                .map_err(|_| malformed(format!("`{header}` is not ASCII")))?;
            if values.is_empty() {
                return Err(malformed(format!("covered header `{header}` is absent")));
            }
            values.join(", ")
        }
    })
}

/// The signature base (RFC 9421 §2.5) of `req` for the request.
pub fn signature_base(
    req: &SignedRequest,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<String, SigError> {
    let mut base = String::new();
    for c in &req.components {
        base.push_str(&format!(
            "\"{c}\": {}\n",
            component_value(c, method, uri, headers)?
        ));
    }
    base.push_str(&format!("\"@signature-params\": {}", req.params_text));
    Ok(base)
}

/// `sha-256=:…:` of `body` (RFC 9530).
pub fn content_digest(body: &[u8]) -> String {
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(ledger::hash::sha256(body))
    )
}

/// Signs a request as ZSL clients do: the headers to add (`Signature-Input`,
/// `Signature`, and `Content-Digest` when there is a body) for `method` on
/// `path_and_query` (e.g. `/v1/scores?from=…`, as sent: percent-encoded) at
/// `created_s` (Unix seconds). A random `nonce` makes two identical
/// requests in one second two signatures (Ed25519 and ZSL's SM2 are
/// deterministic), so the replay window never refuses a client's honest repeat.
pub fn sign(
    key: &(impl RequestKey + ?Sized),
    method: &Method,
    path_and_query: &str,
    body: &[u8],
    created_s: i64,
) -> Result<Vec<(&'static str, String)>, SigError> {
    let mut nonce = [0u8; 16];
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut nonce)
        .map_err(|_| malformed("no randomness for a nonce"))?;
    sign_with_nonce(
        key,
        method,
        path_and_query,
        body,
        created_s,
        &hex::encode(nonce),
    )
}

/// [`sign`] with a given nonce.
fn sign_with_nonce(
    key: &(impl RequestKey + ?Sized),
    method: &Method,
    path_and_query: &str,
    body: &[u8],
    created_s: i64,
    nonce: &str,
) -> Result<Vec<(&'static str, String)>, SigError> {
    let public = key.public();
    let (keyid, alg) = (public.to_hex(), alg_name(public.alg()));
    let uri: Uri = path_and_query
        .parse()
        .map_err(|_| malformed("not a path and query"))?;
    let mut components = vec!["@method", "@path", "@query"];
    let mut out = Vec::new();
    let mut headers = HeaderMap::new();
    if !body.is_empty() {
        let digest = content_digest(body);
        headers.insert(
            "content-digest",
            digest.parse().map_err(|_| malformed("digest"))?,
        );
        out.push(("content-digest", digest));
        components.push("content-digest");
    }
    let list: Vec<String> = components.iter().map(|c| format!("\"{c}\"")).collect();
    let params_text = format!(
        "({});created={created_s};keyid=\"{keyid}\";alg=\"{alg}\";nonce=\"{nonce}\"",
        list.join(" "),
    );
    let req = SignedRequest {
        label: "zsl".into(),
        components: components.iter().map(|c| c.to_string()).collect(),
        created: created_s,
        expires: None,
        keyid,
        alg: Some(alg.into()),
        nonce: Some(nonce.to_string()),
        params_text: params_text.clone(),
        signature: [0; 64],
    };
    let base = signature_base(&req, method, &uri, &headers)?;
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign_base(base.as_bytes()));
    out.push(("signature-input", format!("zsl={params_text}")));
    out.push(("signature", format!("zsl=:{sig}:")));
    Ok(out)
}

/// Checks the ZSL profile (coverage, algorithm), the body's digest and the
/// signature by `key` (Ed25519 strictly, or SM2-SM3). Time and who `key` is
/// are the caller's.
pub fn verify(
    req: &SignedRequest,
    key: &Verifier,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SigError> {
    let alg = alg_name(match key {
        Verifier::Ed25519(_) => SigAlg::Ed25519,
        Verifier::Sm2(_) => SigAlg::Sm2Sm3,
    });
    if req.alg.as_deref().is_some_and(|a| a != alg) {
        return Err(malformed(format!("`alg` is `{alg}` for this key")));
    }
    for c in REQUIRED_COMPONENTS {
        if !req.components.iter().any(|x| x == c) {
            return Err(SigError::NotCovered(c));
        }
    }
    if !body.is_empty() {
        if !req.components.iter().any(|x| x == "content-digest") {
            return Err(SigError::NotCovered("content-digest"));
        }
        let sent = header_text(headers, "content-digest")?.unwrap_or("");
        if sent != content_digest(body) {
            return Err(SigError::DigestMismatch);
        }
    }
    let base = signature_base(req, method, uri, headers)?;
    if key.verify(base.as_bytes(), &req.signature) {
        Ok(())
    } else {
        Err(SigError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use ed25519_dalek::{Signature, Signer, SigningKey};

    /// RFC 9421 Appendix B.1.4 `test-key-ed25519` (the PKCS#8 seed) and B.2.6.
    const RFC_SEED: &str = "9f8362f87a484a954e6e740c5b4c0e84229139a20aa8ab56ff66586f6a7d29c5";
    const RFC_PUBLIC: &str = "26b40b8f93fff3d897112f7ebc582b232dbd72517d082fe83cfb30ddce43d1bb";
    const RFC_INPUT: &str = r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#;
    const RFC_SIGNATURE: &str = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";
    const RFC_BASE: &str = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\"@authority\": example.com\n\"content-type\": application/json\n\"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";

    fn rfc_request() -> (Method, Uri, HeaderMap) {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("host", "example.com"),
            ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
            ("content-type", "application/json"),
            ("content-length", "18"),
            ("signature-input", RFC_INPUT),
            ("signature", RFC_SIGNATURE),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        (Method::POST, "/foo?param=Value&Pet=dog".parse().unwrap(), h)
    }

    fn key_from_hex(seed: &str) -> SigningKey {
        let mut b = [0u8; 32];
        hex::decode_to_slice(seed, &mut b).unwrap();
        SigningKey::from_bytes(&b)
    }

    #[test]
    fn the_rfc_9421_ed25519_example_verifies() {
        let key = key_from_hex(RFC_SEED);
        assert_eq!(hex::encode(key.verifying_key().to_bytes()), RFC_PUBLIC);
        let (m, u, h) = rfc_request();
        let req = parse(&h).unwrap().expect("signed");
        assert_eq!(req.label, "sig-b26");
        assert_eq!(req.created, 1_618_884_473);
        let base = signature_base(&req, &m, &u, &h).unwrap();
        assert_eq!(base, RFC_BASE);
        // The RFC's signature, byte for byte (Ed25519 is deterministic).
        let ours = key.sign(base.as_bytes()).to_bytes();
        assert_eq!(ours, req.signature);
        assert!(key
            .verifying_key()
            .verify_strict(base.as_bytes(), &Signature::from_bytes(&req.signature))
            .is_ok());
    }

    #[test]
    fn the_rfc_9530_digest_of_the_example_body() {
        assert_eq!(
            content_digest(br#"{"hello": "world"}"#),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
    }

    fn zsl_request(key: &impl RequestKey, uri: &str, body: &[u8]) -> (Method, Uri, HeaderMap) {
        let method = if body.is_empty() {
            Method::GET
        } else {
            Method::POST
        };
        let mut h = HeaderMap::new();
        for (name, value) in sign(key, &method, uri, body, 1_767_225_600).unwrap() {
            h.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        (method, uri.parse().unwrap(), h)
    }

    #[test]
    fn a_zsl_request_verifies_and_any_change_fails() {
        let key = key_from_hex(RFC_SEED);
        let vk = Verifier::Ed25519(key.verifying_key());
        let (m, u, h) = zsl_request(&key, "/v1/subjects/X?consistency=local", b"");
        let req = parse(&h).unwrap().unwrap();
        assert_eq!(verify(&req, &vk, &m, &u, &h, b""), Ok(()));
        let other: Uri = "/v1/subjects/Y?consistency=local".parse().unwrap();
        assert_eq!(
            verify(&req, &vk, &m, &other, &h, b""),
            Err(SigError::BadSignature)
        );
        let query: Uri = "/v1/subjects/X".parse().unwrap();
        assert_eq!(
            verify(&req, &vk, &m, &query, &h, b""),
            Err(SigError::BadSignature)
        );
        assert_eq!(
            verify(&req, &vk, &Method::DELETE, &u, &h, b""),
            Err(SigError::BadSignature)
        );
        // A body the digest does not name.
        assert_eq!(
            verify(&req, &vk, &m, &u, &h, b"{}"),
            Err(SigError::NotCovered("content-digest"))
        );
        let (m, u, h) = zsl_request(&key, "/v1/sessions", b"{\"a\":1}");
        let req = parse(&h).unwrap().unwrap();
        assert_eq!(verify(&req, &vk, &m, &u, &h, b"{\"a\":1}"), Ok(()));
        assert_eq!(
            verify(&req, &vk, &m, &u, &h, b"{\"a\":2}"),
            Err(SigError::DigestMismatch)
        );
    }

    #[test]
    fn an_sm2_signed_request_verifies_and_names_its_alg() {
        let key = AccountSigningKey::generate_sm2();
        let vk = key.public().verifier().expect("an SM2 point");
        let (m, u, h) = zsl_request(&key, "/v1/accounts/X", b"");
        let req = parse(&h).unwrap().unwrap();
        assert_eq!(req.alg.as_deref(), Some("sm2-sm3"));
        assert_eq!(req.keyid, key.public().to_hex());
        assert_eq!(verify(&req, &vk, &m, &u, &h, b""), Ok(()));
        let other: Uri = "/v1/accounts/Y".parse().unwrap();
        assert_eq!(
            verify(&req, &vk, &m, &other, &h, b""),
            Err(SigError::BadSignature)
        );
        // The same signature checked as another key's, or claiming Ed25519.
        let stranger = AccountSigningKey::generate_sm2()
            .public()
            .verifier()
            .unwrap();
        assert_eq!(
            verify(&req, &stranger, &m, &u, &h, b""),
            Err(SigError::BadSignature)
        );
        let ed = Verifier::Ed25519(key_from_hex(RFC_SEED).verifying_key());
        assert!(matches!(
            verify(&req, &ed, &m, &u, &h, b""),
            Err(SigError::Malformed(_))
        ));
    }

    #[test]
    fn headers_outside_the_profile_are_refused() {
        let mut h = HeaderMap::new();
        assert_eq!(parse(&h), Ok(None));
        for input in [
            r#"a=("@method");created=1;keyid="k";extra=1"#,
            r#"a=("@method" "@method");created=1;keyid="k""#,
            r#"a=("@method");keyid="k""#,
            r#"a=("@method");created=1"#,
            r#"a=("@method");created=1;keyid="k", b=("@path");created=1;keyid="k""#,
            r#"A=("@method");created=1;keyid="k""#,
        ] {
            h.insert("signature-input", HeaderValue::from_str(input).unwrap());
            h.insert("signature", HeaderValue::from_static("a=:AAAA:"));
            assert!(matches!(parse(&h), Err(SigError::Malformed(_))), "{input}");
        }
        h.remove("signature");
        h.insert(
            "signature-input",
            HeaderValue::from_static(r#"a=("@method");created=1;keyid="k""#),
        );
        assert!(parse(&h).is_err(), "an input without a signature");
    }
}
