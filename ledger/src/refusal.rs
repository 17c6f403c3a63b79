//! Refusals: why a transaction was not applied, as a stable machine-readable
//! code and a message for people. A leaf module: records, signing and the
//! state machine refuse through it; it depends on nothing else in the crate.

/// Why a transaction was not applied. The code strings are a public API: ERP
/// systems switch on them, so they never change meaning once released.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    // Envelope and signing.
    MalformedTx,
    MalformedBody,
    /// A JSON object names a member twice (I-JSON, RFC 7493 §2.3).
    DuplicateKey,
    UnknownType,
    UnknownField,
    MissingField,
    InvalidField,
    TxTooLarge,
    BadSignature,
    WrongChain,
    Stale,
    FromFuture,
    Replayed,
    // Accounts and authority.
    UnknownAccount,
    KeyNotActive,
    KeyInUse,
    LastKey,
    AccountExists,
    NoRole,
    NoJurisdiction,
    // Reference data.
    InvalidUscc,
    InvalidGtin,
    UnknownDistrict,
    UnknownRegion,
    UnknownVariety,
    StaleCatalogue,
    // Domain objects.
    UnknownSubject,
    SubjectExists,
    UnknownProduct,
    ProductExists,
    UnknownBatch,
    BatchExists,
    TraceCodeCollision,
    UnknownShipment,
    ShipmentExists,
    UnknownFinding,
    FindingExists,
    CertificateExists,
    UnknownCertificate,
    TestExists,
    UnknownTest,
    // Rules.
    InsufficientHolding,
    BatchExpired,
    BatchRecalled,
    BatchBlocked,
    AlreadyAnswered,
    NotAddressee,
    SelfShipment,
    AlreadyRectified,
    NotRectifiable,
    AlreadyRecalled,
    InvalidDates,
    LimitExceeded,
    ValidatorExists,
    UnknownValidator,
}

impl RefusalCode {
    /// Every code, in declaration order (docs and tests walk it).
    pub const ALL: [RefusalCode; 55] = [
        RefusalCode::MalformedTx,
        RefusalCode::MalformedBody,
        RefusalCode::DuplicateKey,
        RefusalCode::UnknownType,
        RefusalCode::UnknownField,
        RefusalCode::MissingField,
        RefusalCode::InvalidField,
        RefusalCode::TxTooLarge,
        RefusalCode::BadSignature,
        RefusalCode::WrongChain,
        RefusalCode::Stale,
        RefusalCode::FromFuture,
        RefusalCode::Replayed,
        RefusalCode::UnknownAccount,
        RefusalCode::KeyNotActive,
        RefusalCode::KeyInUse,
        RefusalCode::LastKey,
        RefusalCode::AccountExists,
        RefusalCode::NoRole,
        RefusalCode::NoJurisdiction,
        RefusalCode::InvalidUscc,
        RefusalCode::InvalidGtin,
        RefusalCode::UnknownDistrict,
        RefusalCode::UnknownRegion,
        RefusalCode::UnknownVariety,
        RefusalCode::StaleCatalogue,
        RefusalCode::UnknownSubject,
        RefusalCode::SubjectExists,
        RefusalCode::UnknownProduct,
        RefusalCode::ProductExists,
        RefusalCode::UnknownBatch,
        RefusalCode::BatchExists,
        RefusalCode::TraceCodeCollision,
        RefusalCode::UnknownShipment,
        RefusalCode::ShipmentExists,
        RefusalCode::UnknownFinding,
        RefusalCode::FindingExists,
        RefusalCode::CertificateExists,
        RefusalCode::UnknownCertificate,
        RefusalCode::TestExists,
        RefusalCode::UnknownTest,
        RefusalCode::InsufficientHolding,
        RefusalCode::BatchExpired,
        RefusalCode::BatchRecalled,
        RefusalCode::BatchBlocked,
        RefusalCode::AlreadyAnswered,
        RefusalCode::NotAddressee,
        RefusalCode::SelfShipment,
        RefusalCode::AlreadyRectified,
        RefusalCode::NotRectifiable,
        RefusalCode::AlreadyRecalled,
        RefusalCode::InvalidDates,
        RefusalCode::LimitExceeded,
        RefusalCode::ValidatorExists,
        RefusalCode::UnknownValidator,
    ];

    /// The stable machine-readable code, e.g. `insufficient_holding`.
    pub fn as_str(self) -> &'static str {
        // serde's rename gives the same string; spelled out here so it is const-cheap.
        match self {
            RefusalCode::MalformedTx => "malformed_tx",
            RefusalCode::MalformedBody => "malformed_body",
            RefusalCode::DuplicateKey => "duplicate_key",
            RefusalCode::UnknownType => "unknown_type",
            RefusalCode::UnknownField => "unknown_field",
            RefusalCode::MissingField => "missing_field",
            RefusalCode::InvalidField => "invalid_field",
            RefusalCode::TxTooLarge => "tx_too_large",
            RefusalCode::BadSignature => "bad_signature",
            RefusalCode::WrongChain => "wrong_chain",
            RefusalCode::Stale => "stale",
            RefusalCode::FromFuture => "from_future",
            RefusalCode::Replayed => "replayed",
            RefusalCode::UnknownAccount => "unknown_account",
            RefusalCode::KeyNotActive => "key_not_active",
            RefusalCode::KeyInUse => "key_in_use",
            RefusalCode::LastKey => "last_key",
            RefusalCode::AccountExists => "account_exists",
            RefusalCode::NoRole => "no_role",
            RefusalCode::NoJurisdiction => "no_jurisdiction",
            RefusalCode::InvalidUscc => "invalid_uscc",
            RefusalCode::InvalidGtin => "invalid_gtin",
            RefusalCode::UnknownDistrict => "unknown_district",
            RefusalCode::UnknownRegion => "unknown_region",
            RefusalCode::UnknownVariety => "unknown_variety",
            RefusalCode::StaleCatalogue => "stale_catalogue",
            RefusalCode::UnknownSubject => "unknown_subject",
            RefusalCode::SubjectExists => "subject_exists",
            RefusalCode::UnknownProduct => "unknown_product",
            RefusalCode::ProductExists => "product_exists",
            RefusalCode::UnknownBatch => "unknown_batch",
            RefusalCode::BatchExists => "batch_exists",
            RefusalCode::TraceCodeCollision => "trace_code_collision",
            RefusalCode::UnknownShipment => "unknown_shipment",
            RefusalCode::ShipmentExists => "shipment_exists",
            RefusalCode::UnknownFinding => "unknown_finding",
            RefusalCode::FindingExists => "finding_exists",
            RefusalCode::CertificateExists => "certificate_exists",
            RefusalCode::UnknownCertificate => "unknown_certificate",
            RefusalCode::TestExists => "test_exists",
            RefusalCode::UnknownTest => "unknown_test",
            RefusalCode::InsufficientHolding => "insufficient_holding",
            RefusalCode::BatchExpired => "batch_expired",
            RefusalCode::BatchRecalled => "batch_recalled",
            RefusalCode::BatchBlocked => "batch_blocked",
            RefusalCode::AlreadyAnswered => "already_answered",
            RefusalCode::NotAddressee => "not_addressee",
            RefusalCode::SelfShipment => "self_shipment",
            RefusalCode::AlreadyRectified => "already_rectified",
            RefusalCode::NotRectifiable => "not_rectifiable",
            RefusalCode::AlreadyRecalled => "already_recalled",
            RefusalCode::InvalidDates => "invalid_dates",
            RefusalCode::LimitExceeded => "limit_exceeded",
            RefusalCode::ValidatorExists => "validator_exists",
            RefusalCode::UnknownValidator => "unknown_validator",
        }
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused transaction: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Shorthand for building a refusal.
pub fn refuse(code: RefusalCode, message: impl Into<String>) -> Refusal {
    Refusal::new(code, message)
}
