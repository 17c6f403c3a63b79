//! No slow or noisy client can hold a node: slow headers and bodies are cut
//! off at their timeouts, connections are capped per client address, and a
//! flood from one address is rate-limited while another client's
//! submissions still commit. Each test is bounded by polled deadlines.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use zsl_tests::*;

const HEADER_TIMEOUT_MS: u64 = 1_000;
const BODY_TIMEOUT_MS: u64 = 1_000;
const PER_CLIENT: usize = 6;

fn node_with(api: &str) -> TestNode {
    let mut node = TestNode::start();
    node.stop();
    let mut config = std::fs::read_to_string(node.config_path()).unwrap();
    config.push_str(api);
    std::fs::write(node.config_path(), config).unwrap();
    node.launch();
    node
}

fn addr(node: &TestNode) -> String {
    node.api.trim_start_matches("http://").to_string()
}

/// A client on another loopback address (its own rate-limit bucket and
/// connection count; the node still binds 127.0.0.1 only).
fn other_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Writes `bytes` one at a time, `gap` apart, until the server closes the
/// connection; returns how long it stayed open. Gives up after `give_up`.
fn trickle(stream: &mut TcpStream, bytes: &[u8], gap: Duration, give_up: Duration) -> Duration {
    let started = Instant::now();
    for b in bytes.iter().cycle() {
        if stream.write_all(&[*b]).is_err() || started.elapsed() > give_up {
            break;
        }
        // Pacing the slow client is what is under test, not a wait for the server.
        std::thread::sleep(gap);
    }
    started.elapsed()
}

#[test]
fn slow_headers_and_bodies_are_cut_off_and_connections_are_capped() {
    let node = node_with(&format!(
        "[api]\nheader_read_timeout_ms = {HEADER_TIMEOUT_MS}\nbody_read_timeout_ms = {BODY_TIMEOUT_MS}\nconnections_per_client_max = {PER_CLIENT}\n"
    ));
    let give_up = Duration::from_secs(15);

    // Slowloris: headers that never end, a byte every 100 ms.
    let mut slow = TcpStream::connect(addr(&node)).expect("connect");
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let held = trickle(
        &mut slow,
        b"X-Slow: y\r\n",
        Duration::from_millis(100),
        give_up,
    );
    assert!(
        held < Duration::from_millis(HEADER_TIMEOUT_MS * 5),
        "a slow header held the connection {held:?}"
    );

    // A body that stops arriving gets 408 and the connection closes.
    let mut body = TcpStream::connect(addr(&node)).expect("connect");
    body.set_read_timeout(Some(give_up)).unwrap();
    body.write_all(
        b"POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"body\":",
    )
    .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = body.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("request_timeout"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_millis(BODY_TIMEOUT_MS * 5));

    // An idle keep-alive connection is closed too (the header timeout runs
    // while the connection waits for its next request).
    let mut idle = TcpStream::connect(addr(&node)).expect("connect");
    idle.set_read_timeout(Some(give_up)).unwrap();
    idle.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut all = Vec::new();
    let _ = idle.read_to_end(&mut all);
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() < Duration::from_millis(HEADER_TIMEOUT_MS * 5),
        "an idle connection stayed open {:?}",
        started.elapsed()
    );

    // Connections beyond the per-client cap are closed at once; another
    // client is not affected.
    let held: Vec<TcpStream> = (0..PER_CLIENT)
        .map(|_| {
            let s = TcpStream::connect(addr(&node)).expect("connect");
            s.set_read_timeout(Some(give_up)).unwrap();
            s
        })
        .collect();
    // Each held connection has been accepted once a request on one more
    // connection is refused; poll, as accepting is asynchronous.
    poll("the cap to refuse one more connection", 10_000, || {
        let mut extra = TcpStream::connect(addr(&node)).ok()?;
        extra.set_read_timeout(Some(give_up)).ok()?;
        let _ = extra.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut buf = [0u8; 16];
        match extra.read(&mut buf) {
            Ok(0) | Err(_) => Some(()),
            Ok(_) => None,
        }
    });
    let r = other_client()
        .get(format!("{}/v1/status", node.api))
        .send()
        .expect("another client connects");
    assert_eq!(r.status(), 200);
    drop(held);
    // The slots come free when the held connections close.
    poll("a connection from the first client again", 10_000, || {
        let r = http().get(format!("{}/v1/status", node.api)).send().ok()?;
        (r.status() == 200).then_some(())
    });
    let metrics = http()
        .get(format!("{}/metrics", node.api))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(counter("zsl_http_request_timeouts_total ") >= 1.0);
    assert!(counter("zsl_http_connections_refused_total ") >= 1.0);
}

#[test]
fn a_flood_is_rate_limited_while_another_client_commits() {
    let node = node_with("[api]\nrate_limit_per_s = 100\nrate_limit_burst = 100\n");
    let api = node.api.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let (api, stop) = (api.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = http();
                let (mut ok, mut limited) = (0u64, 0u64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match client.get(format!("{api}/v1/status")).send() {
                        Ok(r) if r.status() == 429 => limited += 1,
                        Ok(_) => ok += 1,
                        Err(_) => {}
                    }
                }
                (ok, limited)
            })
        })
        .collect();
    // Meanwhile another client submits and every submission commits.
    let other = other_client();
    let key = node.root_key();
    for n in 0..30 {
        let doc = record::DocumentNotarize {
            document_hash: hex::encode(ledger::hash::sha256(format!("flood {n}").as_bytes())),
            title: format!("during the flood {n}"),
            media_type: None,
            note: None,
        };
        let tx = sign(
            &node.spec.chain_id,
            &key,
            &node.root.account,
            "document.notarize",
            &doc,
        );
        let r = other
            .post(format!("{api}/v1/tx?wait=commit"))
            .json(&tx)
            .send()
            .expect("submit");
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("committed")),
            "{body}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut limited) = (0, 0);
    for f in flooders {
        let (o, l) = f.join().expect("flooder");
        ok += o;
        limited += l;
    }
    assert!(
        limited > ok,
        "the flooder got {ok} answers and {limited} 429s"
    );
}
