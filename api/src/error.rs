//! JSON errors: every non-2xx answer is `{"code": "...", "message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{Refusal, RefusalCode};

/// The API's own error codes; a refused transaction answers with its
/// `RefusalCode` instead. Like refusal codes, the strings are a public API
/// (ERP systems switch on them): one list, never a literal at a call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApiCode {
    BodyTooLarge,
    Busy,
    CommitTimeout,
    EmptyDocument,
    Internal,
    InvalidConsistency,
    InvalidHeight,
    InvalidId,
    InvalidPeriod,
    InvalidQrText,
    InvalidQuery,
    InvalidSizes,
    LeaderUnreachable,
    MalformedRequest,
    NoLeader,
    NoQuorum,
    NotANotarization,
    NotFound,
    NotLeader,
    NotYetSealed,
    OutcomeLost,
    RateLimited,
    ReadTimeout,
    ShuttingDown,
    TextTooLong,
    TooManyTxs,
    UnsupportedMediaType,
    RequestTimeout,
    Unauthenticated,
    UnknownKey,
    SignatureExpired,
    BadRequestSignature,
    ReplayedRequest,
    AuthenticationRequired,
    Forbidden,
    NotAValidator,
    ReceiptsUnavailable,
    TraceTooLarge,
    SealedTooFar,
}

impl ApiCode {
    pub const ALL: [ApiCode; 39] = [
        ApiCode::BodyTooLarge,
        ApiCode::Busy,
        ApiCode::CommitTimeout,
        ApiCode::EmptyDocument,
        ApiCode::Internal,
        ApiCode::InvalidConsistency,
        ApiCode::InvalidHeight,
        ApiCode::InvalidId,
        ApiCode::InvalidPeriod,
        ApiCode::InvalidQrText,
        ApiCode::InvalidQuery,
        ApiCode::InvalidSizes,
        ApiCode::LeaderUnreachable,
        ApiCode::MalformedRequest,
        ApiCode::NoLeader,
        ApiCode::NoQuorum,
        ApiCode::NotANotarization,
        ApiCode::NotFound,
        ApiCode::NotLeader,
        ApiCode::NotYetSealed,
        ApiCode::OutcomeLost,
        ApiCode::RateLimited,
        ApiCode::ReadTimeout,
        ApiCode::ShuttingDown,
        ApiCode::TextTooLong,
        ApiCode::TooManyTxs,
        ApiCode::UnsupportedMediaType,
        ApiCode::RequestTimeout,
        ApiCode::Unauthenticated,
        ApiCode::UnknownKey,
        ApiCode::SignatureExpired,
        ApiCode::BadRequestSignature,
        ApiCode::ReplayedRequest,
        ApiCode::AuthenticationRequired,
        ApiCode::Forbidden,
        ApiCode::NotAValidator,
        ApiCode::ReceiptsUnavailable,
        ApiCode::TraceTooLarge,
        ApiCode::SealedTooFar,
    ];

    /// Whether the condition passes by itself, so the same request may be
    /// sent again (after `Retry-After` if given): the transaction was not
    /// refused, only not taken or not decided yet. A refusal never is.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ApiCode::Busy
                | ApiCode::NotLeader
                | ApiCode::LeaderUnreachable
                | ApiCode::NoLeader
                | ApiCode::NoQuorum
                | ApiCode::ReadTimeout
                | ApiCode::ShuttingDown
                | ApiCode::OutcomeLost
                | ApiCode::CommitTimeout
                | ApiCode::RateLimited
                | ApiCode::RequestTimeout
                | ApiCode::ReceiptsUnavailable
                // The next checkpoint is sealed within a block or so.
                | ApiCode::NotYetSealed
        )
    }

    /// [`Self::retryable`] of a code string (false for refusal codes).
    pub fn is_retryable(code: &str) -> bool {
        ApiCode::ALL
            .iter()
            .any(|c| c.as_str() == code && c.retryable())
    }

    /// The stable machine-readable code, e.g. `invalid_query`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiCode::BodyTooLarge => "body_too_large",
            ApiCode::Busy => "busy",
            ApiCode::CommitTimeout => "commit_timeout",
            ApiCode::EmptyDocument => "empty_document",
            ApiCode::Internal => "internal",
            ApiCode::InvalidConsistency => "invalid_consistency",
            ApiCode::InvalidHeight => "invalid_height",
            ApiCode::InvalidId => "invalid_id",
            ApiCode::InvalidPeriod => "invalid_period",
            ApiCode::InvalidQrText => "invalid_qr_text",
            ApiCode::InvalidQuery => "invalid_query",
            ApiCode::InvalidSizes => "invalid_sizes",
            ApiCode::LeaderUnreachable => "leader_unreachable",
            ApiCode::MalformedRequest => "malformed_request",
            ApiCode::NoLeader => "no_leader",
            ApiCode::NoQuorum => "no_quorum",
            ApiCode::NotANotarization => "not_a_notarization",
            ApiCode::NotFound => "not_found",
            ApiCode::NotLeader => "not_leader",
            ApiCode::NotYetSealed => "not_yet_sealed",
            ApiCode::OutcomeLost => "outcome_lost",
            ApiCode::RateLimited => "rate_limited",
            ApiCode::ReadTimeout => "read_timeout",
            ApiCode::ShuttingDown => "shutting_down",
            ApiCode::TextTooLong => "text_too_long",
            ApiCode::TooManyTxs => "too_many_txs",
            ApiCode::RequestTimeout => "request_timeout",
            ApiCode::Unauthenticated => "unauthenticated",
            ApiCode::UnknownKey => "unknown_key",
            ApiCode::SignatureExpired => "signature_expired",
            ApiCode::BadRequestSignature => "bad_request_signature",
            ApiCode::ReplayedRequest => "replayed_request",
            ApiCode::AuthenticationRequired => "authentication_required",
            ApiCode::Forbidden => "forbidden",
            ApiCode::NotAValidator => "not_a_validator",
            ApiCode::ReceiptsUnavailable => "receipts_unavailable",
            ApiCode::TraceTooLarge => "trace_too_large",
            ApiCode::SealedTooFar => "sealed_too_far",
            ApiCode::UnsupportedMediaType => "unsupported_media_type",
        }
    }
}

impl std::fmt::Display for ApiCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// An `ApiCode` or a `RefusalCode`, as its stable string.
    pub code: &'static str,
    pub message: String,
    pub tx_id: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ApiCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.as_str(),
            message: message.into(),
            tx_id: None,
        }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        let shown: String = id.chars().take(80).collect();
        Self::new(
            StatusCode::NOT_FOUND,
            ApiCode::NotFound,
            format!("no {what} `{shown}`"),
        )
    }

    /// `413 body_too_large` (counted in `/metrics`), whichever layer read
    /// the body: the serve loop, signature checking or a handler.
    pub fn body_too_large() -> Self {
        crate::metrics::too_large();
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiCode::BodyTooLarge,
            format!(
                "request body exceeds {} bytes, or broke off",
                crate::REQUEST_BYTES_MAX
            ),
        )
    }

    pub fn bad_request(code: ApiCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiCode::Internal,
            "the node could not answer; see its log",
        )
    }

    pub fn unavailable(code: ApiCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn with_tx(mut self, tx_id: Option<String>) -> Self {
        self.tx_id = tx_id;
        self
    }
}

/// The HTTP status a refusal maps to.
pub fn refusal_status(code: RefusalCode) -> StatusCode {
    use RefusalCode as C;
    match code {
        C::MalformedTx
        | C::MalformedBody
        | C::DuplicateKey
        | C::UnknownType
        | C::UnknownField
        | C::MissingField
        | C::InvalidField => StatusCode::BAD_REQUEST,
        C::TxTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        C::BadSignature
        | C::KeyNotActive
        | C::NoRole
        | C::NoJurisdiction
        | C::UnknownAccount
        | C::WrongChain => StatusCode::FORBIDDEN,
        C::Replayed
        | C::AccountExists
        | C::SubjectExists
        | C::ProductExists
        | C::BatchExists
        | C::ShipmentExists
        | C::FindingExists
        | C::CertificateExists
        | C::TestExists
        | C::AlreadyAnswered
        | C::AlreadyRectified
        | C::AlreadyRecalled
        | C::KeyInUse
        | C::TraceCodeCollision
        | C::ValidatorExists => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        Self {
            status: refusal_status(r.code),
            code: r.code.as_str(),
            message: r.message,
            tx_id: None,
        }
    }
}

impl From<ledger::LedgerError> for ApiError {
    fn from(e: ledger::LedgerError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "code": self.code,
            "message": self.message,
            "retryable": ApiCode::is_retryable(self.code),
        });
        if let Some(id) = self.tx_id {
            body["tx_id"] = serde_json::Value::String(id);
        }
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_codes_are_distinct_snake_case_and_apart_from_refusal_codes() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ApiCode::ALL {
            let s = c.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s} twice");
            // A client switching on `code` must not confuse the two lists.
            let as_refusal: Result<RefusalCode, _> =
                serde_json::from_value(serde_json::Value::String(s.to_string()));
            assert!(as_refusal.is_err(), "{s} is also a refusal code");
        }
    }

    #[test]
    fn docs_api_md_gives_every_refusal_code_its_status() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
        let doc = std::fs::read_to_string(&path).expect("docs/api.md");
        let section = doc
            .split("## Refusal codes")
            .nth(1)
            .expect("docs/api.md has a refusal codes section");
        let section = section.split("\n## ").next().unwrap_or(section);
        // Each status's list: from its `- NNN:` line to the next one.
        let lists: Vec<(u16, &str)> = section
            .split("\n- ")
            .skip(1)
            .filter_map(|item| {
                let (status, rest) = item.split_once(':')?;
                Some((status.trim().parse().ok()?, rest.split("\n\n").next()?))
            })
            .collect();
        for code in ledger::RefusalCode::ALL {
            let quoted = format!("`{}`", code.as_str());
            let documented: Vec<u16> = lists
                .iter()
                .filter(|(_, l)| l.contains(&quoted))
                .map(|(s, _)| *s)
                .collect();
            assert_eq!(
                documented,
                [refusal_status(code).as_u16()],
                "{code} in docs/api.md"
            );
        }
    }

    #[test]
    fn an_unsealed_record_is_retryable_one_sealed_too_far_is_not() {
        let unsealed: ApiError = ledger::evidence::EvidenceError::NotYetSealed {
            tx: "00".into(),
            height: 7,
        }
        .into();
        let far: ApiError = ledger::evidence::EvidenceError::TooFar(7).into();
        assert_eq!(
            (unsealed.code, far.code),
            ("not_yet_sealed", "sealed_too_far")
        );
        assert!(ApiCode::is_retryable(unsealed.code) && !ApiCode::is_retryable(far.code));
    }

    #[test]
    fn docs_api_md_lists_every_api_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
        let doc = std::fs::read_to_string(&path).expect("docs/api.md");
        let section = doc
            .split("## API error codes")
            .nth(1)
            .expect("docs/api.md has an API error codes section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let missing: Vec<_> = ApiCode::ALL
            .iter()
            .map(|c| c.as_str())
            .filter(|c| !section.contains(&format!("`{c}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "codes missing from docs/api.md: {missing:?}"
        );
    }
}
