// Headless-Chromium walk through the embedded web UI against a running
// devnet with demo data. Run by tests/tests/browser.rs, which starts the
// devnet and passes:
//   ZSL_URL          the node's API base, e.g. http://127.0.0.1:40001
//   ZSL_CHROMIUM     the Chromium executable
//   ZSL_OUT          directory for screenshots
//   ZSL_TRACE_CODE   a real trace code (the demo's recalled sample batch)
// Every step asserts on rendered content checked against the JSON API; the
// first failure exits non-zero with the step named. Prints one line per step.
"use strict";

const path = require("path");
const fs = require("fs");
const { chromium } = require("playwright-core");

const BASE = process.env.ZSL_URL;
const OUT = process.env.ZSL_OUT;
const CODE = process.env.ZSL_TRACE_CODE;
// The root regulator's session (for this script's reads) and key file (for
// the page's own sign-in).
const TOKEN = process.env.ZSL_TOKEN;
const KEY_FILE = process.env.ZSL_KEY_FILE;
const STEP_TIMEOUT_MS = 20000;

let step = "start";
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}
async function json(p) {
  const r = await fetch(BASE + p, { headers: { Authorization: "Bearer " + TOKEN } });
  check(r.ok, `GET ${p} answered ${r.status}`);
  return r.json();
}
/** Loads a page and waits until the script has rendered it (body[data-ready=1]). */
async function open(page, url) {
  await page.goto(BASE + url);
  await ready(page);
}
async function ready(page) {
  await page.waitForSelector("body[data-ready]:not([data-ready=''])", { timeout: STEP_TIMEOUT_MS });
  const state = await page.getAttribute("body", "data-ready");
  const err = state === "1" ? "" : await page.textContent("#main");
  check(state === "1", `page did not render: ${err}`);
}
async function shot(page, name) {
  await page.screenshot({ path: path.join(OUT, name + ".png"), fullPage: true });
}
async function text(page, sel) {
  return ((await page.textContent(sel)) || "").trim();
}

(async () => {
  check(BASE && OUT && CODE && TOKEN && KEY_FILE && process.env.ZSL_CHROMIUM, "ZSL_URL, ZSL_OUT, ZSL_TRACE_CODE, ZSL_TOKEN, ZSL_KEY_FILE and ZSL_CHROMIUM must be set");
  fs.mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.ZSL_CHROMIUM,
    // No sandbox: CI containers run as root, where Chromium refuses its sandbox.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const errors = [];
  try {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 }, locale: "zh-CN" });
    const page = await ctx.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", e => errors.push(String(e)));

    // 1. Consumer trace page from a real trace code.
    step = "trace page";
    const tr = (await json("/v1/trace/" + CODE)).trace;
    await open(page, "/t/" + CODE);
    check((await text(page, "#product h2")) === tr.batch.product_name, "product name shown");
    const custody = await page.$$("#custody li");
    check(custody.length === tr.custody.length && custody.length >= 2, `custody has ${custody.length} events, API ${tr.custody.length}`);
    const custodyText = await text(page, "#custody");
    check(custodyText.includes("赋码") && custodyText.includes("出库"), "custody events named in Chinese");
    check(custodyText.includes(tr.parties[tr.custody[1].to].name), "custody names the receiving party");
    if (tr.batch.recall) check((await text(page, "#recall")).includes(tr.batch.recall.reason), "recall banner with reason");
    // Unsigned, the consumer sees the public view: no quantities.
    check(await page.isVisible("#public-view"), "an unsigned visitor gets the public view");
    check(!custodyText.includes(" kg"), "the public view shows no quantities");
    const qrOk = await page.$eval("#product img", img => img.complete && img.naturalWidth > 0);
    check(qrOk, "the page's QR code (SVG) loaded");
    await shot(page, "01-trace");
    console.log(`ok trace page: ${tr.batch.product_name}, ${custody.length} custody events, recall=${!!tr.batch.recall}`);

    // 1b. The same page on a phone, and in English.
    step = "trace page on a phone, English";
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const pp = await phone.newPage();
    pp.setDefaultTimeout(STEP_TIMEOUT_MS);
    await open(pp, "/t/" + CODE);
    await pp.click("#lang");
    await ready(pp);
    check((await text(pp, "#custody h3")) === "Chain of custody", "English toggle renders English headings");
    const overflow = await pp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `no horizontal scrolling on a phone (overflow ${overflow}px)`);
    await shot(pp, "02-trace-phone-en");
    // A subject page without signing in: the public card, and why no more.
    const lastTo = tr.custody[tr.custody.length - 1].to;
    await open(pp, "/s/" + lastTo);
    check(await pp.isVisible("#subject-name") && await pp.isVisible("#signin-needed"), "an unsigned visitor gets the subject's card and a sign-in note");
    await phone.close();
    console.log("ok phone layout, English toggle, public subject card");

    // 1c. Sign in with the root regulator's key file (WebCrypto Ed25519, one signed request).
    step = "sign in";
    await page.setInputFiles("#keyfile", KEY_FILE);
    await page.waitForFunction(() => (document.querySelector("#who").textContent || "").includes("regulator"), null, { timeout: STEP_TIMEOUT_MS });
    await ready(page);
    check(!(await page.isVisible("#public-view")), "signed in, the trace page is the full view");
    check((await text(page, "#custody")).includes(tr.batch.unit), "signed in, custody shows quantities");
    await shot(page, "02b-signed-in-trace");
    console.log(`ok signed in: ${await text(page, "#who")}`);

    // 2. Follow the chain of custody: the last receiver's subject page.
    step = "follow the chain to a subject";
    const last = tr.custody[tr.custody.length - 1];
    const party = tr.parties[last.to];
    await Promise.all([page.waitForURL("**/s/" + last.to), page.click(`#custody li:last-child a.subj[href="/s/${last.to}"]`)]);
    await ready(page);
    check((await text(page, "#subject-name")) === party.name, "subject page names the party");
    const status = await json("/v1/status");
    const cp = await text(page, "#checkpoint");
    check(cp.includes(String(status.height)) && cp.includes(status.head_hash), "credit report names the checkpoint (height, block hash)");
    check(await page.$eval("#subject-code img", img => img.complete && img.naturalWidth >= 200), "subject code QR sized for display");
    const from = await page.inputValue("#period input[name=from]");
    const to = await page.inputValue("#period input[name=to]");
    const portrait = await json(`/v1/views/subjects/${last.to}/portrait?from=${from}&to=${to}`);
    const rateText = await text(page, "#on-time-rate");
    const want = portrait.receipts.on_time_rate == null ? "–" : portrait.receipts.on_time_rate.toFixed(2) + "%";
    check(rateText === want, `on-time receipt rate ${rateText}, API ${want}`);
    check(portrait.receipts.due > 0, `the last receiver owes receipts in ${from}..${to}`);
    await shot(page, "03-subject");
    await page.emulateMedia({ media: "print" });
    await page.evaluate(() => document.body.classList.add("printing-report"));
    check(!(await page.isVisible("#subject-code")) && (await page.isVisible("#portrait")), "print shows only the report");
    check((await text(page, "#portrait h1")) === "食品安全专项信用报告", "printed report titled 食品安全专项信用报告");
    await shot(page, "04-credit-report-print");
    await page.evaluate(() => document.body.classList.remove("printing-report"));
    await page.emulateMedia({ media: "screen" });
    // Scanning the subject code (主体码) lands on the same subject page.
    const sc = (await json("/v1/subjects/" + last.to)).subject.subject_code;
    await page.goto(BASE + "/t/" + sc);
    await page.waitForURL("**/s/" + last.to);
    await ready(page);
    check((await text(page, "#subject-name")) === party.name, "subject code opens the subject page");
    console.log(`ok subject page: ${party.name}, on-time rate ${rateText}`);

    // 3. From the trace page to the coding record in the explorer.
    step = "custody record";
    await open(page, "/t/" + CODE);
    await Promise.all([page.waitForURL("**/explorer?tx=*"), page.click("#custody li:first-child a.tx")]);
    await ready(page);
    check((await text(page, "#tx-type")) === "batch.code", "first custody event is the batch.code record");
    check((await text(page, "#tx-body")).includes(tr.batch.batch_id), "record body shows the batch id");
    check(await page.isVisible(`#tx a[href="/v1/evidence/${tr.batch.coded.tx}/certificate"]`), "record links its evidence certificate");
    check(await page.isVisible(`#tx a[href="/t/${CODE}"]`), "the coding record links the trace code it yields");
    console.log("ok custody record opens in the explorer");

    // 4. Regulator dashboard: table, chart, map, alerts; drill down to a record.
    step = "dashboard";
    await open(page, "/dashboard");
    const rows = await page.$$("#district-table tbody tr");
    const regions = await json("/v1/regions");
    check(rows.length === regions.districts.length, `district table has ${rows.length} rows for ${regions.districts.length} districts`);
    check((await page.$$("#map g.district")).length === regions.districts.length, "every district on the map");
    check((await page.$$("#daily-chart rect")).length > 0, "daily chart drawn");
    if (tr.batch.recall) check((await text(page, "#alerts")).includes(CODE), "recall alert lists the recalled batch");
    await shot(page, "05-dashboard");
    const top = await page.$eval("#district-table tbody tr", r => r.dataset.code);
    await Promise.all([page.waitForURL("**district=" + top + "*"), page.click(`#district-table tr[data-code="${top}"] a.district-link`)]);
    await ready(page);
    check((await text(page, "#district-detail h3")).includes(regions.districts.find(d => d.code === top).name), "district detail names the district");
    const items = await page.$$("#items a.tx");
    check(items.length > 0, "district detail lists records");
    await shot(page, "06-district");
    const href = await items[0].getAttribute("href");
    const txId = href.split("tx=")[1];
    await Promise.all([page.waitForURL("**/explorer?tx=*"), items[0].click()]);
    await ready(page);
    const rec = await json("/v1/tx/" + txId);
    check((await text(page, "#tx-type")) === rec.type, `record ${txId} of type ${rec.type} shown`);
    await shot(page, "07-record");
    console.log(`ok dashboard drill-down: district ${top} → record ${rec.type}`);

    // 5. Explorer: head, recent blocks, a block's transactions.
    step = "explorer";
    // The chain may grow while the page loads: the newest block shown lies between the heads before and after.
    const before = await json("/v1/status");
    await open(page, "/explorer");
    const st = await json("/v1/status");
    const firstHeight = Number(await text(page, "#blocks a.block-link"));
    check(firstHeight >= before.height && firstHeight <= st.height, `newest block ${firstHeight} within heads ${before.height}..${st.height}`);
    check((await text(page, "#validators")).includes(st.validators[0].name), "validators listed");
    check((await text(page, "#validators")).includes("正常"), "validator health shown");
    await shot(page, "08-explorer");
    await Promise.all([page.waitForURL("**/explorer?block=*"), page.click("#blocks a.block-link")]);
    await ready(page);
    check((await text(page, "#block h3")).endsWith(String(firstHeight)), "newest block opens");
    // The block that coded the batch, found through the explorer's search box.
    const h = tr.batch.coded.height;
    await page.fill("#xsearch input[name=q]", String(h));
    await Promise.all([page.waitForURL("**/explorer?block=" + h), page.press("#xsearch input[name=q]", "Enter")]);
    await ready(page);
    const blk = await json("/v1/blocks/" + h);
    const txRows = await page.$$("#block-txs a.tx");
    check(txRows.length > 0 && txRows.length === Math.min(100, blk.tx_ids.length), `block ${h} lists ${txRows.length} of ${blk.tx_ids.length} txs`);
    check((await text(page, "#block")).includes(blk.hash), "block page shows the block hash");
    await shot(page, "09-block");
    await Promise.all([page.waitForURL("**/explorer?tx=*"), txRows[0].click()]);
    await ready(page);
    check((await text(page, "#tx")).includes(blk.tx_ids[0]), "first transaction of the block opens");
    console.log(`ok explorer: head ${st.height}, block ${h} with ${blk.tx_ids.length} txs`);

    // 6. The home page's look-up: a USCC opens the subject page.
    step = "home look-up";
    await open(page, "/");
    await page.fill("#code", tr.batch.coder);
    await Promise.all([page.waitForURL("**/s/" + tr.batch.coder), page.press("#code", "Enter")]);
    await ready(page);
    check((await text(page, "#subject-name")) === tr.coder.name, "look-up by USCC opens the coder's page");
    console.log("ok home look-up");

    // 7. An unknown code says so instead of rendering nothing.
    step = "unknown code";
    await page.goto(BASE + "/t/NO-SUCH-CODE");
    await page.waitForSelector("#error");
    check((await text(page, "#error")).includes("未找到"), "unknown code shows 未找到");
    console.log("ok unknown code");

    check(errors.length === 0, `no script errors (${errors.join("; ")})`);
    await ctx.close();
  } finally {
    await browser.close();
  }
  console.log("browser: all steps passed; screenshots in " + OUT);
})().catch(e => {
  console.error("FAILED " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
