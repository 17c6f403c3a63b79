// Node-side check of api/assets/verify.js's pure functions against the
// worked example (docs/examples/evidence-example.json): every intermediate
// value, the expected checks, and single tampering naming the right check.
// Run: node tests/browser/verify-unit.test.js (tests/tests/browser.rs runs it).
"use strict";
const fs = require("fs");
const path = require("path");
const assert = require("assert");
const V = require("../../api/assets/verify.js");

const root = path.join(__dirname, "..", "..");
const ex = JSON.parse(fs.readFileSync(path.join(root, "docs/examples/evidence-example.json"), "utf8"));
const I = ex.intermediate;
const clone = v => JSON.parse(JSON.stringify(v));
let n = 0;
const ok = (what) => { n++; console.log("ok " + what); };

(async () => {
  // JCS: RFC 8785 vectors (the same as ledger/src/signing.rs's test).
  const v = JSON.parse('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}');
  assert.strictEqual(V.jcs(v), '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
  const keys = JSON.parse('{"\\u20ac":1,"\\r":2,"\\ufb33":3,"1":4,"\\ud83d\\ude00":5,"\\u0080":6,"\\u00f6":7}');
  assert.strictEqual(V.jcs(keys), '{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\ud83d\ude00":5,"\ufb33":3}');
  ok("JCS matches RFC 8785 vectors");

  // Intermediate values of the worked example.
  const g = await V.genesisOf(ex.genesis);
  assert.strictEqual(V.toHex(g.hash), I.genesis_jcs_sha256);
  assert.strictEqual(V.jcs(ex.bundle.record.body), I.record_jcs_body);
  assert.strictEqual(V.toHex(new TextEncoder().encode("ZSL-TX-V1\0" + I.record_jcs_body)), I.record_signed_bytes_hex);
  assert.strictEqual(V.toHex(await V.leafHash(V.hexBytes(I.tx_id, 32))), I.leaf_hash);
  for (const [i, h] of ex.bundle.headers.entries()) {
    const hh = { ...h };
    for (const k of ["prev_hash", "tree_root", "state_hash", "validators_hash"]) hh[k] = V.hexBytes(h[k], 32);
    assert.strictEqual(V.toHex(V.headerInput(hh)), I.headers[i].hash_input_hex);
    assert.strictEqual(V.toHex(await V.sha256(V.headerInput(hh))), I.headers[i].hash);
  }
  const note = V.parseNote(ex.bundle.checkpoint);
  assert.strictEqual(note.text, I.checkpoint_text);
  for (const [i, s] of note.signatures.entries()) {
    const want = I.checkpoint_signatures[i];
    assert.strictEqual(s.name, want.name);
    assert.strictEqual(V.toHex(s.keyId), want.key_id_hex);
    assert.strictEqual(V.toHex(s.signature), want.signature_hex);
    assert.strictEqual(s.name, I.origin, "format 2: every validator signs under the origin");
    const pk = V.hexBytes(ex.genesis.validators.find(x => x.name === want.validator).public_key, 32);
    assert.strictEqual(V.toHex(await V.keyId(s.name, pk)), want.key_id_hex);
  }
  assert.strictEqual(g.log.origin, I.origin);
  assert.strictEqual(I.origin, `${ex.genesis.log_host}/${ex.genesis.chain_id}/${I.genesis_jcs_sha256}`);
  assert.deepStrictEqual(await Promise.all(ex.genesis.validators.map(x => V.vkey(I.origin, V.hexBytes(x.public_key, 32)))), ex.bundle.validators.vkeys);
  assert.strictEqual(V.jcs(ex.genesis.validators), I.validator_set_jcs);
  assert.strictEqual(V.toHex(g.setHash), I.validators_hash);
  assert.strictEqual(g.quorum, I.quorum);
  ok("intermediate values: genesis hash, JCS body, leaf, header inputs and hashes, note, key ids, set hash, quorum");

  // The whole report equals `zsl verify`'s, detail for detail.
  const r = await V.verify(clone(ex.bundle), clone(ex.genesis));
  assert.deepStrictEqual(r.checks.map(c => c.name), ex.expected_checks.map(c => c.name));
  for (const [i, c] of r.checks.entries()) {
    assert.ok(c.ok, `${c.name}: ${c.detail}`);
    assert.strictEqual(c.detail, ex.expected_checks[i].detail, c.name);
  }
  ok(`the example verifies: ${r.checks.length} checks, details identical to zsl verify's`);

  // Tampering names the right check.
  const failed = async (mutate, g0 = ex.genesis) => {
    const b = clone(ex.bundle), gg = clone(g0);
    mutate(b, gg);
    const rep = await V.verify(b, gg);
    return rep.checks.filter(c => !c.ok).map(c => c.name);
  };
  const cases = [
    ["one character of the record body", b => { b.record.body.media_type = "application/pdg"; },
      // The key and the block time are checked against the record, so they cannot pass either.
      ["record_signature", "signer_key", "block_time"]],
    ["one byte of a checkpoint signature", b => {
      const lines = b.checkpoint.split("\n");
      const i = lines.findIndex(l => l.startsWith("\u2014 ")) + 1; // the second signature line
      const [pre, sig] = [lines[i].slice(0, lines[i].lastIndexOf(" ") + 1), lines[i].slice(lines[i].lastIndexOf(" ") + 1)];
      const bytes = V.b64decode(sig); bytes[10] ^= 1;
      lines[i] = pre + V.b64encode(bytes);
      b.checkpoint = lines.join("\n");
    }, ["checkpoint_signatures"]],
    ["the genesis (another chain's validator key)", (b, gg) => { gg.validators[0].public_key = gg.validators[1].public_key.replace(/^./, "0"); }, null],
    ["an inclusion hash", b => { b.inclusion[0] = b.inclusion[0].replace(/^./, c => (c === "0" ? "1" : "0")); }, ["inclusion"]],
    ["the first header's state hash", b => { b.headers[0].state_hash = "00".repeat(32); }, ["block_header"]],
    ["the last header's state hash", b => { b.headers[1].state_hash = "00".repeat(32); }, ["checkpoint_matches_header"]],
    ["the binding's leaf", b => { b.signer_key.binding.inclusion[1] = "11".repeat(32); }, ["signer_key"]],
    ["the quorum", b => { b.validators.quorum = 1; }, ["validator_set", "summary"]],
    ["the summary", b => { b.summary.en += " "; }, ["summary"]],
    ["an unknown field", b => { b.extra = 1; }, ["bundle"]],
  ];
  for (const [what, m, want] of cases) {
    const got = await failed(m);
    if (want) assert.deepStrictEqual(got, want, what);
    else assert.ok(got.includes("bundle") && got.includes("checkpoint_signatures"), `${what}: ${got}`);
    ok(`tampered ${what}: fails ${got.join(", ")}`);
  }
  // A line by a key nobody knows (a witness's cosignature) is ignored, as
  // c2sp.org/signed-note requires; the quorum is counted over validators.
  const withWitness = clone(ex.bundle);
  withWitness.checkpoint += "\u2014 witness.example/w1 " + V.b64encode(new Uint8Array(76).fill(7)) + "\n";
  const rw = await V.verify(withWitness, clone(ex.genesis));
  assert.ok(rw.checks.every(c => c.ok), JSON.stringify(rw.checks.filter(c => !c.ok)));
  assert.ok(rw.checks.find(c => c.name === "checkpoint_signatures").detail.includes("1 signature line(s) by keys that are not validators in force ignored"));
  const expectedSigs = ex.expected_checks.find(c => c.name === "checkpoint_signatures").detail;
  assert.strictEqual(rw.checks.find(c => c.name === "checkpoint_signatures").detail.split(";")[0], expectedSigs.split(";")[0]);
  ok("an unknown key's signature line is ignored; the bundle still verifies");

  // A bundle relabelled for another genesis with the same validators (the
  // origin commits to the genesis hash) fails.
  const otherGenesis = clone(ex.genesis);
  otherGenesis.tx_window_past_ms += 1;
  const relabelled = clone(ex.bundle);
  relabelled.genesis_hash = V.toHex((await V.genesisOf(clone(otherGenesis))).hash);
  const rr = await V.verify(relabelled, otherGenesis);
  const rrBad = rr.checks.filter(c => !c.ok).map(c => c.name);
  assert.ok(rrBad.includes("checkpoint_matches_header") && rrBad.includes("checkpoint_signatures"), rrBad.join(","));
  ok(`relabelled for another genesis: fails ${rrBad.join(", ")}`);

  // Format 1 (genesis without log_host), as first published, still verifies.
  const v1 = JSON.parse(fs.readFileSync(path.join(root, "docs/examples/evidence-example-v1.json"), "utf8"));
  const r1 = await V.verify(clone(v1.bundle), clone(v1.genesis));
  assert.ok(r1.checks.every(c => c.ok), JSON.stringify(r1.checks.filter(c => !c.ok)));
  for (const [i, c] of r1.checks.entries()) assert.strictEqual(c.detail, v1.expected_checks[i].detail, c.name);
  ok("the format 1 example still verifies, details as published");

  // Strict Ed25519: a small-order key is refused even where WebCrypto would accept.
  const msg = new TextEncoder().encode("x");
  const identity = V.hexBytes("01" + "00".repeat(31), 32);
  assert.strictEqual(await V.ed25519Verify(identity, V.hexBytes("01" + "00".repeat(63), 64), msg), false);
  ok("a small-order public key never verifies");

  // What the node would never emit is refused, as `zsl verify` refuses it.
  for (const [what, text] of [
    ["a duplicate body key", '{"a":1,"b":{"x":1,"x":2}}'],
    ["a duplicate top-level key", '{"tx_id":"aa","tx_id":"bb"}'],
    ["a duplicate key in an array's object", '[{"k":"v","k":"w"}]'],
  ]) assert.throws(() => V.noDuplicateKeys(text), /appears twice/, what);
  V.noDuplicateKeys(JSON.stringify(ex.bundle));
  V.noDuplicateKeys('{"a":"he said \\"}\\"","b":[1,{"a":2}]}');
  assert.strictEqual(V.hexBytes("AB".repeat(32), 32), null);
  const upper = clone(ex.bundle);
  upper.tx_id = upper.tx_id.toUpperCase();
  assert.ok(!(await V.verify(upper, clone(ex.genesis))).ok);
  const extra = clone(ex.bundle);
  extra.headers[0].extra = 1;
  assert.ok(!(await V.verify(extra, clone(ex.genesis))).ok);
  ok("duplicate keys, uppercase hex and unknown header fields are refused");

  // A browser without WebCrypto Ed25519 fails loudly, naming the reason.
  const subtle = globalThis.crypto.subtle;
  const real = subtle.importKey;
  subtle.importKey = async () => { throw new DOMException("Unrecognized algorithm name", "NotSupportedError"); };
  try {
    const rep = await V.verify(clone(ex.bundle), clone(ex.genesis));
    const bad = rep.checks.filter(c => !c.ok);
    assert.ok(bad.some(c => c.name === "record_signature" && c.detail.includes("lacks WebCrypto Ed25519")), JSON.stringify(bad));
    assert.ok(bad.some(c => c.name === "checkpoint_signatures"));
    ok(`no Ed25519 in WebCrypto: fails ${bad.map(c => c.name).join(", ")}, saying why`);
  } finally {
    subtle.importKey = real;
  }

  console.log(`verify.js unit checks passed: ${n}`);
})().catch(e => { console.error("FAILED:", e); process.exit(1); });
