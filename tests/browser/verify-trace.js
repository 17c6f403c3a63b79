// Runs api/assets/verify.js on a bundle and a genesis file and prints the
// report as JSON (tests/tests/browser.rs compares it with `zsl verify`).
// Run: node tests/browser/verify-trace.js BUNDLE GENESIS
"use strict";
const fs = require("fs");
const V = require("../../api/assets/verify.js");
(async () => {
  const [bundle, genesis] = process.argv.slice(2).map(p => JSON.parse(fs.readFileSync(p, "utf8")));
  const r = await V.verify(bundle, genesis);
  console.log(JSON.stringify(r));
})().catch(e => { console.error(e); process.exit(1); });
