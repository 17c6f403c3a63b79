// Headless-Chromium run of the in-browser evidence verifier (/verify,
// api/assets/verify.js) against a running devnet. Run by
// tests/tests/browser.rs after ui.test.js, with the same environment:
//   ZSL_URL          the node's API base
//   ZSL_CHROMIUM     the Chromium executable
//   ZSL_OUT          directory for screenshots
//   ZSL_TRACE_CODE   a real trace code: its coding record is the one proved
// A real bundle must pass every check; a copy with one character of the
// record body changed, and one with one byte of a checkpoint signature
// changed, must fail with the right check named; a genesis that is not the
// chain's must fail too, and the page must say which genesis it used.
"use strict";

const path = require("path");
const fs = require("fs");
const { chromium } = require("playwright-core");

const BASE = process.env.ZSL_URL;
const OUT = process.env.ZSL_OUT;
const CODE = process.env.ZSL_TRACE_CODE;
const STEP_TIMEOUT_MS = 20000;
/** A record is sealed about one block after it commits; allow for a slow box. */
const SEAL_TIMEOUT_MS = 30000;
const CHECKS = ["bundle", "record_signature", "signer_key", "block_header", "inclusion",
  "checkpoint_matches_header", "validator_set", "checkpoint_signatures", "block_time", "summary"];

let step = "start";
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}
// The root regulator's session: evidence is for parties and their regulators.
const TOKEN = process.env.ZSL_TOKEN;
const AUTH = { headers: { Authorization: "Bearer " + TOKEN } };
async function json(p) {
  const r = await fetch(BASE + p, AUTH);
  check(r.ok, `GET ${p} answered ${r.status}`);
  return r.json();
}
/** The bundle of `tx`, polling while the node answers 409 not_yet_sealed. */
async function bundleOf(tx) {
  const deadline = Date.now() + SEAL_TIMEOUT_MS;
  for (;;) {
    const r = await fetch(`${BASE}/v1/evidence/${tx}`, AUTH);
    const body = await r.json().catch(() => ({}));
    if (r.ok) return body;
    check(r.status === 409 && body.code === "not_yet_sealed", `GET /v1/evidence/${tx} answered ${r.status} ${JSON.stringify(body)}`);
    check(Date.now() < deadline, `tx ${tx} not sealed within ${SEAL_TIMEOUT_MS} ms`);
    await new Promise(res => setTimeout(res, 200));
  }
}
async function shot(page, name) {
  await page.screenshot({ path: path.join(OUT, name + ".png"), fullPage: true });
}
async function open(page, url) {
  await page.goto(BASE + url);
  await page.waitForSelector("body[data-ready='1']", { timeout: STEP_TIMEOUT_MS });
}
/** Pastes bundle (and genesis, unless null: keep what is there), runs, and
 * returns {verdict, rows: [{name, ok}], used}. */
async function verifyIn(page, bundle, genesis) {
  await page.fill("#bundle", typeof bundle === "string" ? bundle : JSON.stringify(bundle, null, 2));
  if (genesis !== null) await page.fill("#genesis", JSON.stringify(genesis, null, 2));
  await page.click("#run");
  return result(page);
}
async function result(page) {
  await page.waitForSelector("body[data-done='pass'], body[data-done='fail']", { timeout: STEP_TIMEOUT_MS });
  const rows = await page.$$eval("#checks tr.check", trs => trs.map(r => ({ name: r.dataset.check, ok: r.dataset.ok === "1", text: r.textContent })));
  const verdict = (await page.textContent("#verdict")).trim();
  const verdictOk = (await page.getAttribute("#verdict", "data-ok")) === "1";
  const used = (await page.textContent("#genesis-used")).trim();
  return { rows, verdict, verdictOk, used, failed: rows.filter(r => !r.ok).map(r => r.name) };
}
const sameList = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

(async () => {
  check(BASE && OUT && CODE && process.env.ZSL_CHROMIUM, "ZSL_URL, ZSL_OUT, ZSL_TRACE_CODE and ZSL_CHROMIUM must be set");
  fs.mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.ZSL_CHROMIUM,
    // No sandbox: CI containers run as root, where Chromium refuses its sandbox.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const errors = [];
  try {
    step = "a real bundle from the devnet";
    const tr = (await json("/v1/trace/" + encodeURIComponent(CODE))).trace;
    const tx = tr.batch.coded.tx;
    check(/^[0-9a-f]{64}$/.test(tx), `coding tx id ${tx}`);
    const bundle = await bundleOf(tx);
    check(bundle.format === "zsl-evidence/2" && bundle.tx_id === tx, "the bundle is for the record");
    const genesis = await json("/v1/genesis");
    const status = await json("/v1/status");
    check(genesis.chain_id === status.chain_id, "GET /v1/genesis is this chain's");
    console.log(`ok bundle of ${tx} (block ${bundle.headers[0].height}, checkpoint of block ${bundle.headers[bundle.headers.length - 1].height})`);

    const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 }, locale: "zh-CN" });
    const page = await ctx.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", e => errors.push(String(e)));

    // 1. Paste the bundle; the genesis is prefilled from the node.
    step = "good bundle";
    await open(page, "/verify");
    const pre = JSON.parse(await page.inputValue("#genesis"));
    check(pre.chain_id === genesis.chain_id, "the genesis is prefilled from /v1/genesis");
    check((await page.textContent("#genesis-note")).includes("/v1/genesis"), "the page says where the genesis came from");
    let r = await verifyIn(page, bundle, null);
    check(sameList(r.rows.map(x => x.name), CHECKS), `checks shown: ${r.rows.map(x => x.name + " " + x.text)}`);
    check(r.rows.every(x => x.ok) && r.verdictOk, `all checks pass: failed ${r.failed} (${r.verdict})`);
    check(r.rows.every(x => x.text.includes("✓")), "each check shows ✓");
    check(r.verdict.includes("核验通过"), `verdict in Chinese: ${r.verdict}`);
    check(r.used.includes(status.genesis_hash) && r.used.includes("本节点"), `genesis used is named with its hash: ${r.used}`);
    await shot(page, "20-verify-pass");
    console.log(`ok good bundle: ${r.rows.length} checks pass (${r.verdict})`);

    // 2. One character of the record body changed: the record's signature fails.
    step = "tampered record body";
    const body = JSON.parse(JSON.stringify(bundle));
    const n = body.record.body.nonce;
    body.record.body.nonce = n.slice(0, -1) + (n.endsWith("0") ? "1" : "0");
    r = await verifyIn(page, body, null);
    check(!r.verdictOk && r.failed[0] === "record_signature", `record_signature fails first: ${r.failed}`);
    // The key and the block time are checked against the record, so they cannot pass either.
    check(sameList(r.failed, ["record_signature", "signer_key", "block_time"]), `failed: ${r.failed}`);
    check(r.verdict.includes("record_signature"), `the verdict names the check: ${r.verdict}`);
    check(r.rows.find(x => x.name === "record_signature").text.includes("✗"), "✗ on the failing check");
    await shot(page, "21-verify-tampered-record");
    console.log(`ok tampered record body fails: ${r.failed}`);

    // 3. One byte of a checkpoint signature changed: the signature check fails.
    step = "tampered checkpoint signature";
    const sig = JSON.parse(JSON.stringify(bundle));
    const lines = sig.checkpoint.split("\n");
    const i = lines.findIndex(l => l.startsWith("\u2014 "));
    check(i > 0, "the checkpoint has a signature line");
    const sp = lines[i].lastIndexOf(" ");
    const raw = Buffer.from(lines[i].slice(sp + 1), "base64");
    raw[4 + 10] ^= 0x01; // past the 4-byte key id: a signature byte
    lines[i] = lines[i].slice(0, sp + 1) + raw.toString("base64");
    sig.checkpoint = lines.join("\n");
    r = await verifyIn(page, sig, null);
    check(sameList(r.failed, ["checkpoint_signatures"]), `only checkpoint_signatures fails: ${r.failed}`);
    check(r.verdict.includes("checkpoint_signatures"), `the verdict names the check: ${r.verdict}`);
    await shot(page, "22-verify-tampered-signature");
    console.log(`ok tampered checkpoint signature fails: ${r.failed}`);

    // 4. The user's own genesis, not this chain's (another validator key):
    //    the page does not trust the node and says which genesis it used.
    step = "another genesis";
    const other = JSON.parse(JSON.stringify(genesis));
    other.validators[0].public_key = other.validators[0].public_key.replace(/^./, c => (c === "0" ? "1" : "0"));
    r = await verifyIn(page, bundle, other);
    check(r.failed.includes("bundle") && r.failed.includes("checkpoint_signatures"), `failed: ${r.failed}`);
    check(r.used.includes("您粘贴") && !r.used.includes(status.genesis_hash), `the pasted genesis is named: ${r.used}`);
    console.log(`ok another genesis fails: ${r.failed}`);

    // 4b. Both files uploaded: the user's own copy of the right genesis passes,
    //     and the page names it as the user's, with its hash.
    step = "uploaded files";
    await page.setInputFiles("#bundle-file", { name: "bundle.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(bundle)) });
    await page.setInputFiles("#genesis-file", { name: "genesis.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(genesis)) });
    await page.waitForFunction(() => document.querySelector("#genesis").value.startsWith("{\"chain_id\""));
    await page.click("#run");
    r = await result(page);
    check(r.verdictOk && r.failed.length === 0, `uploaded bundle and genesis verify: failed ${r.failed}`);
    check(r.used.includes("您粘贴") && r.used.includes(status.genesis_hash), `the user's genesis, with the chain's hash: ${r.used}`);
    console.log("ok uploaded bundle and genesis verify");

    // 5. /verify?tx= (the evidence certificate's QR code), on a phone, in English.
    step = "verify?tx= on a phone, English";
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-GB", isMobile: true });
    // The phone is signed in (its session in sessionStorage, as the page keeps it).
    await phone.addInitScript(token => sessionStorage.setItem("zsl-session",
      JSON.stringify({ token, account: "root", role: "regulator", expires_at_ms: Date.now() + 600000 })), TOKEN);
    const p2 = await phone.newPage();
    p2.setDefaultTimeout(STEP_TIMEOUT_MS);
    p2.on("pageerror", e => errors.push(String(e)));
    await p2.goto(BASE + "/verify?tx=" + tx);
    await p2.waitForSelector("body[data-ready='1']");
    await p2.click("#lang");
    r = await result(p2);
    check(r.verdictOk && r.failed.length === 0, `?tx= verifies: failed ${r.failed}`);
    check(r.verdict.startsWith("VERIFIED"), `English verdict: ${r.verdict}`);
    const width = await p2.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 400, `no sideways scrolling on a phone (${width}px)`);
    await shot(p2, "23-verify-phone-en");
    console.log(`ok /verify?tx= on a phone: ${r.verdict}`);

    check(errors.length === 0, `page errors: ${errors.join("; ")}`);
    console.log("verify walk passed");
  } finally {
    await browser.close();
  }
})().catch(e => {
  console.error("FAILED:", e.message || e);
  process.exit(1);
});
