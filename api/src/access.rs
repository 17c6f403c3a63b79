//! Who sees what, in one place (docs/api.md, "Who sees what", is this
//! table in words; tests/tests/access.rs checks it as a matrix).
//!
//! Every route has a [`Rule`]: `Public` routes answer anyone (the trace and
//! subject lookups give an unsigned caller the public view only); `Signed`
//! routes need a caller and the handler then checks the resource with
//! [`sees_region`] / [`is_party`]; `Regulator` routes need a regulator or
//! inspector and are filtered to its jurisdiction; `Validator` routes serve
//! replication only. A route missing from the table is `Regulator`
//! (fail closed), and a test keeps the table complete.

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ledger::state::AccountRole;
use ledger::ChainSpec;

use crate::auth::Caller;
use serde_json::Value;

use crate::{ApiCode, ApiError, ApiResult, AppState};

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone; a handler may still narrow what an unsigned caller sees.
    Public,
    /// A signed caller; the handler checks the resource.
    Signed,
    /// A regulator or inspector; answers cover its jurisdiction.
    Regulator,
    /// A validator of the chain (what replication needs).
    Validator,
}

/// Every route (method, path template as the router names it) and its rule.
pub const RULES: &[(&str, &str, Rule)] = &[
    ("GET", "/", Rule::Public),
    ("GET", "/t/{code}", Rule::Public),
    ("GET", "/s/{uscc}", Rule::Public),
    ("GET", "/dashboard", Rule::Public),
    ("GET", "/explorer", Rule::Public),
    ("GET", "/verify", Rule::Public),
    ("GET", "/assets/{file}", Rule::Public),
    ("GET", "/v1/qr", Rule::Public),
    ("GET", "/metrics", Rule::Public),
    ("GET", "/openapi.json", Rule::Public),
    ("GET", "/docs", Rule::Public),
    ("GET", "/docs/{file}", Rule::Public),
    ("GET", "/v1/status", Rule::Public),
    ("GET", "/v1/genesis", Rule::Public),
    ("GET", "/v1/schemas", Rule::Public),
    ("GET", "/v1/schemas/{kind}", Rule::Public),
    ("POST", "/v1/tx", Rule::Public),
    ("POST", "/v1/txs", Rule::Public),
    ("GET", "/v1/blocks/latest", Rule::Public),
    ("GET", "/v1/blocks/{height}", Rule::Public),
    ("GET", "/v1/checkpoints/latest", Rule::Public),
    ("GET", "/v1/checkpoints/{height}", Rule::Public),
    ("GET", "/v1/proofs/consistency", Rule::Public),
    // A signature over a sealed checkpoint's root, which is public already.
    ("GET", "/v1/scitt/receipt-signature/{height}", Rule::Public),
    ("POST", "/v1/notarize", Rule::Public),
    ("POST", "/v1/notarize/hash", Rule::Public),
    ("GET", "/v1/catalogue/varieties", Rule::Public),
    ("GET", "/v1/regions", Rule::Public),
    ("GET", "/v1/trace/{code}", Rule::Public),
    ("GET", "/v1/subjects/{uscc}", Rule::Public),
    ("GET", "/v1/tx/{id}", Rule::Public),
    ("GET", "/v1/accounts/{id}", Rule::Signed),
    ("GET", "/v1/batches/{trace_code}", Rule::Signed),
    ("GET", "/v1/shipments/{shipper}/{shipment_id}", Rule::Signed),
    ("GET", "/v1/findings/{finding_id}", Rule::Signed),
    ("GET", "/v1/documents/{hash}", Rule::Signed),
    ("GET", "/v1/evidence/{tx_id}", Rule::Signed),
    ("GET", "/v1/evidence/{tx_id}/certificate", Rule::Signed),
    ("GET", "/v1/evidence/{tx_id}/scitt", Rule::Signed),
    ("GET", "/v1/trace/{code}/evidence", Rule::Signed),
    ("GET", "/v1/epcis/events", Rule::Signed),
    ("GET", "/v1/views/subjects/{uscc}/portrait", Rule::Signed),
    (
        "GET",
        "/v1/views/subjects/{uscc}/credit-report",
        Rule::Signed,
    ),
    // A witness answers any log (c2sp.org/tlog-witness: no authentication
    // beyond the checkpoint's signatures).
    ("POST", "/witness/add-checkpoint", Rule::Public),
    ("GET", "/witness/{origin_hash}/checkpoint", Rule::Public),
    ("POST", "/v1/sessions", Rule::Signed),
    ("DELETE", "/v1/sessions", Rule::Signed),
    ("GET", "/v1/views/blocks", Rule::Regulator),
    ("GET", "/v1/views/blocks/{height}/txs", Rule::Regulator),
    ("GET", "/v1/views/daily", Rule::Regulator),
    ("GET", "/v1/views/alerts", Rule::Regulator),
    ("GET", "/v1/scores", Rule::Regulator),
    ("GET", "/v1/scores/{district}", Rule::Regulator),
    ("GET", "/v1/scores/{district}/evidence", Rule::Regulator),
    ("GET", crate::read::READ_INDEX_PATH, Rule::Validator),
];

/// The rule of a route; `Regulator` for one the table misses (fail closed).
pub fn rule(method: &Method, route: &str) -> Rule {
    // HEAD is GET without the body.
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    RULES
        .iter()
        .find(|(m, p, _)| *m == method && *p == route)
        .map_or(Rule::Regulator, |(_, _, r)| *r)
}

/// 401 for an unsigned caller (who might be allowed once signed), 403 for a
/// signed one who is not.
pub fn denied(caller: &Caller, what: &str) -> ApiError {
    match caller {
        Caller::Public => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ApiCode::AuthenticationRequired,
            format!("{what} needs a signed request (RFC 9421) or a session; see docs/api.md"),
        ),
        _ => ApiError::new(
            StatusCode::FORBIDDEN,
            ApiCode::Forbidden,
            format!("{what} is not open to this caller"),
        ),
    }
}

/// Checks `allowed`, naming `what` when it is not.
pub fn require(caller: &Caller, allowed: bool, what: &str) -> ApiResult<()> {
    if allowed {
        Ok(())
    } else {
        Err(denied(caller, what))
    }
}

/// A regulator or inspector, and its jurisdiction.
pub fn regulator_jurisdiction(caller: &Caller) -> Option<&str> {
    match caller {
        Caller::Account {
            role: AccountRole::Regulator | AccountRole::Inspector,
            jurisdiction,
            ..
        } => Some(jurisdiction),
        _ => None,
    }
}

/// Whether the caller oversees `region` (a district, a city or the
/// province): a regulator or inspector whose jurisdiction covers it.
pub fn sees_region(caller: &Caller, spec: &ChainSpec, region: &str) -> bool {
    regulator_jurisdiction(caller)
        .is_some_and(|j| spec.covers(j, region) || spec.covers_jurisdiction(j, region))
}

/// Whether the caller is one of `parties` (account ids or USCCs).
pub fn is_party<'a>(caller: &Caller, parties: impl IntoIterator<Item = &'a str>) -> bool {
    match caller {
        Caller::Account { id, .. } => parties.into_iter().any(|p| p == id),
        _ => false,
    }
}

/// The region an account belongs to: a subject's district, an
/// authority's jurisdiction.
pub fn account_region(state: &AppState, id: &str) -> ApiResult<Option<String>> {
    Ok(ledger::query::account(&state.ledger.store.view(), id)?.map(|a| a.jurisdiction))
}

/// The parties a committed record names: its signer and the subjects it
/// addresses (a shipment's receiver, an answer's shipper, a finding's subject).
pub fn record_parties(account: &str, body: &Value) -> Vec<String> {
    let mut out = vec![account.to_string()];
    for field in ["to", "shipper", "subject", "uscc"] {
        if let Some(s) = body.get(field).and_then(Value::as_str) {
            out.push(s.to_string());
        }
    }
    out
}

/// Whether the caller may read a record in full: a party to it, or a
/// regulator over the region of one of its parties.
pub fn may_read_record(
    state: &AppState,
    caller: &Caller,
    account: &str,
    body: &Value,
) -> ApiResult<bool> {
    let parties = record_parties(account, body);
    if is_party(caller, parties.iter().map(String::as_str)) {
        return Ok(true);
    }
    if regulator_jurisdiction(caller).is_none() {
        return Ok(false);
    }
    for p in &parties {
        if let Some(region) = account_region(state, p)? {
            if sees_region(caller, &state.ledger.spec, &region) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The caller of a request ([`crate::auth::identify`] put it there;
/// `Public` if nothing did, e.g. a router driven in-process without it).
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller::Public))
    }
}

/// Middleware (after [`crate::auth::identify`]): applies the route's rule.
pub async fn enforce(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let Some(route) = route else {
        return next.run(req).await; // no route: the fallback's 404
    };
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Public);
    let ok = match rule(req.method(), &route) {
        Rule::Public => true,
        Rule::Signed => caller != Caller::Public,
        Rule::Regulator => regulator_jurisdiction(&caller).is_some(),
        Rule::Validator => matches!(caller, Caller::Validator { .. }),
    };
    if ok {
        next.run(req).await
    } else {
        denied(&caller, &format!("{} {route}", req.method())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_operation_has_a_rule() {
        let missing: Vec<String> = crate::openapi::operations()
            .filter(|(m, p)| {
                !RULES
                    .iter()
                    .any(|(rm, rp, _)| rm.eq_ignore_ascii_case(m) && rp == p)
            })
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        assert!(missing.is_empty(), "routes without a rule: {missing:?}");
    }

    #[test]
    fn an_unknown_route_is_closed() {
        assert_eq!(rule(&Method::GET, "/v1/new-thing"), Rule::Regulator);
        assert_eq!(rule(&Method::HEAD, "/v1/status"), Rule::Public);
        assert_eq!(
            rule(&Method::GET, "/v1/internal/read-index"),
            Rule::Validator
        );
    }
}
