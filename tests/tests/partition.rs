//! Three validator processes on 127.0.0.1: a node cut off in a minority
//! (its two peers frozen with SIGSTOP, sockets open, as in a network
//! partition) acknowledges nothing as committed and grows no block; after
//! SIGCONT the cluster converges on one chain, and a transaction submitted
//! during the partition is committed on every node or on none. And a
//! linearizable read on a follower always sees a commit the leader just
//! acknowledged. Every wait is a poll with a deadline.

use std::time::Duration;

use serde_json::Value;
use zsl_tests::record::DocumentNotarize;
use zsl_tests::*;

const WAIT_MS: u64 = 30_000;
/// How long a client waits for `?wait=commit` from a node in a minority.
/// Several election timeouts (500–1,000 ms): long enough that a commit, if
/// the minority could make one, would have happened.
const MINORITY_WAIT: Duration = Duration::from_secs(4);

fn tx_id(tx: &Value) -> String {
    let signed = ledger::SignedTx::from_value(tx.clone()).expect("signed tx");
    signed.id_hex()
}

fn client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .expect("http client")
}

/// `(status, height)` of node `id`, if it answers within a second.
fn height(cluster: &TestCluster, id: u64) -> Option<(String, u64)> {
    let s: Value = client(Duration::from_secs(1))
        .get(format!("{}/v1/status", cluster.api(id)))
        .send()
        .ok()?
        .json()
        .ok()?;
    Some((s["head_hash"].as_str()?.to_string(), s["height"].as_u64()?))
}

/// Submits `tx` to `id` with `?wait=commit`, giving up after `MINORITY_WAIT`.
/// Returns the HTTP status and answer, or `None` if none came in time.
fn submit_to_minority(cluster: &TestCluster, id: u64, tx: &Value) -> Option<(u16, Value)> {
    let r = client(MINORITY_WAIT)
        .post(format!("{}/v1/tx?wait=commit", cluster.api(id)))
        .json(tx)
        .send()
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().unwrap_or(Value::Null)))
}

/// Submits through any node until one answers `committed` (an election may
/// be running after the partition heals).
fn commit_somewhere(cluster: &TestCluster, tx: &Value) -> Value {
    let http = client(Duration::from_secs(10));
    poll("a post-partition commit", WAIT_MS, || {
        cluster.ids().into_iter().find_map(|id| {
            let r = http
                .post(format!("{}/v1/tx?wait=commit", cluster.api(id)))
                .json(tx)
                .send()
                .ok()?;
            let v: Value = r.json().ok()?;
            (v["status"] == "committed" || v["code"] == "replayed").then_some(v)
        })
    })
}

/// Whether node `id` has committed `tx_id` (`None`: it did not answer clearly).
fn has_tx(cluster: &TestCluster, id: u64, tx_id: &str) -> Option<bool> {
    let r = client(Duration::from_secs(2))
        .get(format!("{}/v1/tx/{tx_id}", cluster.api(id)))
        .send()
        .ok()?;
    match r.status().as_u16() {
        200 => Some(true),
        // Unknown there, or taken there and still undecided: not committed.
        404 | 202 => Some(false),
        _ => None,
    }
}

/// Waits until all nodes have the same head and agree on whether `tx_id` is
/// committed; then checks every block up to that head is the same on all
/// nodes. Returns whether `tx_id` is committed.
fn converge(cluster: &TestCluster, tx_id: &str) -> bool {
    let ids = cluster.ids();
    let (head, committed) = poll("the cluster to converge", WAIT_MS, || {
        let heads: Vec<_> = ids
            .iter()
            .map(|&id| height(cluster, id))
            .collect::<Option<_>>()?;
        let has: Vec<bool> = ids
            .iter()
            .map(|&id| has_tx(cluster, id, tx_id))
            .collect::<Option<_>>()?;
        let same_head = heads.windows(2).all(|w| w[0] == w[1]);
        let same_fate = has.windows(2).all(|w| w[0] == w[1]);
        (same_head && same_fate).then(|| (heads[0].1, has[0]))
    });
    for h in 0..=head {
        let hashes: Vec<Value> = ids
            .iter()
            .map(|&id| {
                let (status, block) = cluster.get(id, &format!("/v1/blocks/{h}"));
                assert_eq!(status, 200, "node {id} has no block {h}: {block}");
                block["hash"].clone()
            })
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "block {h} differs between nodes: {hashes:?}"
        );
    }
    committed
}

/// Cuts `lone` off from the other two (SIGSTOP), submits to it, and checks
/// that nothing is acknowledged or applied there; heals and checks that the
/// cluster converges with the transaction on every node or on none.
fn minority_commits_nothing(cluster: &TestCluster, lone: u64, label: &str) {
    let others: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != lone).collect();
    let tx = cluster.notarize(label);
    let id = tx_id(&tx);
    let paused = cluster.pause(&others);

    let started = std::time::Instant::now();
    let answer = submit_to_minority(cluster, lone, &tx);
    eprintln!(
        "{label}: the lone node answered {answer:?} after {:?}",
        started.elapsed()
    );
    if let Some((status, body)) = &answer {
        assert!(
            *status != 200 && body["status"] != "committed",
            "{label}: a minority node acknowledged a commit: {status} {body}"
        );
    }
    // Anything that was in flight when the peers froze has been applied by
    // now (a submit wait is several election timeouts); from here on the
    // lone node's chain must stand still.
    let (hash_before, height_before) = height(cluster, lone).expect("lone node answers");
    // A linearizable read cannot be served without a quorum: 503, not a stale answer.
    let r = client(Duration::from_secs(15))
        .get(format!(
            "{}/v1/status?consistency=linearizable",
            cluster.api(lone)
        ))
        .send()
        .expect("the lone node answers a linearizable read");
    let status = r.status().as_u16();
    let refusal: Value = r.json().unwrap_or(Value::Null);
    assert_eq!(
        status, 503,
        "{label}: a minority node served a linearizable read: {refusal}"
    );
    eprintln!(
        "{label}: linearizable read refused ({refusal}) after {:?}",
        started.elapsed()
    );
    let (hash_after, height_after) = height(cluster, lone).expect("lone node answers");
    assert_eq!(
        (height_after, &hash_after),
        (height_before, &hash_before),
        "{label}: the lone node's chain moved during the partition"
    );
    assert_eq!(
        has_tx(cluster, lone, &id),
        Some(false),
        "{label}: the minority applied the transaction"
    );

    paused.resume();
    // The healed cluster makes progress, then agrees on one chain and on the
    // partition-time transaction.
    let marker = cluster.notarize(&format!("{label}: after healing"));
    commit_somewhere(cluster, &marker);
    let committed = converge(cluster, &id);
    eprintln!("{label}: the partition-time transaction is committed: {committed}");
}

#[test]
fn a_minority_commits_nothing_and_the_cluster_converges_after_healing() {
    let cluster = TestCluster::start(3);
    let leader = cluster.leader(WAIT_MS);
    let warm = cluster.notarize("before the partition");
    let (status, body) = cluster.submit(leader, &warm);
    assert_eq!(status, 200, "{body}");

    // The leader alone in a minority.
    minority_commits_nothing(&cluster, leader, "leader cut off");

    // A follower alone in a minority (it would forward to a frozen leader).
    let leader = cluster.leader(WAIT_MS);
    let follower = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    minority_commits_nothing(&cluster, follower, "follower cut off");
}

#[test]
fn a_linearizable_read_on_a_follower_sees_what_the_leader_just_committed() {
    let cluster = TestCluster::start(3);
    let leader = cluster.leader(WAIT_MS);
    let follower = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let http = http();
    // For contrast (not asserted: it depends on timing): how often a plain
    // local read on the follower misses a commit the leader just acknowledged.
    let mut local_misses = 0;
    for n in 0..20 {
        let (status, body) = cluster.submit(leader, &cluster.notarize(&format!("local {n}")));
        assert_eq!(status, 200, "{body}");
        let id = body["tx_id"].as_str().expect("tx id");
        if cluster.get(follower, &format!("/v1/tx/{id}")).0 == 404 {
            local_misses += 1;
        }
    }
    eprintln!(
        "local reads on a follower that missed a just-acknowledged commit: {local_misses}/20"
    );
    for n in 0..20 {
        let (status, body) = cluster.submit(leader, &cluster.notarize(&format!("read {n}")));
        assert_eq!(status, 200, "{body}");
        let id = body["tx_id"].as_str().expect("tx id");
        // Half by query parameter, half by header.
        let url = format!("{}/v1/tx/{id}", cluster.api(follower));
        let request = if n % 2 == 0 {
            http.get(format!("{url}?consistency=linearizable"))
        } else {
            http.get(url).header("x-zsl-consistency", "linearizable")
        };
        let r = request.send().expect("GET");
        let status = r.status().as_u16();
        let answer: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(status, 200, "read {n} on follower {follower}: {answer}");
        assert_eq!(answer["tx_id"], id);
    }
    // Anything but `local` or `linearizable` is refused, not read locally.
    let (status, body) = cluster.get(follower, "/v1/status?consistency=eventual");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_consistency");
    // The leader answers its read index to a validator (an account,
    // even the root regulator, is refused); a follower refuses to.
    let (status, body) = cluster.get(leader, "/v1/internal/read-index");
    assert_eq!(status, 403, "{body}");
    let as_validator = cluster.validator_key(follower);
    let (status, body) = signed_get(
        cluster.api(leader),
        "/v1/internal/read-index",
        &as_validator,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["read_index"].as_u64().is_some(), "{body}");
    let (status, body) = signed_get(
        cluster.api(follower),
        "/v1/internal/read-index",
        &as_validator,
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "not_leader");
}

#[test]
fn a_one_validator_node_serves_linearizable_reads() {
    // Its own quorum: the read index needs no peer.
    let node = TestNode::start();
    let tx = sign(
        &node.spec.chain_id,
        &node.root_key(),
        &node.root.account,
        "document.notarize",
        &DocumentNotarize {
            document_hash: hex::encode(ledger::hash::sha256(b"alone")),
            title: "alone".into(),
            media_type: None,
            note: None,
        },
    );
    let (status, body) = node.submit(&tx);
    assert_eq!(status, 200, "{body}");
    let id = body["tx_id"].as_str().expect("tx id");
    let (status, body) = node.get(&format!("/v1/tx/{id}?consistency=linearizable"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = signed_get(&node.api, "/v1/internal/read-index", &node.validator_key());
    assert_eq!(status, 200, "{body}");
    assert!(body["read_index"].as_u64().is_some(), "{body}");
}

/// A client waiting on a follower while the leader is paused (SIGSTOP) gets
/// its commit once the others elect a new leader: the follower re-resolves
/// the leader and forwards again, rather than waiting out its timeout on
/// the paused one (which answered nothing for 5-15 s before).
#[test]
fn forwarding_follows_the_leader_when_the_leader_is_paused() {
    let cluster = TestCluster::start(3);
    let leader = cluster.leader(WAIT_MS);
    let follower = *cluster
        .ids()
        .iter()
        .find(|&&id| id != leader)
        .expect("a follower");
    let tx = cluster.notarize("while the leader is paused");
    let paused = cluster.pause(&[leader]);
    let started = std::time::Instant::now();
    let (status, body) = cluster.submit(follower, &tx);
    let took = started.elapsed();
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("committed")),
        "{body}"
    );
    eprintln!("committed through follower {follower} {took:?} after pausing leader {leader}");
    paused.resume();
    let id = body["tx_id"].as_str().expect("tx id").to_string();
    poll("the transaction on every node", WAIT_MS, || {
        cluster
            .ids()
            .into_iter()
            .all(|n| cluster.get(n, &format!("/v1/tx/{id}")).0 == 200)
            .then_some(())
    });
}
