//! Client-side helpers: signing bodies, talking to a node over HTTP.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use ledger::signing::AccountSigningKey;
use ledger::SignedTx;

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

pub fn read_json_input(file: Option<&Path>) -> Result<Value> {
    let text = match file {
        Some(p) if p != Path::new("-") => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        _ => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
    };
    serde_json::from_str(&text).context("input is not JSON")
}

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A nonce unique within this process and across runs (time plus a counter).
pub fn fresh_nonce() -> String {
    let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", jiff::Timestamp::now().as_microsecond())
}

/// Signs a body, filling the common fields the caller left out.
pub fn sign_body(body: Value, key: &genesis::KeyFile, chain_id: Option<&str>) -> Result<SignedTx> {
    let Value::Object(mut m) = body else {
        bail!("the body must be a JSON object")
    };
    m.entry("account")
        .or_insert_with(|| Value::String(key.account.clone()));
    m.entry("created_at")
        .or_insert_with(|| Value::String(now_rfc3339()));
    m.entry("nonce")
        .or_insert_with(|| Value::String(fresh_nonce()));
    if let Some(c) = chain_id {
        m.entry("chain_id")
            .or_insert_with(|| Value::String(c.into()));
    }
    if !m.contains_key("chain_id") {
        bail!("the body has no chain_id; pass --chain-id");
    }
    sign_map(m, &key.account_key()?)
}

/// Signs a complete body with an account key, Ed25519 or SM2.
pub fn sign_map(m: Map<String, Value>, key: &AccountSigningKey) -> Result<SignedTx> {
    SignedTx::sign_with(m, key).map_err(|r| anyhow::anyhow!("{r}"))
}

pub fn http() -> Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?)
}

pub fn submit(node: &str, tx: &Value, wait: bool) -> Result<(reqwest::StatusCode, Value)> {
    let url = format!(
        "{}/v1/tx{}",
        node.trim_end_matches('/'),
        if wait { "?wait=commit" } else { "" }
    );
    let resp = http()?
        .post(url)
        .json(tx)
        .send()
        .context("sending the transaction")?;
    let status = resp.status();
    let body: Value = resp.json().unwrap_or(Value::Null);
    Ok((status, body))
}

/// Submits a batch and waits for every outcome.
pub fn submit_batch(
    client: &reqwest::blocking::Client,
    node: &str,
    txs: &[Value],
) -> Result<Vec<Value>> {
    let url = format!("{}/v1/txs?wait=commit", node.trim_end_matches('/'));
    let resp = client
        .post(url)
        .json(&txs)
        .send()
        .context("sending a batch")?;
    let status = resp.status();
    let body: Value = resp.json().context("reading the batch answer")?;
    if !status.is_success() {
        bail!("the node answered {status}: {body}");
    }
    Ok(body["results"].as_array().cloned().unwrap_or_default())
}

pub fn get_json(url: &str) -> Result<Value> {
    get_json_as(url, None)
}

/// GET `url`, signed by `key` when given (RFC 9421, as docs/api.md says:
/// reads beyond the public view name their caller).
pub fn get_json_as(url: &str, key: Option<&AccountSigningKey>) -> Result<Value> {
    let mut req = http()?.get(url);
    if let Some(key) = key {
        let path_and_query = reqwest::Url::parse(url)
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            })
            .with_context(|| format!("{url} is not a URL"))?;
        let now = jiff::Timestamp::now().as_second();
        let headers = api::httpsig::sign(key, &reqwest::Method::GET, &path_and_query, b"", now)
            .map_err(|e| anyhow::anyhow!("signing GET {url}: {e}"))?;
        for (name, value) in headers {
            req = req.header(name, value);
        }
    }
    let resp = req.send().with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body: Value = resp.json().unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(body)
}
