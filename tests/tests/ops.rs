//! Operations surfaces on real `zsl` processes: `/metrics`, the body-size and
//! per-IP rate limits, HTTPS with a certificate made at test time, JSON
//! logs, and backup → restore → verify-chain.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use zsl_tests::record::*;
use zsl_tests::*;

fn notarize(node: &TestNode, n: u32) -> Value {
    let doc = DocumentNotarize {
        document_hash: hex::encode(ledger::hash::sha256(format!("doc {n}").as_bytes())),
        title: format!("report {n}"),
        media_type: None,
        note: None,
    };
    sign(
        &node.spec.chain_id,
        &node.root_key(),
        &node.root.account,
        "document.notarize",
        &doc,
    )
}

/// `/metrics` as (sample name with labels → value), checking the format on the way:
/// every sample's metric has a `# TYPE` line before it.
fn scrape(api: &str) -> Vec<(String, f64)> {
    let r = http()
        .get(format!("{api}/metrics"))
        .send()
        .expect("GET /metrics");
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = r.text().unwrap();
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect("sample line");
        let base = name.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| base.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(base);
        assert!(typed.contains(family), "{base} has no # TYPE line:\n{text}");
        samples.push((name.to_string(), value.parse().expect("numeric value")));
    }
    samples
}

fn sample(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no sample {name} in {samples:?}"))
        .1
}

#[test]
fn metrics_count_admissions_refusals_latency_and_chain_state() {
    let node = TestNode::start();
    for n in 0..3 {
        let (status, body) = node.submit(&notarize(&node, n));
        assert_eq!(status, 200, "{body}");
    }
    // Refused at admission: a signature over another body.
    let mut bad = notarize(&node, 10);
    bad["body"]["title"] = json!("tampered");
    assert_eq!(node.submit(&bad).0, 403);
    // Refused at commit: the same document notarized twice in one batch is
    // fine, but an unknown account only shows when applied.
    let stranger = test_key("stranger");
    let tx = sign(
        &node.spec.chain_id,
        &stranger,
        "nobody",
        "document.notarize",
        &DocumentNotarize {
            document_hash: hex::encode([7u8; 32]),
            title: "x".into(),
            media_type: None,
            note: None,
        },
    );
    let (status, answer) = node.submit(&tx);
    assert!(status >= 400, "{answer}");
    let code = answer["code"].as_str().unwrap().to_string();

    // Blocks may come at any time (checkpoint co-signatures): the scraped
    // height lies between two status reads around the scrape.
    let before = node.height() as f64;
    let m = scrape(&node.api);
    let (_, st) = node.get("/v1/status");
    let height = sample(&m, "zsl_block_height");
    assert!(
        before <= height && height <= st["height"].as_f64().unwrap(),
        "{before} <= {height} <= {}",
        st["height"]
    );
    assert_eq!(sample(&m, "zsl_raft_leader"), 1.0);
    assert_eq!(sample(&m, "zsl_raft_is_leader"), 1.0);
    assert_eq!(sample(&m, "zsl_raft_term"), st["term"].as_f64().unwrap());
    assert!(sample(&m, "zsl_raft_commit_index") >= 1.0);
    assert_eq!(sample(&m, "zsl_peers"), 0.0);
    assert_eq!(sample(&m, "zsl_raft_members"), 1.0);
    assert!(sample(&m, "zsl_txs_committed_total") >= 3.0);
    assert!(sample(&m, "zsl_tx_commit_seconds_count") >= 3.0);
    assert_eq!(
        sample(&m, "zsl_tx_commit_seconds_bucket{le=\"+Inf\"}"),
        sample(&m, "zsl_tx_commit_seconds_count")
    );
    assert_eq!(
        sample(
            &m,
            "zsl_txs_refused_total{code=\"bad_signature\",stage=\"admission\"}"
        ),
        1.0
    );
    let refused_here = m
        .iter()
        .filter(|(n, _)| n.starts_with("zsl_txs_refused_total") && n.contains(&code))
        .map(|(_, v)| *v)
        .sum::<f64>();
    assert_eq!(refused_here, 1.0, "{code} not counted: {m:?}");
    assert!(m
        .iter()
        .any(|(n, _)| n.starts_with("zsl_rocksdb_sst_bytes{cf=")));
}

/// POSTs `body` over a raw socket and reads the answer. The node answers 413
/// from the headers and may close before the body is written, so the write
/// (on its own thread) may fail with a broken pipe; only the answer counts.
fn post_oversized(api: &str, path: &str, body: &[u8]) -> (u16, Value) {
    use std::io::{BufRead, BufReader, Read, Write};
    let addr = api.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write headers");
    let mut writer = stream.try_clone().expect("clone");
    let body = body.to_vec();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().expect("content-length");
            }
        }
    }
    let mut answer = vec![0u8; length];
    reader.read_exact(&mut answer).expect("body");
    // Unblocks the writer if the node neither read the rest nor closed.
    let _ = reader.into_inner().shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    (
        status,
        serde_json::from_slice(&answer).unwrap_or(Value::Null),
    )
}

#[test]
fn oversized_bodies_get_413_json() {
    let node = TestNode::start();
    let big = vec![b' '; 5 << 20];
    for path in ["/v1/tx", "/v1/txs"] {
        let (status, body) = post_oversized(&node.api, path, &big);
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["code"], "body_too_large", "{body}");
    }
    assert_eq!(node.get("/v1/status").0, 200, "the node still serves");
}

#[test]
fn per_ip_rate_limit_answers_429_with_retry_after() {
    let mut node = TestNode::start();
    node.stop();
    let mut config = std::fs::read_to_string(node.config_path()).unwrap();
    config.push_str("[api]\nrate_limit_per_s = 2\nrate_limit_burst = 10\n");
    std::fs::write(node.config_path(), config).unwrap();
    node.launch();
    let client = http();
    let mut limited = None;
    for _ in 0..40 {
        let r = client
            .get(format!("{}/v1/status", node.api))
            .send()
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("40 quick requests never hit a limit of burst 10");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry), "retry-after {retry}");
    let body: Value = r.json().unwrap();
    assert_eq!(body["code"], "rate_limited", "{body}");
    // The bucket refills: the client gets through again.
    poll("the rate limit to let a request through", 10_000, || {
        let r = client.get(format!("{}/v1/status", node.api)).send().ok()?;
        (r.status() == 200).then_some(())
    });
    let m = scrape_after_limit(&node.api);
    assert!(m >= 1.0);
}

/// The 429 counter, read when the limit lets the scrape through.
fn scrape_after_limit(api: &str) -> f64 {
    poll("a scrape past the rate limit", 10_000, || {
        let r = http().get(format!("{api}/metrics")).send().ok()?;
        if r.status() != 200 {
            return None;
        }
        let text = r.text().ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("zsl_http_rate_limited_total "))
            .and_then(|v| v.parse().ok())
    })
}

/// A `zsl node run` process on its own (TestNode speaks plain HTTP only); killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(args: &[&str]) -> Option<(String, String)> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    out.status
        .success()
        .then(|| (String::from_utf8_lossy(&out.stdout).to_string(), stderr))
}

#[test]
fn https_with_a_configured_certificate_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let genesis_time = jiff::Timestamp::now().to_string();
    let d = genesis::devnet("zsl-test", &genesis_time, 1).unwrap();
    genesis::write_json(&dir.path().join("genesis.json"), &d.spec).unwrap();
    genesis::write_json(&dir.path().join("validator.key.json"), &d.validators[0]).unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
    std::fs::write(
        dir.path().join("node.toml"),
        "node_id = 1\ndata_dir = \"data\"\ngenesis = \"genesis.json\"\napi_listen = \"127.0.0.1:0\"\nvalidator_key = \"validator.key.json\"\n[api]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let log = dir.path().join("node.log");
    let logf = std::fs::File::create(&log).unwrap();
    let mut proc = Proc(
        Command::new(zsl_binary())
            .args(["node", "run", "--config"])
            .arg(dir.path().join("node.toml"))
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap(),
    );
    let addr_file = dir.path().join("data/api.addr");
    let cert_arg = cert.to_str().unwrap().to_string();
    let (status, port) = poll("the HTTPS node to serve", READY_TIMEOUT_MS, || {
        if let Ok(Some(s)) = proc.0.try_wait() {
            panic!(
                "zsl exited ({s}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let addr = std::fs::read_to_string(&addr_file).ok()?;
        let port = addr.trim().rsplit_once(':')?.1.to_string();
        let url = format!("https://localhost:{port}/v1/status");
        let resolve = format!("localhost:{port}:127.0.0.1");
        let (out, _) = curl(&["--cacert", &cert_arg, "--resolve", &resolve, &url])?;
        let v: Value = serde_json::from_str(&out).ok()?;
        v["leader"].is_u64().then_some((v, port))
    });
    assert_eq!(status["chain_id"], "zsl-test");
    // Plain HTTP on the TLS port gets no answer.
    let plain = curl(&[&format!("http://127.0.0.1:{port}/v1/status")]);
    assert!(plain.is_none(), "plain HTTP answered on the TLS port");
    // A client that does not trust the certificate refuses the connection.
    let resolve = format!("localhost:{port}:127.0.0.1");
    assert!(curl(&[
        "--resolve",
        &resolve,
        &format!("https://localhost:{port}/v1/status")
    ])
    .is_none());

    // zsl's own client speaks HTTPS too: an ERP import through it, trusting the
    // certificate by SSL_CERT_FILE.
    genesis::write_json(&dir.path().join("root.key.json"), &d.root).unwrap();
    let doc = |n: u8| serde_json::json!({"type": "document.notarize", "document_hash": hex::encode([n; 32]), "title": format!("tls {n}")});
    let rows = dir.path().join("docs.jsonl");
    std::fs::write(&rows, format!("{}\n{}\n", doc(1), doc(2))).unwrap();
    let out = Command::new(zsl_binary())
        .args(["client", "import"])
        .arg(&rows)
        .arg("--key")
        .arg(dir.path().join("root.key.json"))
        .args(["--node", &format!("https://127.0.0.1:{port}"), "--quiet"])
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "import over HTTPS: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(summary["committed"], 2, "{summary}");

    // Every log line is one JSON object; the start line says https.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "node serving" && l["fields"]["scheme"] == "https"),
        "{text}"
    );
    drop(proc);
}

fn zsl(args: &[&str], extra: &[&Path]) -> (bool, String) {
    let out = Command::new(zsl_binary())
        .args(args)
        .args(extra)
        .output()
        .expect("run zsl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn backup_restore_verify_chain_keeps_the_head() {
    let mut node = TestNode::start();
    for n in 0..5 {
        let (status, body) = node.submit(&notarize(&node, n));
        assert_eq!(status, 200, "{body}");
    }
    let out: PathBuf = node.dir.path().join("backup");
    let data = node.data_dir();
    // While the node runs, its store is locked: the backup says so and writes nothing usable.
    let (ok, text) = zsl(
        &["backup"],
        &[Path::new("--data"), &data, Path::new("--out"), &out],
    );
    assert!(!ok, "backup of a running node succeeded: {text}");
    assert!(text.contains("is the node stopped?"), "{text}");
    let _ = std::fs::remove_dir_all(&out);

    node.stop();
    let genesis = node.dir.path().join("genesis.json");
    let verify = |db: &Path| {
        let (ok, text) = zsl(
            &["verify-chain"],
            &[Path::new("--data"), db, Path::new("--genesis"), &genesis],
        );
        assert!(ok, "verify-chain failed on {}: {text}", db.display());
        text
    };
    // The stopped node's head, as verify-chain reports it.
    let original = verify(&data.join("db"));
    let head = original
        .split("head ")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .expect("head in verify-chain output")
        .to_string();
    let (ok, text) = zsl(
        &["backup"],
        &[Path::new("--data"), &data, Path::new("--out"), &out],
    );
    assert!(ok, "backup failed: {text}");
    let manifest: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(manifest["head"]["head_hash"], head.as_str());
    let height = manifest["head"]["height"].as_u64().unwrap();
    assert!(height >= 5, "{manifest}");

    let restored = node.dir.path().join("restored");
    let (ok, text) = zsl(
        &["restore"],
        &[Path::new("--backup"), &out, Path::new("--data"), &restored],
    );
    assert!(ok, "restore failed: {text}");
    // A second restore onto the same place is refused: a store is never overwritten.
    let (ok, text) = zsl(
        &["restore"],
        &[Path::new("--backup"), &out, Path::new("--data"), &restored],
    );
    assert!(!ok && text.contains("exists"), "{text}");

    // Same blocks, same transactions, same head, re-verified from genesis.
    assert_eq!(verify(&restored.join("db")), original);

    // The node runs on the restored store and serves the same head.
    std::fs::remove_dir_all(node.data_dir().join("db")).unwrap();
    std::fs::rename(restored.join("db"), node.data_dir().join("db")).unwrap();
    node.launch();
    let (status, block) = node.get(&format!("/v1/blocks/{height}"));
    assert_eq!(status, 200, "{block}");
    assert_eq!(block["hash"], head.as_str());
    let (status, body) = node.submit(&notarize(&node, 99));
    assert_eq!(status, 200, "the restored node does not commit: {body}");
}

/// Every `.route("PATH", get(..).post(..))` in the API crate's source, as (method, path).
fn routes_in_source() -> std::collections::BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src");
    let mut routes = std::collections::BTreeSet::new();
    let texts: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("rs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    // A path given as a constant (`read::READ_INDEX_PATH`) is resolved from
    // its `const NAME: &str = "...";`, so no route escapes the check.
    let const_path = |name: &str| -> Option<String> {
        let decl = format!("const {name}: &str = \"");
        texts.iter().find_map(|t| {
            let at = t.find(&decl)? + decl.len();
            Some(t[at..at + t[at..].find('"')?].to_string())
        })
    };
    for text in &texts {
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's arguments, up to its closing parenthesis.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .expect("closed .route(");
            let args = &rest[..end];
            let first = args.split(',').next().unwrap_or_default().trim();
            let route = match first.strip_prefix('"') {
                Some(p) => p[..p.find('"').unwrap()].to_string(),
                None => {
                    let name = first.rsplit("::").next().unwrap_or(first);
                    if !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') || name.is_empty()
                    {
                        continue; // a helper's parameter, not a route
                    }
                    const_path(name).unwrap_or_else(|| panic!("route constant {name} not found"))
                }
            };
            for m in ["get", "post", "put", "delete", "patch"] {
                let call = format!("{m}(");
                if args.match_indices(&call).any(|(i, _)| {
                    i == 0
                        || !args.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && args.as_bytes()[i - 1] != b'_'
                }) {
                    routes.insert((m.to_string(), route.clone()));
                }
            }
        }
    }
    routes
}

#[test]
fn openapi_documents_every_route_and_swagger_ui_is_served() {
    let node = TestNode::start();
    let (status, doc) = node.get("/openapi.json");
    assert_eq!(status, 200);
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "{version}");
    let routes = routes_in_source();
    assert!(
        routes.len() >= 20,
        "the source scan found too few routes: {routes:?}"
    );
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
            documented.insert((method.clone(), path.clone()));
        }
    }
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json (api/src/openapi.rs): {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&routes).collect();
    assert!(
        stale.is_empty(),
        "/openapi.json documents routes the router lacks: {stale:?}"
    );
    // Every $ref resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }

    let page = http().get(format!("{}/docs", node.api)).send().unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("/docs/swagger-ui-bundle.js"), "{html}");
    for (file, kind) in [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("init.js", "text/javascript"),
    ] {
        let r = http()
            .get(format!("{}/docs/{file}", node.api))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert!(r.bytes().unwrap().len() > 50, "{file} is empty");
    }
    let (status, body) = node.get("/docs/../Cargo.toml");
    assert_eq!(status, 404, "{body}");
}

/// schemathesis (PyPI; scripts/setup installs it) fuzzes every operation of
/// `/openapi.json` against a node: no answer may be a 5xx. Seeded, one
/// worker, so a run is repeatable.
#[test]
fn schemathesis_finds_no_server_error() {
    let node = TestNode::start();
    for n in 0..3 {
        let (status, body) = node.submit(&notarize(&node, n));
        assert_eq!(status, 200, "{body}");
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; schemathesis()",
            "run",
        ])
        .arg(format!("{}/openapi.json", node.api))
        .args([
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "20240301",
            "--request-timeout",
            "40",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("python3 (scripts/setup installs schemathesis)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis failed ({}):\n{text}",
        out.status
    );
    assert!(
        text.contains("generated"),
        "schemathesis tested nothing:\n{text}"
    );
    assert!(!text.contains("Server error"), "{text}");
}

/// Three validators serving HTTPS with one certificate: a follower forwards a
/// submission to the leader over HTTPS and relays the commit.
#[test]
fn https_cluster_forwards_submissions_to_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let genesis_time = jiff::Timestamp::now().to_string();
    let d = genesis::devnet("zsl-test", &genesis_time, 3).unwrap();
    genesis::write_json(&dir.path().join("genesis.json"), &d.spec).unwrap();
    genesis::write_json(&dir.path().join("root.key.json"), &d.root).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
    let ids: Vec<u64> = d.spec.validators.iter().map(|v| v.node_id).collect();
    for (v, k) in d.spec.validators.iter().zip(&d.validators) {
        genesis::write_json(
            &dir.path().join(format!("validator-{}.key.json", v.node_id)),
            k,
        )
        .unwrap();
    }
    let addr = |id: u64, file: &str| {
        std::fs::read_to_string(dir.path().join(format!("node-{id}/{file}")))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let cert_arg = cert.to_str().unwrap().to_string();
    let status = |id: u64| -> Option<Value> {
        let api = addr(id, "api.addr")?;
        let (out, _) = curl(&["--cacert", &cert_arg, &format!("https://{api}/v1/status")])?;
        serde_json::from_str(&out).ok()
    };
    let mut procs = Vec::new();
    let start = |id: u64, peers: &str, procs: &mut Vec<Proc>| {
        let config = format!(
            "node_id = {id}\ndata_dir = \"node-{id}\"\ngenesis = \"genesis.json\"\napi_listen = \"127.0.0.1:0\"\np2p_listen = \"127.0.0.1:0\"\nvalidator_key = \"validator-{id}.key.json\"\n{peers}[api]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n"
        );
        let path = dir.path().join(format!("node-{id}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join(format!("node-{id}.log"))).unwrap();
        procs.push(Proc(
            Command::new(zsl_binary())
                .args(["node", "run", "--config"])
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        ));
        poll("a member to serve HTTPS", READY_TIMEOUT_MS, || {
            addr(id, "p2p.addr")?;
            status(id)
        });
    };
    // Followers-to-be first; node 1 initialises the cluster with their addresses.
    let mut peers = String::new();
    for &id in &ids[1..] {
        start(id, "", &mut procs);
        peers.push_str(&format!(
            "[peers.{id}]\np2p = \"{}\"\napi = \"{}\"\n",
            addr(id, "p2p.addr").unwrap(),
            addr(id, "api.addr").unwrap()
        ));
    }
    start(ids[0], &peers, &mut procs);
    let leader = poll("an agreed leader", READY_TIMEOUT_MS, || {
        let leaders: std::collections::BTreeSet<u64> = ids
            .iter()
            .map(|&id| status(id)?["leader"].as_u64())
            .collect::<Option<_>>()?;
        (leaders.len() == 1).then(|| *leaders.first().unwrap())
    });
    let follower = *ids.iter().find(|&&id| id != leader).unwrap();
    let tx = sign(
        &d.spec.chain_id,
        &d.root.signing_key().unwrap(),
        &d.root.account,
        "document.notarize",
        &DocumentNotarize {
            document_hash: hex::encode([9u8; 32]),
            title: "forwarded over TLS".into(),
            media_type: None,
            note: None,
        },
    );
    let tx_file = dir.path().join("tx.json");
    std::fs::write(&tx_file, tx.to_string()).unwrap();
    let out = Command::new(zsl_binary())
        .args(["tx", "submit", "--wait", "--node"])
        .arg(format!("https://{}", addr(follower, "api.addr").unwrap()))
        .arg(&tx_file)
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "submit to follower {follower} failed: {text}{}\nleader log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.path().join(format!("node-{leader}.log"))).unwrap_or_default()
    );
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["status"], "committed", "{answer}");
    drop(procs);
}
