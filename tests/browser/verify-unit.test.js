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

  // SM3 (GB/T 32905 Annex A) and SM2-SM3 (GB/T 32918.2) with ZSL's ID 1234567812345678.
  const u8 = s => new TextEncoder().encode(s);
  const hx = s => V.hexBytes(s, s.length / 2);
  assert.strictEqual(V.toHex(V.sm3(u8("abc"))), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  assert.strictEqual(V.toHex(V.sm3(u8("abcd".repeat(16)))), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
  assert.strictEqual(V.toHex(V.sm3(new Uint8Array(0))), "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b");
  ok("SM3 matches GB/T 32905's vectors");

  // GM/T 0003.5-2012 Annex A.2's key, its "message digest" signature.
  const SM2_PK = "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13";
  const pk = hx(SM2_PK);
  assert.ok(V.sm2Verify(pk, hx("f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"), u8("message digest")));
  ok("SM2: the GM/T 0003.5 A.2 signature of \"message digest\" verifies");

  // docs/signing.md's worked example (SM2): the node's deterministic signature.
  const eBody = { type: "batch.code", chain_id: "zsl-devnet", account: "91350100M000100Y43", created_at: "2024-03-01T09:00:00+08:00",
    nonce: "erp-000001", batch_id: "PORK-20240301-01", product_id: "pork-chilled", quantity: 250, unit: "kg",
    production_date: "2024-03-01", expiry_date: "2024-03-06", origin_region: "330102" };
  const eSigned = hx("5a534c2d54582d5631007b226163636f756e74223a2239313335303130304d303030313030593433222c2262617463685f6964223a22504f524b2d32303234303330312d3031222c22636861696e5f6964223a227a736c2d6465766e6574222c22637265617465645f6174223a22323032342d30332d30315430393a30303a30302b30383a3030222c226578706972795f64617465223a22323032342d30332d3036222c226e6f6e6365223a226572702d303030303031222c226f726967696e5f726567696f6e223a22333330313032222c2270726f647563745f6964223a22706f726b2d6368696c6c6564222c2270726f64756374696f6e5f64617465223a22323032342d30332d3031222c227175616e74697479223a3235302c2274797065223a2262617463682e636f6465222c22756e6974223a226b67227d");
  const eSig = hx("cbb4f6ad0b4325216e981a018891a7d70b933c7fa1965bf50c52c4ee60fd25a7bf9ab4f81b85d090806956af4d87848ceeb2b630718ad435921adb9c30148073");
  assert.strictEqual(V.toHex(u8("ZSL-TX-V1\0" + V.jcs(eBody))), V.toHex(eSigned));
  assert.strictEqual(V.toHex(await V.sha256(eSigned)), "5a5c6130498627e396025979edb0737a676ac5614d4b9105b36ff2cd04eff68c");
  assert.strictEqual(V.sm2Verify(pk, eSig, eSigned), true);
  ok("SM2: worked example E (signing.md) verifies over ZSL-TX-V1\\0 ‖ JCS(body)");

  const N = "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123";
  const flip = (b, i) => { const c = Uint8Array.from(b); c[i] ^= 1; return c; };
  const sm2Bad = [
    ["one message byte changed", pk, eSig, flip(eSigned, 40)],
    ["one message byte appended", pk, eSig, V.hexBytes(V.toHex(eSigned) + "00", eSigned.length + 1)],
    ["one byte of r flipped", pk, flip(eSig, 5), eSigned],
    ["one byte of s flipped", pk, flip(eSig, 50), eSigned],
    ["r = 0", pk, hx("00".repeat(32) + V.toHex(eSig).slice(64)), eSigned],
    ["s = 0", pk, hx(V.toHex(eSig).slice(0, 64) + "00".repeat(32)), eSigned],
    ["r = n", pk, hx(N + V.toHex(eSig).slice(64)), eSigned],
    ["s = n", pk, hx(V.toHex(eSig).slice(0, 64) + N), eSigned],
    ["r + s = n", pk, hx("00".repeat(31) + "01" + (BigInt("0x" + N) - 1n).toString(16)), eSigned],
    ["the key's last byte changed (off the curve)", flip(pk, 64), eSig, eSigned],
    ["the key's x = p (not a field element)", hx("04fffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffff" + SM2_PK.slice(66)), eSig, eSigned],
    ["a compressed key", hx("03" + SM2_PK.slice(2, 66)), eSig, eSigned],
    ["the uncompressed key under a 03 prefix", hx("03" + SM2_PK.slice(2)), eSig, eSigned],
    ["an all-zero key", new Uint8Array(65), eSig, eSigned],
    ["a 63-byte signature", pk, eSig.subarray(0, 63), eSigned],
    ["not bytes at all", undefined, null, "x"],
  ];
  for (const [what, k, s, m] of sm2Bad) assert.strictEqual(V.sm2Verify(k, s, m), false, what);
  assert.strictEqual(V.sm2Verify(pk, eSig, eSigned, "1234567812345679"), false, "another ID");
  assert.strictEqual(V.sm2Verify(pk, eSig, eSigned, ""), false, "the empty ID (OpenSSL's default)");
  assert.strictEqual(V.sm2Verify(pk, eSig, eSigned, "1234567812345678"), true, "ZSL's ID, named");
  ok(`SM2: ${sm2Bad.length + 2} tampered or malformed cases all return false`);

  // In a bundle: the example's record re-signed with the A.2 SM2 key (gmalg,
  // random k, checked there). The tx id is the algorithm's independent.
  const sm2Record = b => {
    b.record.signer = SM2_PK;
    b.record.sig = "b11773c96332da0fe193188919733326ae36e6057e73014fce91881555b774dc7573f0aa35eb6153d7ac1c7b1d18c2acb116c5c21545d13ea23c986c4fc56651";
  };
  const recCheck = async (mutate, gg) => {
    const b = clone(ex.bundle);
    mutate(b);
    return (await V.verify(b, gg)).checks.find(c => c.name === "record_signature");
  };
  const edDetail = ex.expected_checks.find(c => c.name === "record_signature").detail;
  assert.ok(edDetail.startsWith(`Ed25519 signature by ${ex.bundle.record.signer} verifies; `), edDetail);
  const noSm2 = await recCheck(sm2Record, clone(ex.genesis));
  assert.deepStrictEqual([noSm2.ok, noSm2.detail], [false, "the record is SM2-signed, and this chain's genesis has no `sm2_accounts`"]);
  const sm2Genesis = { ...clone(ex.genesis), sm2_accounts: true };
  const withSm2 = await recCheck(sm2Record, sm2Genesis);
  assert.ok(withSm2.ok, withSm2.detail);
  assert.strictEqual(withSm2.detail, edDetail.replace(`Ed25519 signature by ${ex.bundle.record.signer}`, `SM2-SM3 signature by ${SM2_PK}`));
  const tampered = await recCheck(b => { sm2Record(b); b.record.body.nonce = "3"; }, sm2Genesis);
  assert.deepStrictEqual([tampered.ok, tampered.detail], [false, "record: signature does not verify over the signed bytes"]);
  const offCurve = await recCheck(b => { sm2Record(b); b.record.signer = SM2_PK.slice(0, -2) + "14"; }, sm2Genesis);
  assert.deepStrictEqual([offCurve.ok, offCurve.detail], [false, "record: `signer` is not a valid SM2-SM3 public key"]);
  const compressed = await recCheck(b => { sm2Record(b); b.record.signer = "03" + SM2_PK.slice(2, 66); }, sm2Genesis);
  assert.deepStrictEqual([compressed.ok, compressed.detail], [false, "record: `signer` must be 64 lowercase hex characters (Ed25519) or 130 starting `04` (SM2)"]);
  // `sm2_accounts: false` is left out of the file, and so of the genesis hash (as Rust's skip_serializing_if).
  assert.strictEqual(V.toHex((await V.genesisOf({ ...clone(ex.genesis), sm2_accounts: false })).hash), I.genesis_jcs_sha256);
  ok("SM2 in a bundle: \"SM2-SM3 signature by …\" where genesis has sm2_accounts, refused where not, tampering caught");

  console.log(`verify.js unit checks passed: ${n}`);
})().catch(e => { console.error("FAILED:", e); process.exit(1); });
