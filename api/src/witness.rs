//! This node as a C2SP tlog-witness (c2sp.org/tlog-witness) of other
//! chains' checkpoints: `POST /witness/add-checkpoint` and the monitoring
//! endpoint `GET /witness/{origin hash}/checkpoint`. The decision is
//! `ledger::witness::decide`; here are the HTTP answers, the clock, and the
//! witness's state: one file per log, `DIR/<SHA-256(origin) hex>.json`,
//! written (temp file, fsync, rename, fsync of the directory) before the
//! cosignature leaves, under one lock, so a check and its update are atomic
//! and a crash never rolls a log back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ed25519_dalek::SigningKey;
use ledger::witness::{self, AddCheckpoint, TrustedLog, WitnessRefusal, WitnessedState};

use crate::AppState;

/// A witness: its key name and key, the logs it trusts, where it keeps state.
pub struct WitnessService {
    pub name: String,
    pub key: SigningKey,
    pub logs: BTreeMap<String, TrustedLog>,
    pub dir: PathBuf,
    /// Held from the state read to the state write of one request.
    pub lock: tokio::sync::Mutex<()>,
}

impl WitnessService {
    /// This witness's vkey (`<name>+<key id>+<base64(0x04 ‖ key)>`).
    pub fn vkey(&self) -> String {
        witness::cosigner_vkey(&self.name, &self.key.verifying_key().to_bytes())
    }

    fn state_path(&self, origin: &str) -> PathBuf {
        self.dir.join(format!(
            "{}.json",
            hex::encode(ledger::hash::sha256(origin.as_bytes()))
        ))
    }

    fn read_state(&self, origin: &str) -> std::io::Result<Option<WitnessedState>> {
        match std::fs::read(self.state_path(origin)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_state(&self, origin: &str, s: &WitnessedState) -> std::io::Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(&self.dir)?;
        let path = self.state_path(origin);
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(s).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

fn plain(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn refusal(r: WitnessRefusal) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
    match r {
        WitnessRefusal::Conflict(size) => (
            status,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{size}\n"),
        )
            .into_response(),
        WitnessRefusal::BadRequest(m)
        | WitnessRefusal::Forbidden(m)
        | WitnessRefusal::UnknownLog(m)
        | WitnessRefusal::Unprocessable(m) => plain(status, m + "\n"),
    }
}

fn not_a_witness() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "this node is not configured as a witness ([witness] in its config)\n".into(),
    )
}

/// `POST /witness/add-checkpoint`.
pub(crate) async fn add_checkpoint(State(state): State<AppState>, body: String) -> Response {
    let Some(w) = state.witness.clone() else {
        return not_a_witness();
    };
    let req = match AddCheckpoint::parse(&body) {
        Ok(r) => r,
        Err(m) => return plain(StatusCode::BAD_REQUEST, m + "\n"),
    };
    let origin = req.note.text.split('\n').next().unwrap_or("").to_string();
    let _held = w.lock.lock().await;
    let known = match w.read_state(&origin) {
        Ok(s) => s,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("witness state: {e}\n"),
            )
        }
    };
    let (size, root) = match witness::decide(&req, &w.logs, known.as_ref()) {
        Ok(tree) => tree,
        Err(r) => {
            tracing::info!(%origin, status = r.status(), ?r, "witness refused a checkpoint");
            return refusal(r);
        }
    };
    let now_s = jiff::Timestamp::now().as_second().max(0) as u64;
    let line = witness::cosign(&req.note.text, &w.name, &w.key, now_s);
    let mut cosigned = req.note.clone();
    cosigned.signatures.retain(|s| s.name != w.name);
    cosigned.signatures.push(line.clone());
    let next = WitnessedState {
        size,
        root,
        note: cosigned.render(),
    };
    if let Err(e) = w.write_state(&origin, &next) {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("witness state: {e}\n"),
        );
    }
    plain(StatusCode::OK, line.line())
}

/// `GET /witness/{origin_hash}/checkpoint`: the latest checkpoint this
/// witness cosigned for that log, with the log's and its own signatures.
pub(crate) async fn latest(State(state): State<AppState>, Path(hash): Path<String>) -> Response {
    let Some(w) = state.witness.clone() else {
        return not_a_witness();
    };
    let Some(origin) = w
        .logs
        .keys()
        .find(|o| hex::encode(ledger::hash::sha256(o.as_bytes())) == hash)
    else {
        return plain(StatusCode::NOT_FOUND, "no such log\n".into());
    };
    match w.read_state(origin) {
        Ok(Some(s)) => plain(StatusCode::OK, s.note),
        Ok(None) => plain(
            StatusCode::NOT_FOUND,
            "never cosigned a checkpoint of this log\n".into(),
        ),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("witness state: {e}\n"),
        ),
    }
}
