//! Who is asking: every request is read as [`Caller::Public`] unless it is
//! signed (RFC 9421, [`crate::httpsig`]) by a key the ledger knows, or
//! carries a session token that such a signed request obtained
//! (`POST /v1/sessions`, for the web UI). What each caller may read is
//! decided in one place, [`crate::access`].
//!
//! A signature is accepted once, within [`REQUEST_WINDOW_S`] of its
//! `created` time: a replayed request is refused (`401 replayed_request`).
//! The replay and session stores are bounded.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ledger::state::{account_key, key_owner_key, Account, AccountRole};

use crate::httpsig::{self, SigError};
use crate::{ApiCode, ApiError, AppState, REQUEST_BYTES_MAX};

/// How far a signature's `created` may lie from the node's clock, seconds.
pub const REQUEST_WINDOW_S: i64 = 300;
/// Signatures remembered for replay detection at most.
const SEEN_MAX: usize = 100_000;
/// How long a session lasts, seconds.
pub const SESSION_S: i64 = 900;
/// Sessions open at most; the oldest is dropped past it.
const SESSIONS_MAX: usize = 10_000;

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Unsigned: sees what is public by design.
    Public,
    /// A ledger account (a regulator, inspector, authority, lab or an
    /// enterprise subject), by an active key of its.
    Account {
        id: String,
        role: AccountRole,
        jurisdiction: String,
    },
    /// A validator of the chain, by its node key.
    Validator { name: String },
}

/// The replay window's memory and the open sessions.
#[derive(Debug, Default)]
pub struct Guard {
    /// Signature → the second it expires from the window.
    seen: Mutex<BTreeMap<[u8; 64], i64>>,
    /// Token → (the key that opened it, expiry second). The caller is looked
    /// up again on every use, so a revoked key's sessions end with it.
    sessions: Mutex<BTreeMap<String, (String, i64)>>,
}

fn now_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn unauthorized(code: ApiCode, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

impl Guard {
    /// Remembers `sig` until its window closes; false if it was seen.
    fn first_use(&self, sig: [u8; 64], expires_s: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SEEN_MAX {
            seen.retain(|_, exp| *exp >= now);
        }
        if seen.len() >= SEEN_MAX {
            // Full of live signatures: refuse rather than forget one (a
            // forgotten one could be replayed).
            return false;
        }
        seen.insert(sig, expires_s).is_none()
    }

    /// Opens a session for the holder of `keyid`: its token and expiry (Unix seconds).
    pub fn open_session(&self, keyid: &str) -> Result<(String, i64), ApiError> {
        let mut bytes = [0u8; 32];
        rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut bytes)
            .map_err(ApiError::internal)?;
        let token = hex::encode(bytes);
        let now = now_s();
        let expires = now + SESSION_S;
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|_, (_, exp)| *exp > now);
        while s.len() >= SESSIONS_MAX {
            let oldest = s
                .iter()
                .min_by_key(|(_, (_, exp))| *exp)
                .map(|(t, _)| t.clone());
            match oldest {
                Some(t) => s.remove(&t),
                None => break,
            };
        }
        s.insert(token.clone(), (keyid.to_string(), expires));
        Ok((token, expires))
    }

    /// The key a live session was opened with.
    fn session(&self, token: &str) -> Option<String> {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.get(token)
            .filter(|(_, exp)| *exp > now_s())
            .map(|(k, _)| k.clone())
    }

    /// Ends a session (sign-out).
    pub fn close_session(&self, token: &str) {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.remove(token);
    }
}

/// The key's owner: a validator in force, or an account holding it active.
fn owner(state: &AppState, keyid: &str) -> Result<Caller, ApiError> {
    let unknown = || {
        unauthorized(
            ApiCode::UnknownKey,
            "no validator or account holds this key",
        )
    };
    if ledger::signing::SignerKey::parse_hex(keyid).is_none() {
        return Err(unauthorized(
            ApiCode::Unauthenticated,
            "`keyid` is a public key in lowercase hex: Ed25519 (64 characters) or SM2 (130, 04 ‖ x ‖ y)",
        ));
    }
    let store = &state.ledger.store;
    let head = state.ledger.head()?;
    let validators = ledger::seal::validator_set_at(store, head.height)?;
    if let Some(v) = validators.iter().find(|v| v.public_key == keyid) {
        return Ok(Caller::Validator {
            name: v.name.clone(),
        });
    }
    let get = |key: &str| ledger::kv::KvRead::get(store, ledger::kv::Space::State, key.as_bytes());
    let Some(id) = get(&key_owner_key(keyid)).map_err(ApiError::internal)? else {
        return Err(unknown());
    };
    let id: String = ledger::state::decode(b"key owner", &id).map_err(ApiError::internal)?;
    let Some(acct) = get(&account_key(&id)).map_err(ApiError::internal)? else {
        return Err(unknown());
    };
    let acct: Account = ledger::state::decode(b"account", &acct).map_err(ApiError::internal)?;
    let active = acct
        .keys
        .iter()
        .any(|k| k.public_key == keyid && k.revoked.is_none());
    if !active {
        return Err(unauthorized(ApiCode::UnknownKey, "this key is revoked"));
    }
    Ok(Caller::Account {
        id: acct.id,
        role: acct.role,
        jurisdiction: acct.jurisdiction,
    })
}

/// The caller of a session token: the current holder of the key that opened
/// it (so a revoked key, or a changed role or jurisdiction, takes effect at
/// once, not when the session expires).
fn session_caller(state: &AppState, authorization: &str) -> Result<Caller, ApiError> {
    let token = authorization.strip_prefix("Bearer ");
    let Some(keyid) = token.and_then(|t| state.guard.session(t)) else {
        return Err(unauthorized(
            ApiCode::Unauthenticated,
            "the session token is unknown or expired; sign in again",
        ));
    };
    owner(state, &keyid).inspect_err(|_| {
        if let Some(t) = token {
            state.guard.close_session(t);
        }
    })
}

/// The key a signed request was signed with (request extension), for
/// `POST /v1/sessions`.
#[derive(Debug, Clone)]
pub struct SignedBy(pub String);

/// Verifies a signed request and names its caller.
fn signed_caller(
    state: &AppState,
    signed: &httpsig::SignedRequest,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Caller, ApiError> {
    let now = now_s();
    if (signed.created - now).abs() > REQUEST_WINDOW_S || signed.expires.is_some_and(|e| e < now) {
        return Err(unauthorized(
            ApiCode::SignatureExpired,
            format!(
                "`created` {} is not within {REQUEST_WINDOW_S} s of the node's clock ({now})",
                signed.created
            ),
        ));
    }
    let caller = owner(state, &signed.keyid)?;
    let key = ledger::signing::SignerKey::parse_hex(&signed.keyid)
        .and_then(|k| k.verifier())
        .ok_or_else(|| {
            unauthorized(
                ApiCode::Unauthenticated,
                "`keyid` is not a usable public key",
            )
        })?;
    httpsig::verify(
        signed,
        &key,
        &parts.method,
        &parts.uri,
        &parts.headers,
        body,
    )
    .map_err(|e| match e {
        SigError::BadSignature | SigError::DigestMismatch => {
            unauthorized(ApiCode::BadRequestSignature, e.to_string())
        }
        _ => unauthorized(ApiCode::Unauthenticated, e.to_string()),
    })?;
    if !state
        .guard
        .first_use(signed.signature, signed.created + REQUEST_WINDOW_S, now)
    {
        return Err(unauthorized(
            ApiCode::ReplayedRequest,
            "this signature was used already; sign each request anew",
        ));
    }
    Ok(caller)
}

/// Middleware: puts the request's [`Caller`] in its extensions, or answers
/// 401 when it claims an identity it cannot show.
pub async fn identify(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let token = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let signed = match httpsig::parse(&parts.headers) {
        Ok(s) => s,
        Err(e) => return unauthorized(ApiCode::Unauthenticated, e.to_string()).into_response(),
    };
    let mut signed_by = None;
    let (caller, body) = match (signed, token) {
        (None, None) => (Caller::Public, body),
        (Some(_), Some(_)) => {
            return unauthorized(
                ApiCode::Unauthenticated,
                "a request is signed or carries a session token, not both",
            )
            .into_response()
        }
        (None, Some(t)) => match session_caller(&state, &t) {
            Ok(c) => (c, body),
            Err(e) => return e.into_response(),
        },
        (Some(s), None) => {
            let bytes = match axum::body::to_bytes(body, REQUEST_BYTES_MAX).await {
                Ok(b) => b,
                Err(_) => return ApiError::body_too_large().into_response(),
            };
            match signed_caller(&state, &s, &parts, &bytes) {
                Ok(c) => {
                    signed_by = Some(SignedBy(s.keyid.clone()));
                    (c, Body::from(bytes))
                }
                Err(e) => return e.into_response(),
            }
        }
    };
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(caller);
    if let Some(k) = signed_by {
        req.extensions_mut().insert(k);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_accepted_once() {
        let g = Guard::default();
        assert!(g.first_use([1; 64], 100, 0));
        assert!(!g.first_use([1; 64], 100, 0));
        assert!(g.first_use([2; 64], 100, 0));
    }

    #[test]
    fn sessions_expire_and_close() {
        let g = Guard::default();
        let (t, exp) = g.open_session("ab").unwrap();
        assert!(exp > now_s());
        assert_eq!(g.session(&t).as_deref(), Some("ab"));
        g.close_session(&t);
        assert_eq!(g.session(&t), None);
        assert_eq!(g.session("nope"), None);
    }
}
