//! `zsl client import`: an ERP export (CSV or JSONL, one record body per row)
//! signed and submitted in batches, resumable, with a report of refused rows.
//!
//! Resuming rests on deterministic tx ids. A row's body gets a `nonce`
//! derived from its own content and the `created_at` fixed in the journal
//! when the file was first imported, so re-signing the row yields the same
//! tx id: a row already committed is skipped from the journal, or — when the
//! journal missed its outcome (a crash mid-batch) — refused by the node as
//! `replayed`, which counts as already committed. The column mapping is in
//! docs/erp-import.md.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

/// Rows per `POST /v1/txs` (the API takes at most `api::BATCH_TXS_MAX`).
pub const BATCH_ROWS_DEFAULT: usize = 500;
/// Signed bytes per request, kept well under the API's request limit.
const BATCH_BYTES_MAX: usize = api::REQUEST_BYTES_MAX / 2;
/// How long rows refused for a transient reason (`busy`, `not_leader`, …) are retried.
const TRANSIENT_RETRY_MS: u64 = 120_000;
const JOURNAL_FORMAT: &str = "zsl-import-v1";

#[derive(clap::Args)]
pub struct ImportOptions {
    /// `.csv` (header row; columns per docs/erp-import.md) or `.jsonl` (one body per line).
    pub file: PathBuf,
    #[arg(long)]
    pub key: PathBuf,
    /// The node's API, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub node: String,
    /// Record type of every row, for files without a `type` column.
    #[arg(long = "type")]
    pub record_type: Option<String>,
    /// Report of refused rows (default: FILE.report.csv).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Resume journal (default: FILE.journal.jsonl); keep it to make re-runs skip committed rows.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Rows per request (1..=1000).
    #[arg(long = "batch", default_value_t = BATCH_ROWS_DEFAULT)]
    pub batch_rows: usize,
    /// Submit rows the journal lists as refused again (after fixing the cause on chain).
    #[arg(long)]
    pub retry_refused: bool,
    /// Chain id (default: asked of the node).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// One data row: where it is in the file and the body it makes (or why it makes none).
struct Row {
    line: usize,
    body: Result<Map<String, Value>, String>,
}

/// A row's fate, as journaled and reported.
#[derive(Clone)]
struct Outcome {
    status: &'static str,
    code: String,
    message: String,
}

#[derive(Default, Debug)]
struct Tally {
    rows: usize,
    committed: usize,
    already_committed: usize,
    refused: usize,
    unknown: usize,
    submitted: usize,
}

pub fn run(opts: ImportOptions) -> Result<()> {
    if opts.batch_rows == 0 || opts.batch_rows > api::BATCH_TXS_MAX {
        bail!("--batch must be 1..={}", api::BATCH_TXS_MAX);
    }
    let key = genesis::KeyFile::read(&opts.key)?;
    let signing_key = key.account_key()?;
    let node = opts.node.trim_end_matches('/').to_string();
    let client = crate::client::http()?;
    let chain_id = match &opts.chain_id {
        Some(c) => c.clone(),
        None => crate::client::get_json(&format!("{node}/v1/status"))?["chain_id"]
            .as_str()
            .context("the node's /v1/status has no chain_id")?
            .to_string(),
    };
    let rows = read_rows(&opts.file, opts.record_type.as_deref())?;
    let journal_path = opts
        .journal
        .clone()
        .unwrap_or_else(|| suffixed(&opts.file, ".journal.jsonl"));
    let report_path = opts
        .report
        .clone()
        .unwrap_or_else(|| suffixed(&opts.file, ".report.csv"));
    let (created_at, known) = read_journal(&journal_path, &chain_id)?;
    let mut journal = open_journal(&journal_path, &created_at, &chain_id, known.is_empty())?;

    let mut tally = Tally {
        rows: rows.len(),
        ..Tally::default()
    };
    let mut report: Vec<(usize, Option<String>, Outcome)> = Vec::new();
    let mut progress = Progress::new(tally.rows, opts.quiet);
    progress.show(&tally, false);
    // Rows are signed a batch at a time, so memory holds one batch of signed
    // transactions; rows the journal settled are not sent.
    let mut rows = rows.into_iter();
    let mut carried: Option<(usize, String, Value, usize)> = None;
    loop {
        let mut batch: Vec<(usize, String, Value)> = Vec::new();
        let mut bytes = 0;
        while batch.len() < opts.batch_rows {
            let (line, id, tx, len) = match carried.take() {
                Some(c) => c,
                None => {
                    let Some(row) = rows.next() else { break };
                    match sign_row(row, &key, &signing_key, &chain_id, &created_at) {
                        Ok((line, id, tx)) => {
                            let len = tx.to_string().len();
                            (line, id, tx, len)
                        }
                        Err((line, o)) => {
                            tally.refused += 1;
                            report.push((line, None, o));
                            continue;
                        }
                    }
                }
            };
            match known.get(&id) {
                Some(o) if o.status == "committed" => {
                    tally.already_committed += 1;
                    continue;
                }
                Some(o) if o.status == "refused" && !opts.retry_refused => {
                    tally.refused += 1;
                    report.push((line, Some(id), o.clone()));
                    continue;
                }
                _ => {}
            }
            if !batch.is_empty() && bytes + len > BATCH_BYTES_MAX {
                carried = Some((line, id, tx, len));
                break;
            }
            bytes += len;
            batch.push((line, id, tx));
        }
        if batch.is_empty() {
            break;
        }
        let outcomes = submit_with_retry(&client, &node, &batch, &mut tally)?;
        for ((line, id, _), o) in batch.iter().zip(outcomes) {
            match o.status {
                "committed" if o.code == "replayed" => tally.already_committed += 1,
                "committed" => tally.committed += 1,
                "refused" => tally.refused += 1,
                _ => tally.unknown += 1,
            }
            if o.status != "unknown" {
                let mut entry = json!({"tx_id": id, "line": line, "status": o.status});
                if o.status == "refused" {
                    entry["code"] = json!(o.code);
                    entry["message"] = json!(o.message);
                }
                writeln!(journal, "{entry}")?;
            }
            if o.status != "committed" {
                report.push((*line, Some(id.clone()), o));
            }
        }
        // The journal is the resume point: on disk before the next batch goes out.
        journal.flush()?;
        journal.get_ref().sync_data()?;
        progress.show(&tally, false);
    }
    progress.show(&tally, true);
    write_report(&report_path, &mut report)?;
    println!(
        "{}",
        json!({
            "rows": tally.rows,
            "committed": tally.committed,
            "already_committed": tally.already_committed,
            "refused": tally.refused,
            "unknown": tally.unknown,
            "submitted": tally.submitted,
            "report": report_path,
            "journal": journal_path,
        })
    );
    Ok(())
}

/// A row signed: (line, tx id, wire JSON), or why it cannot be.
fn sign_row(
    row: Row,
    key: &genesis::KeyFile,
    signing_key: &ledger::signing::AccountSigningKey,
    chain_id: &str,
    created_at: &str,
) -> Result<(usize, String, Value), (usize, Outcome)> {
    let body = row
        .body
        .map_err(|why| (row.line, outcome("refused", "invalid_row", &why)))?;
    let body = complete_body(body, &key.account, chain_id, created_at);
    let tx = crate::client::sign_map(body, signing_key).map_err(|e| {
        (
            row.line,
            outcome("refused", "malformed_body", &e.to_string()),
        )
    })?;
    Ok((row.line, tx.id_hex(), tx.to_json()))
}

fn outcome(status: &'static str, code: &str, message: &str) -> Outcome {
    Outcome {
        status,
        code: code.into(),
        message: message.into(),
    }
}

fn suffixed(file: &Path, suffix: &str) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Fills the common fields a row left out. The nonce is a hash of the row's
/// content, so the same row signed again (on a re-run) has the same tx id.
fn complete_body(
    mut m: Map<String, Value>,
    account: &str,
    chain_id: &str,
    created_at: &str,
) -> Map<String, Value> {
    m.entry("account")
        .or_insert_with(|| Value::String(account.into()));
    m.entry("chain_id")
        .or_insert_with(|| Value::String(chain_id.into()));
    if !m.contains_key("nonce") {
        let content: BTreeMap<&String, &Value> = m
            .iter()
            .filter(|(k, _)| k.as_str() != "created_at")
            .collect();
        let digest = ledger::hash::sha256(
            serde_json::to_string(&content)
                .unwrap_or_default()
                .as_bytes(),
        );
        let nonce = format!("erp-{}", &hex::encode(digest)[..32]);
        m.insert("nonce".into(), Value::String(nonce));
    }
    m.entry("created_at")
        .or_insert_with(|| Value::String(created_at.into()));
    m
}

/// Submits one batch; rows answered with a transient code are sent again,
/// with growing pauses, until they are decided or the retry time is up.
fn submit_with_retry(
    client: &reqwest::blocking::Client,
    node: &str,
    batch: &[(usize, String, Value)],
    tally: &mut Tally,
) -> Result<Vec<Outcome>> {
    let url = format!("{node}/v1/txs?wait=commit");
    let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    let deadline = Instant::now() + Duration::from_millis(TRANSIENT_RETRY_MS);
    let mut pause = Duration::from_millis(200);
    let mut last_transient = (String::new(), String::new());
    while !pending.is_empty() {
        let txs: Vec<&Value> = pending.iter().map(|&i| &batch[i].2).collect();
        tally.submitted += txs.len();
        let answer = client.post(&url).json(&txs).send();
        let mut wait = pause;
        let results: Option<Vec<Value>> = match answer {
            Ok(resp) => {
                let status = resp.status();
                if let Some(secs) = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    wait = wait.max(Duration::from_secs(secs.min(60)));
                }
                let body: Value = resp.json().unwrap_or(Value::Null);
                if status.is_success() {
                    body["results"]
                        .as_array()
                        .filter(|r| r.len() == txs.len())
                        .cloned()
                } else if status.as_u16() == 429 || status.is_server_error() {
                    last_transient = (
                        body["code"].as_str().unwrap_or("http_error").to_string(),
                        format!("the node answered {status}: {body}"),
                    );
                    None
                } else {
                    bail!("the node refused the batch request with {status}: {body}");
                }
            }
            Err(e) => {
                last_transient = ("unreachable".into(), format!("sending a batch: {e}"));
                None
            }
        };
        let mut still = Vec::new();
        match results {
            None => {
                // Nothing was answered for these rows; the whole request was the problem.
                still = pending.clone();
            }
            Some(results) => {
                for (&i, r) in pending.iter().zip(results) {
                    let status = r["status"].as_str().unwrap_or("unknown");
                    let code = r["code"].as_str().unwrap_or("").to_string();
                    let message = r["message"].as_str().unwrap_or("").to_string();
                    outcomes[i] = Some(match status {
                        "committed" => outcome("committed", "", ""),
                        // Committed before (a run whose journal missed the outcome).
                        "refused" if code == "replayed" => outcome("committed", "replayed", ""),
                        // A retryable code is never final, whatever the status says.
                        "refused" if api::ApiCode::is_retryable(&code) => {
                            last_transient = (code.clone(), message.clone());
                            still.push(i);
                            continue;
                        }
                        "refused" => outcome("refused", &code, &message),
                        _ => {
                            last_transient = (code.clone(), message.clone());
                            still.push(i);
                            continue;
                        }
                    });
                }
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() + wait > deadline {
            break;
        }
        std::thread::sleep(wait);
        pause = (pause * 2).min(Duration::from_secs(5));
    }
    for &i in &pending {
        let (code, message) = &last_transient;
        outcomes[i] = Some(outcome("unknown", code, message));
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| outcome("unknown", "no_answer", "")))
        .collect())
}

/// The journal's fixed `created_at` and the outcomes it holds by tx id.
fn read_journal(path: &Path, chain_id: &str) -> Result<(String, HashMap<String, Outcome>)> {
    let mut known = HashMap::new();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((crate::client::now_rfc3339(), known))
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut lines = BufReader::new(file).lines();
    let head: Value = match lines.next() {
        Some(l) => serde_json::from_str(&l?).context("the journal's first line is not JSON")?,
        None => return Ok((crate::client::now_rfc3339(), known)),
    };
    if head["journal"] != JOURNAL_FORMAT {
        bail!("{} is not a zsl import journal", path.display());
    }
    if head["chain_id"] != chain_id {
        bail!(
            "{} belongs to chain {}, not {chain_id}",
            path.display(),
            head["chain_id"]
        );
    }
    let created_at = head["created_at"]
        .as_str()
        .context("the journal has no created_at")?
        .to_string();
    for line in lines {
        let line = line?;
        // A line cut short by a crash is the last one; its row is simply not settled.
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(id), Some(status)) = (v["tx_id"].as_str(), v["status"].as_str()) else {
            continue;
        };
        let status = match status {
            "committed" => "committed",
            "refused" => "refused",
            _ => continue,
        };
        let o = outcome(
            status,
            v["code"].as_str().unwrap_or(""),
            v["message"].as_str().unwrap_or(""),
        );
        known.insert(id.to_string(), o);
    }
    Ok((created_at, known))
}

fn open_journal(
    path: &Path,
    created_at: &str,
    chain_id: &str,
    fresh: bool,
) -> Result<BufWriter<std::fs::File>> {
    let exists = path.exists() && std::fs::metadata(path)?.len() > 0;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the journal {}", path.display()))?;
    let mut w = BufWriter::new(file);
    if fresh && !exists {
        let head =
            json!({"journal": JOURNAL_FORMAT, "chain_id": chain_id, "created_at": created_at});
        writeln!(w, "{head}")?;
        w.flush()?;
    }
    Ok(w)
}

fn write_report(path: &Path, report: &mut [(usize, Option<String>, Outcome)]) -> Result<()> {
    report.sort_by_key(|(line, _, _)| *line);
    let mut w = BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?,
    );
    writeln!(w, "line,tx_id,status,code,message")?;
    for (line, id, o) in report.iter() {
        writeln!(
            w,
            "{line},{},{},{},{}",
            id.as_deref().unwrap_or(""),
            o.status,
            csv_field(&o.code),
            csv_field(&o.message)
        )?;
    }
    w.flush()?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One `\r`-rewritten stderr line, at most a few times a second.
struct Progress {
    total: usize,
    started: Instant,
    last: Option<Instant>,
    quiet: bool,
}

impl Progress {
    fn new(total: usize, quiet: bool) -> Self {
        Self {
            total,
            started: Instant::now(),
            last: None,
            quiet,
        }
    }

    fn show(&mut self, t: &Tally, done: bool) {
        if self.quiet {
            return;
        }
        let now = Instant::now();
        if !done
            && self
                .last
                .is_some_and(|l| now - l < Duration::from_millis(250))
        {
            return;
        }
        self.last = Some(now);
        let settled = t.committed + t.already_committed + t.refused + t.unknown;
        let width = 30;
        let filled = (settled * width).checked_div(self.total).unwrap_or(width);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r[{}{}] {settled}/{} rows: {} committed, {} already, {} refused, {} unknown ({:.0} rows/s)",
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.total,
            t.committed,
            t.already_committed,
            t.refused,
            t.unknown,
            (t.committed + t.refused) as f64 / secs
        );
        if done {
            eprintln!();
        }
    }
}

// ---- reading rows ----

fn read_rows(path: &Path, record_type: Option<&str>) -> Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "jsonl" | "ndjson" => Ok(jsonl_rows(text, record_type)),
        "csv" => csv_rows(text, record_type),
        _ => bail!("{}: give a .csv or .jsonl file", path.display()),
    }
}

fn jsonl_rows(text: &str, record_type: Option<&str>) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let body = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(mut m)) => {
                if let Some(t) = record_type {
                    m.entry("type").or_insert_with(|| Value::String(t.into()));
                }
                Ok(m)
            }
            Ok(_) => Err("the line is not a JSON object".to_string()),
            Err(e) => Err(format!("the line is not JSON: {e}")),
        };
        rows.push(Row { line: i + 1, body });
    }
    rows
}

fn csv_rows(text: &str, record_type: Option<&str>) -> Result<Vec<Row>> {
    let records = parse_csv(text)?;
    let mut it = records.into_iter();
    let Some((_, header)) = it.next() else {
        return Ok(Vec::new());
    };
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
    if record_type.is_none() && !header.iter().any(|h| h == "type") {
        bail!("the CSV has no `type` column; add one or pass --type");
    }
    let mut rows = Vec::new();
    for (line, cells) in it {
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let body = if cells.len() != header.len() {
            Err(format!(
                "{} cells, but the header has {} columns",
                cells.len(),
                header.len()
            ))
        } else {
            csv_body(&header, &cells, record_type)
        };
        rows.push(Row { line, body });
    }
    Ok(rows)
}

/// Columns whose cells are integers.
const INTEGER_COLUMNS: [&str; 4] = ["quantity", "shelf_life_days", "batches", "version"];
/// Columns whose cells are lists, items separated by `|`.
const LIST_COLUMNS: [&str; 4] = ["certificates", "rapid_tests", "add", "remove"];

/// One CSV row as a record body (the mapping docs/erp-import.md describes).
fn csv_body(
    header: &[String],
    cells: &[String],
    record_type: Option<&str>,
) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    let mut upstream = Map::new();
    if let Some(t) = record_type {
        m.insert("type".into(), Value::String(t.into()));
    }
    for (col, cell) in header.iter().zip(cells) {
        let cell = cell.trim();
        // An empty cell leaves the field out (optional fields keep their defaults).
        if cell.is_empty() || col.is_empty() {
            continue;
        }
        let col = col.as_str();
        let v = if INTEGER_COLUMNS.contains(&col) {
            Value::Number(
                cell.parse::<u64>()
                    .map_err(|_| format!("`{col}` must be a whole number, not `{cell}`"))?
                    .into(),
            )
        } else if col == "points" {
            let n: serde_json::Number = cell
                .parse()
                .map_err(|_| format!("`points` must be a number, not `{cell}`"))?;
            Value::Number(n)
        } else if col == "key_subject" {
            Value::Bool(match cell.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "y" | "是" => true,
                "false" | "0" | "no" | "n" | "否" => false,
                _ => return Err(format!("`key_subject` must be true or false, not `{cell}`")),
            })
        } else if LIST_COLUMNS.contains(&col) {
            Value::Array(split_list(cell).map(|s| Value::String(s.into())).collect())
        } else if col == "lines" {
            let mut lines = Vec::new();
            for item in split_list(cell) {
                let (code, qty) = item.rsplit_once(':').ok_or_else(|| {
                    format!("a shipment line is TRACE_CODE:QUANTITY, not `{item}`")
                })?;
                let qty: u64 = qty
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad quantity in shipment line `{item}`"))?;
                lines.push(json!({"trace_code": code.trim(), "quantity": qty}));
            }
            Value::Array(lines)
        } else if col == "varieties" {
            let mut list = Vec::new();
            for item in split_list(cell) {
                let (code, name) = item
                    .split_once(':')
                    .ok_or_else(|| format!("a variety is CODE:NAME, not `{item}`"))?;
                list.push(json!({"code": code.trim(), "name": name.trim()}));
            }
            Value::Array(list)
        } else if let Some(field) = col.strip_prefix("upstream_") {
            upstream.insert(field.to_string(), Value::String(cell.into()));
            continue;
        } else {
            Value::String(cell.to_string())
        };
        m.insert(col.to_string(), v);
    }
    if !upstream.is_empty() {
        m.insert("upstream".into(), Value::Object(upstream));
    }
    Ok(m)
}

fn split_list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('|').map(str::trim).filter(|s| !s.is_empty())
}

/// RFC 4180 records with the line each starts on: quoted cells may hold
/// commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let mut records = Vec::new();
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut line = 1;
    let mut start_line = 1;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    cell.push(c);
                }
                _ => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if cell.is_empty() => quoted = true,
            ',' => cells.push(std::mem::take(&mut cell)),
            '\r' => {}
            '\n' => {
                cells.push(std::mem::take(&mut cell));
                records.push((start_line, std::mem::take(&mut cells)));
                line += 1;
                start_line = line;
            }
            _ => cell.push(c),
        }
    }
    if quoted {
        bail!("the CSV ends inside a quoted cell (opened on line {start_line})");
    }
    if !cell.is_empty() || !cells.is_empty() {
        cells.push(cell);
        records.push((start_line, cells));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_with_quotes_commas_and_breaks() {
        let r = parse_csv("a,b\n\"x,1\",\"say \"\"hi\"\"\nthere\"\n3,4").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[1],
            (2, vec!["x,1".to_string(), "say \"hi\"\nthere".into()])
        );
        assert_eq!(r[2].0, 4);
    }

    #[test]
    fn csv_columns_map_to_typed_fields() {
        let header: Vec<String> = ["type", "shipment_id", "to", "lines", "upstream_subject"]
            .map(String::from)
            .into();
        let cells: Vec<String> = ["shipment.create", "S1", "X", "ZS1:3|ZS2:4", ""]
            .map(String::from)
            .into();
        let m = csv_body(&header, &cells, None).unwrap();
        assert_eq!(m["lines"][1]["quantity"], 4);
        assert!(!m.contains_key("upstream"));
        let bad: Vec<String> = ["shipment.create", "S1", "X", "ZS1", ""]
            .map(String::from)
            .into();
        assert!(csv_body(&header, &bad, None).is_err());
    }

    #[test]
    fn the_same_row_gets_the_same_nonce() {
        let row = |q: u64| {
            let mut m = Map::new();
            m.insert("type".into(), json!("batch.code"));
            m.insert("quantity".into(), json!(q));
            complete_body(m, "acct", "chain", "2024-01-01T00:00:00Z")
        };
        assert_eq!(row(1)["nonce"], row(1)["nonce"]);
        assert_ne!(row(1)["nonce"], row(2)["nonce"]);
    }
}
