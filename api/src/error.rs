//! JSON errors: every non-2xx answer is `{"code": "...", "message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{Refusal, RefusalCode};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub tx_id: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            tx_id: None,
        }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        let shown: String = id.chars().take(80).collect();
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} `{shown}`"),
        )
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the node could not answer; see its log",
        )
    }

    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
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
        Self::new(refusal_status(r.code), r.code.as_str(), r.message)
    }
}

impl From<ledger::LedgerError> for ApiError {
    fn from(e: ledger::LedgerError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(id) = self.tx_id {
            body["tx_id"] = serde_json::Value::String(id);
        }
        (self.status, Json(body)).into_response()
    }
}
