// Evidence verifier (证据核验) for `zsl-evidence/1` and `/2` bundles, run entirely in
// the browser: a second, independent implementation of `zsl verify`
// (ledger/src/evidence/), written from docs/evidence.md. It trusts only the
// genesis file it is given; the node that served this page is never asked
// whether a bundle is good. Crypto is WebCrypto (SHA-256, Ed25519); SM3 and
// SM2 (国密 account keys, GB/T 32905 / 32918.2), JCS (RFC 8785), the block
// header bytes, the RFC 9162 inclusion walk and the C2SP signed note are
// implemented here. Check names are the Rust
// verifier's, so a failure reads the same in both.
//
// Plain script, no build step: in a page it renders /verify; under Node
// (`require`) it exports the pure functions for tests.
"use strict";

(function () {
  const FORMAT_V1 = "zsl-evidence/1", FORMAT_V2 = "zsl-evidence/2";
  const FORMAT = `${FORMAT_V1} or ${FORMAT_V2}`;
  const HEADERS_MAX = 1024;
  const BUNDLE_BYTES_MAX = 1 << 20;
  const NOTE_BYTES_MAX = 16 * 1024;
  const NOTE_SIGNATURES_MAX = 100;
  const MAX_PROOF_HASHES = 65;
  const VALIDATORS_MAX = 64;
  const TX_BYTES_MAX = 16 * 1024;
  const TX_DOMAIN = "ZSL-TX-V1\0";
  const BLOCK_DOMAIN = "ZSL-BLOCK-V1\0";
  const SIG_PREFIX = "\u2014 ";
  const KEY_BINDING_TYPES = { "account.register": "id", "subject.register": "uscc", "key.bind": "target" };
  const TRACE_FORMAT = "zsl-trace-evidence/1";
  const TRACE_RECORDS_MAX = 2048;
  const TRACE_BUNDLE_BYTES_MAX = 16 << 20;
  const TRACE_CHECKS = ["bundle", "checkpoint_matches_header", "validator_set", "checkpoint_signatures", "records", "custody", "facts"];
  const CHECKS = ["bundle", "record_signature", "signer_key", "block_header", "inclusion",
    "checkpoint_matches_header", "validator_set", "checkpoint_signatures", "block_time", "summary"];

  const enc = new TextEncoder();
  const utf8 = s => enc.encode(s);
  const subtle = () => (globalThis.crypto && globalThis.crypto.subtle) || null;

  /** A failure with a message for the report (thrown inside a check). */
  class Fail extends Error {}
  const fail = m => { throw new Fail(m); };

  // ---- bytes ----------------------------------------------------------------

  /** `n` bytes from lowercase hex (the one spelling the node writes and reads), or null. */
  function hexBytes(s, n) {
    if (typeof s !== "string" || s.length !== 2 * n || !/^[0-9a-f]*$/.test(s)) return null;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
    return out;
  }
  const toHex = b => Array.from(b, x => x.toString(16).padStart(2, "0")).join("");
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }
  const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  function b64encode(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | ((bytes[i + 1] || 0) << 8) | (bytes[i + 2] || 0);
      s += B64[n >> 18] + B64[(n >> 12) & 63] +
        (i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=") + (i + 2 < bytes.length ? B64[n & 63] : "=");
    }
    return s;
  }
  /** Standard padded base64, canonical only (like Rust's STANDARD engine), or null. */
  function b64decode(s) {
    if (typeof s !== "string" || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
    const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
    const all = new Uint8Array(s.length / 4 * 3);
    for (let i = 0, o = 0; i < s.length; i += 4, o += 3) {
      let n = 0;
      for (let k = 0; k < 4; k++) n = (n << 6) | (s[i + k] === "=" ? 0 : B64.indexOf(s[i + k]));
      all[o] = (n >> 16) & 255; all[o + 1] = (n >> 8) & 255; all[o + 2] = n & 255;
    }
    const out = all.slice(0, all.length - pad);
    return b64encode(out) === s ? out : null;
  }

  async function sha256(bytes) {
    return new Uint8Array(await subtle().digest("SHA-256", bytes));
  }

  // ---- JCS (RFC 8785) ---------------------------------------------------------

  /** RFC 8785 canonical JSON text. JSON.stringify's number and string forms
   * are exactly JCS's; object keys sort by UTF-16 code units (JS's default). */
  function jcs(v) {
    if (v === null || typeof v === "boolean") return JSON.stringify(v);
    if (typeof v === "number") {
      if (!Number.isFinite(v)) fail("a number is not finite");
      return JSON.stringify(v);
    }
    if (typeof v === "string") return JSON.stringify(v);
    if (Array.isArray(v)) return "[" + v.map(jcs).join(",") + "]";
    if (typeof v === "object") {
      return "{" + Object.keys(v).sort().map(k => JSON.stringify(k) + ":" + jcs(v[k])).join(",") + "}";
    }
    fail("a value JSON cannot carry");
  }

  // ---- Ed25519 (strict, as dalek's verify_strict) ---------------------------

  // Encodings of the small-order points (sign bit cleared), including the
  // non-canonical y = p and y = p + 1: strict verification refuses them as
  // a key or as R (libsodium's list).
  const SMALL_ORDER = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  ];
  function smallOrder(p32) {
    const c = Uint8Array.from(p32);
    c[31] &= 0x7f;
    return SMALL_ORDER.includes(toHex(c));
  }
  let ed25519Support = null;
  /** True when `sig` (64 bytes) by `pk` (32) verifies over `msg`. Throws a
   * Fail naming the browser when it lacks WebCrypto Ed25519 (never a silent pass). */
  async function ed25519Verify(pk, sig, msg) {
    if (!subtle()) fail("this browser lacks WebCrypto (a secure context: https or localhost is needed)");
    if (pk.length !== 32 || sig.length !== 64) return false;
    if (smallOrder(pk) || smallOrder(sig.subarray(0, 32))) return false;
    let key;
    try {
      key = await subtle().importKey("raw", pk, { name: "Ed25519" }, false, ["verify"]);
      ed25519Support = true;
    } catch (e) {
      if (e && e.name === "NotSupportedError") { ed25519Support = false; fail("this browser lacks WebCrypto Ed25519"); }
      return false; // not a point on the curve: the key is invalid
    }
    try {
      return await subtle().verify({ name: "Ed25519" }, key, sig, msg);
    } catch (e) {
      return false;
    }
  }

  // ---- SM2 with SM3 (GB/T 32918.2, GB/T 32905; account keys only) -----------

  const rotl = (x, n) => ((x << (n & 31)) | (x >>> ((32 - n) & 31))) >>> 0;
  const SM3_IV = [0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e];
  /** SM3 digest (32 bytes) of `bytes`: SHA-256's padding, GB/T 32905's compression. */
  function sm3(bytes) {
    const len = bytes.length, m = new Uint8Array(Math.ceil((len + 9) / 64) * 64);
    m.set(bytes);
    m[len] = 0x80;
    const dv = new DataView(m.buffer);
    dv.setUint32(m.length - 8, Math.floor(len / 0x20000000));
    dv.setUint32(m.length - 4, (len * 8) >>> 0);
    const v = SM3_IV.slice(), w = new Array(68);
    const p0 = x => x ^ rotl(x, 9) ^ rotl(x, 17), p1 = x => x ^ rotl(x, 15) ^ rotl(x, 23);
    for (let o = 0; o < m.length; o += 64) {
      for (let j = 0; j < 16; j++) w[j] = dv.getUint32(o + 4 * j);
      for (let j = 16; j < 68; j++) w[j] = (p1(w[j - 16] ^ w[j - 9] ^ rotl(w[j - 3], 15)) ^ rotl(w[j - 13], 7) ^ w[j - 6]) >>> 0;
      let [a, b, c, d, e, f, g, h] = v;
      for (let j = 0; j < 64; j++) {
        const a12 = rotl(a, 12), ss1 = rotl((a12 + e + rotl(j < 16 ? 0x79cc4519 : 0x7a879d8a, j)) >>> 0, 7);
        const ff = j < 16 ? a ^ b ^ c : (a & b) | (a & c) | (b & c);
        const gg = j < 16 ? e ^ f ^ g : (e & f) | (~e & g);
        const tt1 = (ff + d + (ss1 ^ a12) + (w[j] ^ w[j + 4])) >>> 0, tt2 = (gg + h + ss1 + w[j]) >>> 0;
        [d, c, b, a, h, g, f, e] = [c, rotl(b, 9), a, tt1, g, rotl(f, 19), e, p0(tt2) >>> 0];
      }
      [a, b, c, d, e, f, g, h].forEach((x, i) => { v[i] = (v[i] ^ x) >>> 0; });
    }
    const out = new DataView(new ArrayBuffer(32));
    v.forEach((x, i) => out.setUint32(4 * i, x));
    return new Uint8Array(out.buffer);
  }

  // The recommended curve of GB/T 32918.5: y² = x³ + ax + b over F_p, a = p − 3, order n.
  const SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFFn, SM2_A = SM2_P - 3n;
  const SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93n;
  const SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123n;
  const SM2_GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7n;
  const SM2_GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0n;
  /** The distinguishing ID in ZA, fixed by ZSL: GB/T 35276's default. */
  const SM2_ID = "1234567812345678";
  const big = b => BigInt("0x" + toHex(b));
  const be32 = x => hexBytes(x.toString(16).padStart(64, "0"), 32);
  const fp = x => { const r = x % SM2_P; return r < 0n ? r + SM2_P : r; };
  function modPow(x, k, m) {
    let r = 1n;
    for (x %= m; k > 0n; k >>= 1n, x = x * x % m) if (k & 1n) r = r * x % m;
    return r;
  }
  // Jacobian points [X, Y, Z] for (X/Z², Y/Z³); null is the point at infinity.
  function jDouble(q) {
    if (!q || q[1] === 0n) return null;
    const [x, y, z] = q, delta = fp(z * z), gamma = fp(y * y), beta = fp(x * gamma);
    const alpha = fp(3n * (x - delta) * (x + delta)); // 3x² + aZ⁴ with a = −3
    const x3 = fp(alpha * alpha - 8n * beta);
    return [x3, fp(alpha * (4n * beta - x3) - 8n * gamma * gamma), fp((y + z) * (y + z) - gamma - delta)];
  }
  function jAdd(q, r) {
    if (!q || !r) return q || r;
    const z1z1 = fp(q[2] * q[2]), z2z2 = fp(r[2] * r[2]);
    const u1 = fp(q[0] * z2z2), u2 = fp(r[0] * z1z1), s1 = fp(q[1] * r[2] * z2z2), s2 = fp(r[1] * q[2] * z1z1);
    const h = fp(u2 - u1), rr = fp(s2 - s1);
    if (h === 0n) return rr === 0n ? jDouble(q) : null;
    const hh = fp(h * h), hhh = fp(h * hh), v = fp(u1 * hh), x3 = fp(rr * rr - hhh - 2n * v);
    return [x3, fp(rr * (v - x3) - s1 * hhh), fp(h * q[2] * r[2])];
  }
  /** `04 ‖ x ‖ y` (65 bytes) → a Jacobian point on the curve, or null. */
  function sm2Point(pk) {
    if (!(pk instanceof Uint8Array) || pk.length !== 65 || pk[0] !== 4) return null;
    const x = big(pk.subarray(1, 33)), y = big(pk.subarray(33));
    if (x >= SM2_P || y >= SM2_P || fp(y * y - x * x * x - SM2_A * x - SM2_B) !== 0n) return null;
    return [x, y, 1n];
  }
  /** True when `sig` = r ‖ s (64 bytes) by `pk` = 04 ‖ x ‖ y (65) verifies over
   * `msg`: e = SM3(ZA ‖ msg), ZA with the ID `id` (ZSL's unless a test says
   * otherwise). False, never a throw, for any malformed input. */
  function sm2Verify(pk, sig, msg, id = SM2_ID) {
    if (typeof id === "string") id = utf8(id);
    const q = sm2Point(pk);
    if (!q || !(sig instanceof Uint8Array) || sig.length !== 64 || !(msg instanceof Uint8Array) || id.length >= 8192) return false;
    const r = big(sig.subarray(0, 32)), s = big(sig.subarray(32)), t = (r + s) % SM2_N;
    if (r < 1n || r >= SM2_N || s < 1n || s >= SM2_N || t === 0n) return false;
    const entl = new Uint8Array([id.length >> 5, (id.length << 3) & 255]);
    const za = sm3(concat(entl, id, ...[SM2_A, SM2_B, SM2_GX, SM2_GY].map(be32), pk.subarray(1)));
    const e = big(sm3(concat(za, msg)));
    // s·G + t·P by Shamir's trick: one doubling per bit and at most one addition.
    const g = [SM2_GX, SM2_GY, 1n], table = [null, g, q, jAdd(g, q)];
    let acc = null;
    for (let i = 255n; i >= 0n; i--) acc = jAdd(jDouble(acc), table[Number((s >> i) & 1n) | (Number((t >> i) & 1n) << 1)]);
    if (!acc) return false;
    const zi = modPow(acc[2], SM2_P - 2n, SM2_P);
    return (e + fp(acc[0] * zi * zi)) % SM2_N === r;
  }

  // ---- records (docs/signing.md) --------------------------------------------

  const isObj = v => v !== null && typeof v === "object" && !Array.isArray(v);

  /** `{body, signer, sig}` → {body, signer, sig, id, signedBytes}, or Fail. */
  async function parseRecord(v, what) {
    if (!isObj(v)) fail(`${what}: a transaction is {"body", "signer", "sig"}`);
    for (const k of Object.keys(v)) if (!["body", "signer", "sig"].includes(k)) fail(`${what}: unknown field \`${k}\``);
    if (!("body" in v) || !("signer" in v) || !("sig" in v)) fail(`${what}: a transaction is {"body", "signer", "sig"}`);
    if (!isObj(v.body)) fail(`${what}: \`body\` must be a JSON object`);
    // The key's length names the algorithm: 32 bytes Ed25519, 65 (`04 ‖ x ‖ y`) SM2.
    const sm2 = hexBytes(v.signer, 65), signer = hexBytes(v.signer, 32) || (sm2 && sm2[0] === 4 ? sm2 : null);
    const sig = hexBytes(v.sig, 64);
    if (!signer) fail(`${what}: \`signer\` must be 64 lowercase hex characters (Ed25519) or 130 starting \`04\` (SM2)`);
    if (!sig) fail(`${what}: \`sig\` must be 128 lowercase hex characters`);
    const signedBytes = utf8(TX_DOMAIN + jcs(v.body));
    if (signedBytes.length > TX_BYTES_MAX) fail(`${what}: canonical body exceeds the transaction size limit`);
    const alg = signer.length === 65 ? "SM2-SM3" : "Ed25519";
    return { body: v.body, signer, alg, sig, signedBytes, id: await sha256(signedBytes) };
  }
  async function verifyRecord(tx, what) {
    if (tx.alg === "SM2-SM3" && !sm2Point(tx.signer)) fail(`${what}: \`signer\` is not a valid SM2-SM3 public key`);
    const good = tx.alg === "SM2-SM3" ? sm2Verify(tx.signer, tx.sig, tx.signedBytes) : await ed25519Verify(tx.signer, tx.sig, tx.signedBytes);
    if (!good) fail(`${what}: signature does not verify over the signed bytes`);
  }

  /** RFC 3339 time with offset → ms since the epoch, or null. */
  function parseTimestampMs(s) {
    const m = typeof s === "string" && /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/.exec(s);
    if (!m) return null;
    const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
    if (mo < 1 || mo > 12 || d < 1 || d > new Date(Date.UTC(y, mo, 0)).getUTCDate() || h > 23 || mi > 59 || se > 59) return null;
    let ms = Date.UTC(y, mo - 1, d, h, mi, se) + (m[7] ? Math.floor(Number((m[7] + "00").slice(0, 3))) : 0);
    if (!m[8]) {
      const off = (Number(m[10]) * 60 + Number(m[11])) * 60000;
      if (Number(m[10]) > 23 || Number(m[11]) > 59) return null;
      ms -= m[9] === "+" ? off : -off;
    }
    return ms;
  }

  /** The common fields of a body (record::parse_body), or Fail. The typed
   * fields of each record type are not re-validated here: the quorum's
   * checkpoint attests the state machine accepted them. */
  function common(body, what) {
    const out = {};
    for (const k of ["type", "chain_id", "account", "created_at", "nonce"]) {
      if (typeof body[k] !== "string") fail(`${what}: \`${k}\` must be a string`);
      out[k] = body[k];
    }
    out.created_at_ms = parseTimestampMs(out.created_at);
    if (out.created_at_ms === null) fail(`${what}: \`created_at\` must be an RFC 3339 time with offset`);
    if (!out.nonce.length || utf8(out.nonce).length > 64) fail(`${what}: \`nonce\` must be 1-64 characters`);
    if (!out.account.length || utf8(out.account).length > 64) fail(`${what}: \`account\` must be 1-64 characters`);
    return out;
  }

  // ---- block headers, Merkle tree ---------------------------------------------

  function headerInput(h) {
    const id = utf8(h.chain_id);
    const fixed = new DataView(new ArrayBuffer(8 + 8 + 4 + 8));
    fixed.setBigUint64(0, BigInt(h.height));
    fixed.setBigInt64(8, BigInt(h.time_ms));
    fixed.setUint32(16, h.tx_count);
    fixed.setBigUint64(20, BigInt(h.tree_size));
    const f = new Uint8Array(fixed.buffer);
    const len = new Uint8Array([(id.length >> 8) & 255, id.length & 255]);
    return concat(utf8(BLOCK_DOMAIN), len, id, f.subarray(0, 8), h.prev_hash, f.subarray(8, 16),
      f.subarray(16, 20), f.subarray(20, 28), h.tree_root, h.state_hash, h.validators_hash);
  }
  const headerHash = h => sha256(headerInput(h));
  const leafHash = id => sha256(concat(new Uint8Array([0]), id));
  const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

  /** RFC 9162 §2.1.3.2; Fail with the reason, as merkle::verify_inclusion. */
  async function verifyInclusion(leaf, index, size, proof, root) {
    let fn = BigInt(index), sn = BigInt(size) - 1n;
    if (BigInt(index) >= BigInt(size)) fail(`leaf index ${index} is outside a tree of ${size}`);
    if (proof.length > MAX_PROOF_HASHES) fail("proof longer than any tree allows");
    let r = leaf;
    for (const p of proof) {
      if (sn === 0n) fail("inclusion proof has too many hashes");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) fail("inclusion proof has too few hashes");
    if (!eq(r, root)) fail("the proof does not lead to the root");
  }

  // ---- checkpoint: C2SP signed note -------------------------------------------

  // Rust's char::is_control (Unicode Cc) and char::is_whitespace (White_Space).
  const isControl = c => /[\u0000-\u001f\u007f-\u009f]/.test(c);
  const validKeyName = n => n.length > 0 && !/[\s\u0085+\u0000-\u001f\u007f-\u009f]/.test(n);

  function parseNote(note) {
    if (typeof note !== "string") fail("checkpoint note: not text");
    if (utf8(note).length > NOTE_BYTES_MAX) fail("checkpoint note: malformed note: note too large");
    if ([...note].some(c => c !== "\n" && isControl(c))) fail("checkpoint note: malformed note: control characters");
    const split = note.lastIndexOf("\n\n");
    if (split < 0) fail("checkpoint note: malformed note: no blank line before the signatures");
    const text = note.slice(0, split + 1);
    let sigs = note.slice(split + 2);
    if (!sigs.endsWith("\n")) fail("checkpoint note: malformed note: signatures must end in a newline");
    sigs = sigs.slice(0, -1);
    const signatures = [];
    for (const line of sigs.split("\n")) {
      if (!line.startsWith(SIG_PREFIX)) fail("checkpoint note: malformed note: a signature line starts with an em dash");
      const rest = line.slice(SIG_PREFIX.length);
      const sp = rest.indexOf(" ");
      if (sp < 0) fail("checkpoint note: malformed note: signature line without a signature");
      const name = rest.slice(0, sp);
      if (!validKeyName(name)) fail("checkpoint note: malformed note: invalid key name");
      const blob = b64decode(rest.slice(sp + 1));
      if (!blob) fail("checkpoint note: malformed note: signature is not base64");
      if (blob.length < 5) fail("checkpoint note: malformed note: signature too short");
      signatures.push({ name, keyId: blob.slice(0, 4), signature: blob.slice(4) });
      if (signatures.length > NOTE_SIGNATURES_MAX) fail("checkpoint note: malformed note: too many signatures");
    }
    if (!signatures.length) fail("checkpoint note: malformed note: no signatures");
    return { text, signatures };
  }

  const decimal = s => /^(0|[1-9][0-9]*)$/.test(s) && Number.isSafeInteger(Number(s)) ? Number(s) : null;

  function checkpointText(c) {
    return `${c.origin}\n${c.tree_size}\n${b64encode(c.root)}\nzsl-height ${c.height}\nzsl-block ${toHex(c.block_hash)}\nzsl-time ${c.time_ms}\n`;
  }
  function parseCheckpointText(text) {
    const bad = m => fail("checkpoint: malformed checkpoint body: " + m);
    if (!text.endsWith("\n")) bad("text must end in a newline");
    const lines = text.slice(0, -1).split("\n");
    if (lines.length !== 6) bad("expected origin, size, root and three zsl- extension lines");
    const [origin, size, root, height, block, time] = lines;
    if (!origin) bad("empty origin");
    const tree_size = decimal(size);
    if (tree_size === null) bad("tree size is not a decimal number");
    const r = b64decode(root);
    if (!r) bad("root is not base64");
    if (r.length !== 32) bad("root is not 32 bytes");
    const h = height.startsWith("zsl-height ") ? decimal(height.slice(11)) : null;
    if (h === null) bad("bad zsl-height line");
    const bh = block.startsWith("zsl-block ") ? hexBytes(block.slice(10), 32) : null;
    if (!bh) bad("bad zsl-block line");
    const t = time.startsWith("zsl-time ") && /^[0-9]+$/.test(time.slice(9)) ? Number(time.slice(9)) : null;
    if (t === null || !Number.isSafeInteger(t)) bad("bad zsl-time line");
    const c = { origin, tree_size, root: r, height: h, block_hash: bh, time_ms: t };
    if (checkpointText(c) !== text) bad("not in canonical form");
    return c;
  }
  function parseCheckpoint(note) {
    return parseCheckpointText(parseNote(note).text);
  }

  /** SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]. */
  async function keyId(name, pk) {
    return (await sha256(concat(utf8(name), new Uint8Array([10, 1]), pk))).slice(0, 4);
  }

  /** The checkpoints' origin and key names (checkpoint::LogIdentity): with
   * a genesis `log_host`, format 2: origin `<host>/<chain id>/<genesis
   * hash>`, every validator signing under it; without, format 1: origin =
   * chain id, each validator under its own name. */
  function logIdentity(spec, genesisHash) {
    if (spec.log_host == null) return { origin: spec.chain_id, v2: false, keyName: v => v };
    const origin = `${spec.log_host}/${spec.chain_id}/${toHex(genesisHash)}`;
    return { origin, v2: true, keyName: () => origin };
  }
  /** C2SP vkey: `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. */
  async function vkey(name, pk) {
    return `${name}+${toHex(await keyId(name, pk))}+${b64encode(concat(new Uint8Array([1]), pk))}`;
  }

  // ---- strict JSON (I-JSON, as the node reads it: ledger::strict_json) ----------

  /** Throws unless `text` is JSON whose objects name no member twice
   * (JSON.parse keeps the last; a reader that keeps the first would see
   * another record). Syntax errors are left to JSON.parse. */
  function noDuplicateKeys(text) {
    let i = 0;
    const ws = () => { while (i < text.length && " \t\n\r".includes(text[i])) i++; };
    const str = () => {
      const start = i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      return JSON.parse(text.slice(start, i));
    };
    const value = depth => {
      if (depth > 128) throw new Error("nested too deeply");
      ws();
      const c = text[i];
      if (c === "{") {
        i++;
        const seen = new Set();
        ws();
        if (text[i] === "}") { i++; return; }
        for (;;) {
          ws();
          if (text[i] !== '"') return; // JSON.parse names the error
          const k = str();
          if (seen.has(k)) throw new Error(`member \`${k.slice(0, 40)}\` appears twice`);
          seen.add(k);
          ws(); i++; // ':'
          value(depth + 1);
          ws();
          if (text[i] === ",") { i++; continue; }
          i++; return;
        }
      } else if (c === "[") {
        i++; ws();
        if (text[i] === "]") { i++; return; }
        for (;;) {
          value(depth + 1); ws();
          if (text[i] === ",") { i++; continue; }
          i++; return;
        }
      } else if (c === '"') str();
      else while (i < text.length && !",]} \t\n\r".includes(text[i])) i++;
    };
    value(0);
  }

  // ---- the bundle's shape (serde with deny_unknown_fields) ---------------------

  function shape(b) {
    const where = [];
    const bad = m => fail(`not a ${FORMAT} bundle: ${where.join(".")}${where.length ? ": " : ""}${m}`);
    const at = (k, f) => { where.push(k); const r = f(); where.pop(); return r; };
    const obj = (v, fields, strict) => {
      if (!isObj(v)) bad("expected an object");
      if (strict) for (const k of Object.keys(v)) if (!(k in fields)) bad(`unknown field \`${k}\``);
      const out = {};
      for (const [k, f] of Object.entries(fields)) out[k] = at(k, () => f(v[k], k in v));
      return out;
    };
    const req = f => (v, present) => { if (!present) bad("missing field"); return f(v); };
    const opt = f => (v, present) => (!present || v === null ? null : f(v));
    const str = v => { if (typeof v !== "string") bad("expected a string"); return v; };
    const uint = max => v => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) bad("expected an unsigned integer");
      if (!Number.isSafeInteger(v)) bad("a number beyond 2^53 (this verifier reads JSON numbers as doubles)");
      return v;
    };
    const u64 = uint(Number.MAX_SAFE_INTEGER), u32 = uint(0xffffffff);
    const i64 = v => {
      if (typeof v !== "number" || !Number.isSafeInteger(v)) bad("expected an integer (within 2^53)");
      return v;
    };
    const h32 = v => { const x = hexBytes(v, 32); if (!x) bad("expected 64 hex characters"); return x; };
    const list = (f, max) => v => {
      if (!Array.isArray(v)) bad("expected an array");
      if (max !== undefined && v.length > max) bad("too many entries");
      return v.map((x, i) => at(String(i), () => f(x)));
    };
    const any = v => v;
    const proofOf = { tx_id: req(h32), record: req(any), leaf_index: req(u64), inclusion: req(list(h32)) };
    const validator = v => obj(v, { node_id: req(u64), name: req(str), public_key: req(str) }, true);
    return obj(b, {
      format: req(str), chain_id: req(str), genesis_hash: req(h32), tx_id: req(h32), record: req(any),
      signer_key: req(v => obj(v, {
        account: req(str), public_key: req(str),
        binding: opt(x => obj(x, proofOf, true)),
        revoked: opt(x => obj(x, { tx: req(str), height: req(u64), at_ms: req(i64) }, false)),
      }, true)),
      headers: req(list(h => obj(h, {
        chain_id: req(str), height: req(u64), prev_hash: req(h32), time_ms: req(i64), tx_count: req(u32),
        tree_size: req(u64), tree_root: req(h32), state_hash: req(h32), validators_hash: req(h32),
      }, true))),
      tx_index: req(u32), leaf_index: req(u64), inclusion: req(list(h32)), checkpoint: req(str),
      validators: req(v => obj(v, {
        changes: req(list(c => obj(c, proofOf, true))), set: req(list(validator)), quorum: req(u64),
        vkeys: opt(list(str, VALIDATORS_MAX)),
      }, true)),
      summary: req(v => obj(v, { zh: req(str), en: req(str) }, true)),
    }, true);
  }

  // ---- genesis -----------------------------------------------------------------

  /** The genesis file as `zsl genesis init` writes it: optional fields
   * present as null, so its JCS form (and hash) is the node's. */
  function normalizeGenesis(g) {
    if (!isObj(g)) fail("the genesis file is not a JSON object");
    const n = JSON.parse(JSON.stringify(g));
    if (!("checkpoint_quorum" in n)) n.checkpoint_quorum = null;
    // Left out when unset (so older genesis files keep their hash).
    if (n.log_host === null) delete n.log_host;
    if (n.sm2_accounts === false) delete n.sm2_accounts;
    if (Array.isArray(n.districts)) for (const d of n.districts) if (isObj(d)) { if (!("lon" in d)) d.lon = null; if (!("lat" in d)) d.lat = null; }
    return n;
  }
  async function genesisOf(raw) {
    const spec = normalizeGenesis(raw);
    const need = ["chain_id", "genesis_time", "root_regulators", "validators", "model", "tx_window_past_ms", "tx_window_future_ms"];
    for (const k of need) if (!(k in spec)) fail(`genesis file: missing \`${k}\``);
    if (typeof spec.chain_id !== "string") fail("genesis file: chain_id is not a string");
    if (!Array.isArray(spec.validators) || !Array.isArray(spec.root_regulators)) fail("genesis file: validators and root_regulators must be arrays");
    const set = spec.validators;
    const hash = await sha256(utf8(jcs(spec)));
    const log = logIdentity(spec, hash);
    return {
      spec, set, hash, log,
      known: await knownKeys(set, log),
      format: log.v2 ? FORMAT_V2 : FORMAT_V1,
      quorum: quorum(spec, set),
      setHash: await sha256(utf8(jcs(set))),
    };
  }
  function quorum(spec, set) {
    const majority = Math.floor(set.length / 2) + 1;
    const q = spec.checkpoint_quorum == null ? majority : Math.min(spec.checkpoint_quorum, set.length);
    return Math.max(q, 1);
  }
  /** Known note keys by `name ‖ 0x00 ‖ hex(key id)`: {owner, pk}. */
  async function knownKeys(set, log) {
    const m = new Map();
    for (const v of set) {
      const pk = isObj(v) ? hexBytes(v.public_key, 32) : null;
      if (!pk) fail(`validator \`${isObj(v) ? v.name : "?"}\` has a bad public key`);
      const name = log.keyName(v.name);
      const k = `${name}\0${toHex(await keyId(name, pk))}`;
      if (m.has(k)) fail("two validators share a note key name and key id");
      m.set(k, { owner: v.name, pk });
    }
    return m;
  }
  const lineKey = s => `${s.name}\0${toHex(s.keyId)}`;

  // ---- summary (evidence::summary) ----------------------------------------------

  /** A block time in the chain's time zone, e.g. `2024-03-01 09:00:01.000 +08:00`. */
  function localTime(spec, ms) {
    const tz = spec.model && spec.model.timezone;
    const p = {};
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
        .formatToParts(new Date(ms)).forEach(x => { p[x.type] = x.value; });
    } catch (e) {
      return new Date(ms).toISOString();
    }
    const msPart = ((ms % 1000) + 1000) % 1000;
    const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    const off = Math.round((wall - (ms - msPart)) / 1000);
    const pad = (n, w) => String(n).padStart(w, "0");
    const a = Math.abs(off);
    return `${pad(p.year, 4)}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}.${pad(msPart, 3)} ${off < 0 ? "-" : "+"}${pad(Math.floor(a / 3600), 2)}:${pad(Math.floor(a % 3600 / 60), 2)}`;
  }

  async function summary(b, spec) {
    const body = isObj(b.record) && isObj(b.record.body) ? b.record.body : {};
    const field = k => (typeof body[k] === "string" ? body[k] : null);
    const kind = field("type") ?? "?", account = field("account") ?? "?";
    const first = b.headers[0];
    const [height, time] = first ? [first.height, localTime(spec, first.time_ms)] : [0, "?"];
    let cpHeight = 0, cpSize = 0, sigs = 0;
    try {
      const n = parseNote(b.checkpoint);
      const c = parseCheckpointText(n.text);
      // Only the validators' lines count: a witness's cosignature added
      // later leaves the summary valid.
      const keys = await knownKeys(b.validators.set, logIdentity(spec, b.genesis_hash)).catch(() => new Map());
      [cpHeight, cpSize, sigs] = [c.height, c.tree_size, n.signatures.filter(x => keys.has(lineKey(x))).length];
    } catch (e) { if (!(e instanceof Fail)) throw e; }
    const h = field("document_hash"), t = field("title");
    const [docZh, docEn] = h !== null && t !== null ? [`文件《${t}》（SHA-256 ${h}）`, `document "${t}" (SHA-256 ${h}) `] : ["", ""];
    const tx = toHex(b.tx_id), leaf = b.leaf_index, q = b.validators.quorum, n = b.validators.set.length;
    return {
      zh: `账户 ${account} 签署的 ${kind} 记录${docZh}（交易 ${tx}）于 ${time} 写入区块 ${height}，位于交易树第 ${leaf} 号叶子；区块 ${cpHeight} 的检查点（树大小 ${cpSize}）由 ${sigs} 个验证节点签名（法定数 ${q}/${n}），可仅凭创世文件离线验证。`,
      en: `A ${kind} record ${docEn}signed by account ${account} (tx ${tx}) was committed in block ${height} at ${time}, leaf ${leaf} of the transaction tree; the checkpoint of block ${cpHeight} (tree size ${cpSize}) carries ${sigs} validator signatures (quorum ${q} of ${n}) and verifies offline with the genesis file alone.`,
    };
  }

  // ---- the checks (evidence::verify_with) -----------------------------------------

  async function attempt(f) {
    try { return { ok: true, value: await f() }; } catch (e) {
      if (e instanceof Fail) return { ok: false, error: e.message };
      throw e;
    }
  }
  const must = r => (r.ok ? r.value : fail(r.error));

  function checkBundle(b, g) {
    if (b.format !== g.format) fail(`format is \`${b.format}\`; this genesis's bundles are \`${g.format}\``);
    if (b.chain_id !== g.spec.chain_id) fail(`bundle is for chain \`${b.chain_id}\`, the genesis file for \`${g.spec.chain_id}\``);
    if (!eq(b.genesis_hash, g.hash)) fail(`genesis hash ${toHex(b.genesis_hash)} is not the genesis file's ${toHex(g.hash)}`);
    return `${b.format}, chain \`${b.chain_id}\`, genesis ${toHex(b.genesis_hash)}`;
  }

  async function checkRecord(b, spec) {
    const tx = await parseRecord(b.record, "record");
    await verifyRecord(tx, "record");
    const c = common(tx.body, "record body");
    if (c.chain_id !== spec.chain_id) fail(`the record is for chain \`${c.chain_id}\`, the genesis file for \`${spec.chain_id}\``);
    if (!eq(tx.id, b.tx_id)) fail(`the record's id is ${toHex(tx.id)}, the bundle claims ${toHex(b.tx_id)}`);
    if (tx.alg === "SM2-SM3" && spec.sm2_accounts !== true) fail("the record is SM2-signed, and this chain's genesis has no `sm2_accounts`");
    return { tx, detail: `${tx.alg} signature by ${toHex(tx.signer)} verifies; tx id ${toHex(b.tx_id)} = SHA-256(ZSL-TX-V1\\0 ‖ JCS(body))` };
  }

  async function checkSignerKey(b, spec, tx, cp) {
    if (!tx) fail("the record does not verify, so neither can its key");
    const c = common(tx.body, "record body");
    const k = b.signer_key, signer = toHex(tx.signer);
    if (k.account !== c.account || k.public_key !== signer) fail(`signer_key names ${k.account} / ${k.public_key}, the record ${c.account} / ${signer}`);
    if (!b.headers.length) fail("no headers");
    const height = b.headers[0].height;
    if (k.revoked && k.revoked.height < height) fail(`the key was revoked at height ${k.revoked.height}, before block ${height}`);
    let how;
    if (!k.binding) {
      if (!spec.root_regulators.some(r => isObj(r) && r.id === k.account && r.public_key === k.public_key)) {
        fail(`no binding record, and \`${k.account}\` with this key is not a root regulator of genesis`);
      }
      how = "a root regulator's key in the genesis file";
    } else {
      const bind = k.binding;
      const cpv = must(cp);
      const btx = await parseRecord(bind.record, "binding record");
      await verifyRecord(btx, "binding record");
      if (!eq(btx.id, bind.tx_id)) fail("the binding record's id is not its tx_id");
      const bc = common(btx.body, "binding record");
      if (bc.chain_id !== spec.chain_id) fail("the binding record is for another chain");
      const field = KEY_BINDING_TYPES[bc.type];
      if (!Object.prototype.hasOwnProperty.call(KEY_BINDING_TYPES, bc.type)) fail(`a \`${bc.type}\` record binds no key`);
      if (btx.body[field] !== k.account || btx.body.public_key !== signer) fail("the binding record binds another key or account");
      if (bind.leaf_index >= b.leaf_index) fail(`the binding (leaf ${bind.leaf_index}) is not before the record (leaf ${b.leaf_index})`);
      await verifyInclusion(await leafHash(bind.tx_id), bind.leaf_index, cpv.tree_size, bind.inclusion, cpv.root)
        .catch(e => { throw e instanceof Fail ? new Fail("binding record inclusion: " + e.message) : e; });
      how = `bound by ${bc.type} ${toHex(bind.tx_id)} at leaf ${bind.leaf_index}, included in the checkpoint's tree`;
    }
    const later = k.revoked ? `; revoked later at height ${k.revoked.height} (signatures before stay valid)` : "";
    return `key of \`${k.account}\`: ${how}${later}`;
  }

  async function checkHeaders(b, spec, hashes) {
    if (!b.headers.length) fail("no headers");
    if (b.headers.length > HEADERS_MAX) fail(`more than ${HEADERS_MAX} headers`);
    for (const h of b.headers) if (h.chain_id !== spec.chain_id) fail(`header ${h.height} is for chain \`${h.chain_id}\``);
    for (let i = 1; i < b.headers.length; i++) {
      const [a, c] = [b.headers[i - 1], b.headers[i]];
      if (c.height !== a.height + 1 || !eq(c.prev_hash, hashes[i - 1])) fail(`header ${c.height} does not follow header ${a.height} (height or prev_hash)`);
      if (c.tree_size < a.tree_size) fail(`the tree shrinks at header ${c.height}`);
    }
    const first = b.headers[0], last = b.headers[b.headers.length - 1];
    const start = first.tree_size - first.tx_count;
    if (start < 0) fail("header tx_count exceeds its tree size");
    if (b.leaf_index < start || b.leaf_index >= first.tree_size || b.leaf_index - start !== b.tx_index) {
      fail(`leaf ${b.leaf_index} / index ${b.tx_index} is not in block ${first.height} (leaves ${start}..${first.tree_size})`);
    }
    return `block ${first.height} hash ${toHex(hashes[0])} (SHA-256 of its header), chained to block ${last.height} hash ${toHex(hashes[hashes.length - 1])}`;
  }

  async function checkInclusion(b, cp) {
    const c = must(cp);
    await verifyInclusion(await leafHash(b.tx_id), b.leaf_index, c.tree_size, b.inclusion, c.root)
      .catch(e => { throw e instanceof Fail ? new Fail(`leaf ${b.leaf_index} in tree of ${c.tree_size}: ${e.message}`) : e; });
    return `leaf ${b.leaf_index} (SHA-256(0x00 ‖ tx id)) + ${b.inclusion.length} hashes = root ${toHex(c.root)} of tree size ${c.tree_size}`;
  }

  function checkCheckpointHeader(b, g, cp, hashes) {
    const c = must(cp);
    if (!b.headers.length) fail("no headers");
    const last = b.headers[b.headers.length - 1];
    const mismatch = what => fail(`checkpoint ${what} differs from block ${last.height}`);
    if (c.origin !== g.log.origin) fail(`checkpoint origin \`${c.origin}\` is not this genesis's \`${g.log.origin}\``);
    if (c.tree_size !== last.tree_size) mismatch("tree size");
    if (!eq(c.root, last.tree_root)) mismatch("root");
    if (c.height !== last.height) mismatch("height");
    if (!eq(c.block_hash, hashes[hashes.length - 1])) mismatch("block hash");
    if (c.time_ms !== last.time_ms) mismatch("time");
    if (last.tx_count === 0) fail("the checkpoint's block did not grow the tree, so it has no checkpoint");
    return `size ${c.tree_size}, root, height ${c.height}, block hash and time match header ${c.height}`;
  }

  /** The validator set in force at the checkpoint (evidence::derive_set). */
  async function deriveSet(b, g, cp) {
    if (!b.validators.changes.length) return { set: g.set, quorum: g.quorum, hash: g.setHash, known: g.known };
    const c = must(cp);
    if (!b.headers.length) fail("no headers");
    const last = b.headers[b.headers.length - 1];
    const blockStart = Math.max(0, last.tree_size - last.tx_count);
    let set = g.set.map(v => ({ ...v }));
    let prev = null;
    for (const [i, ch] of b.validators.changes.entries()) {
      const at = m => fail(`membership record ${i} (${toHex(ch.tx_id)}): ${m}`);
      const sub = async f => { try { return await f(); } catch (e) { if (e instanceof Fail) at(e.message); throw e; } };
      const tx = await sub(() => parseRecord(ch.record, "record"));
      await sub(() => verifyRecord(tx, "record"));
      if (!eq(tx.id, ch.tx_id)) at("its id is not tx_id");
      const cm = await sub(() => common(tx.body, "record"));
      if (cm.chain_id !== g.spec.chain_id) at("for another chain");
      const signer = toHex(tx.signer);
      if (!g.spec.root_regulators.some(r => isObj(r) && r.id === cm.account && r.public_key === signer)) at("not signed by a root regulator of genesis");
      if ((prev !== null && ch.leaf_index <= prev) || ch.leaf_index >= blockStart) at(`leaf ${ch.leaf_index} is out of order or not before the checkpoint's block`);
      prev = ch.leaf_index;
      await sub(async () => verifyInclusion(await leafHash(ch.tx_id), ch.leaf_index, c.tree_size, ch.inclusion, c.root)
        .catch(e => { throw e instanceof Fail ? new Fail("inclusion: " + e.message) : e; }));
      const body = tx.body;
      const rest = Object.keys(body).filter(k => !["type", "chain_id", "account", "created_at", "nonce"].includes(k));
      if (cm.type === "validator.add") {
        const ok = rest.every(k => ["node_id", "name", "public_key", "address"].includes(k)) &&
          Number.isSafeInteger(body.node_id) && body.node_id >= 0 && typeof body.name === "string" &&
          typeof body.public_key === "string" && typeof body.address === "string";
        if (!ok) at("a malformed validator.add record");
        if (set.length >= VALIDATORS_MAX || set.some(v => v.node_id === body.node_id || v.name === body.name || v.public_key === body.public_key)) {
          at("adds a validator the set could not take");
        }
        set.push({ node_id: body.node_id, name: body.name, public_key: body.public_key });
        set.sort((x, y) => x.node_id - y.node_id);
      } else if (cm.type === "validator.remove") {
        if (!(rest.length === 1 && rest[0] === "node_id" && Number.isSafeInteger(body.node_id) && body.node_id >= 0)) at("a malformed validator.remove record");
        const before = set.length;
        set = set.filter(v => v.node_id !== body.node_id);
        if (set.length === before || !set.length) at("removes a validator the set could not lose");
      } else {
        at(`a \`${cm.type}\` record is not a membership record`);
      }
    }
    return { set, quorum: quorum(g.spec, set), hash: await sha256(utf8(jcs(set))), known: await knownKeys(set, g.log) };
  }

  const sameSet = (a, b) => a.length === b.length &&
    a.every((v, i) => v.node_id === b[i].node_id && v.name === b[i].name && v.public_key === b[i].public_key);

  async function checkValidatorSet(b, g, inForce) {
    const f = must(inForce);
    const v = b.validators;
    const want = g.log.v2 ? await Promise.all(f.set.map(x => vkey(g.log.keyName(x.name), hexBytes(x.public_key, 32)))) : null;
    const got = v.vkeys;
    if ((want === null) !== (got === null) || (want && (want.length !== got.length || want.some((k, i) => k !== got[i])))) {
      fail("vkeys are not the note keys of the derived set");
    }
    if (!sameSet(v.set, f.set)) fail("the set differs from the one genesis and the membership records give");
    if (v.quorum !== f.quorum) fail(`quorum ${v.quorum} is not the derived ${f.quorum}`);
    if (!b.headers.length) fail("no headers");
    const last = b.headers[b.headers.length - 1];
    if (!eq(last.validators_hash, f.hash)) fail(`header ${last.height}'s validators_hash is not that of the derived set`);
    return `${f.set.length} validators from genesis and ${v.changes.length} membership record(s); hash ${toHex(f.hash)} in the checkpoint's header`;
  }

  /** c2sp.org/signed-note, counted over the validators in force: lines by
   * unknown (name, key id) are ignored; a validator's line that fails
   * fails (a repeated one counts once); then at least a quorum. Returns
   * {signers (sorted), ignored}. */
  async function checkNoteSignatures(note, known, q) {
    const n = parseNote(note);
    const text = utf8(n.text);
    const seen = new Set();
    let ignored = 0;
    for (const s of n.signatures) {
      const k = known.get(lineKey(s));
      if (!k) { ignored++; continue; }
      if (s.signature.length !== 64 || !(await ed25519Verify(k.pk, s.signature, text))) fail(`signature by known key \`${k.owner}\` does not verify`);
      seen.add(k.owner);
    }
    if (seen.size < q) fail(`${seen.size} valid validator signatures; the quorum is ${q}`);
    // BTreeSet order: byte order of UTF-8, which for these names is code-unit order.
    return { signers: [...seen].sort(), ignored };
  }
  function quorumDetail(v, validators, q) {
    const ignored = v.ignored ? `; ${v.ignored} signature line(s) by keys that are not validators in force ignored` : "";
    return `${v.signers.length} of ${validators} validators signed (${v.signers.join(", ")}); the quorum is ${q}${ignored}`;
  }

  function checkBlockTime(b, spec, tx) {
    if (!b.headers.length) fail("no headers");
    const first = b.headers[0];
    const genesis = parseTimestampMs(spec.genesis_time);
    if (genesis === null) fail(`genesis_time \`${spec.genesis_time}\` is not RFC 3339`);
    if (first.time_ms <= genesis) fail("the block is not after genesis");
    for (let i = 1; i < b.headers.length; i++) if (b.headers[i].time_ms <= b.headers[i - 1].time_ms) fail("block times do not strictly increase");
    if (!tx) fail("the record does not verify, so its time cannot be checked");
    const c = common(tx.body, "record body");
    const t = first.time_ms;
    if (c.created_at_ms < t - spec.tx_window_past_ms || c.created_at_ms > t + spec.tx_window_future_ms) {
      fail(`created_at ${c.created_at_ms} is outside the genesis window around block time ${t}`);
    }
    return `block time ${localTime(spec, t)} (${t} ms), within the window of the record's created_at`;
  }

  /**
   * Verifies a bundle (parsed JSON) against a genesis file (parsed JSON).
   * Returns {checks: [{name, ok, detail}]} like `zsl verify --json`: every
   * check in order, or one failed `bundle` check when the input is not a bundle.
   */
  async function verify(bundleJson, genesisJson) {
    const one = (name, detail) => ({ checks: [{ name, ok: false, detail }] });
    if (!subtle()) return one("bundle", "this browser lacks WebCrypto (SHA-256, Ed25519): open the page over https or on localhost");
    let g, b;
    const gr = await attempt(() => genesisOf(genesisJson));
    if (!gr.ok) return one("bundle", "genesis file: " + gr.error);
    g = gr.value;
    if (isObj(bundleJson) && bundleJson.format === TRACE_FORMAT) return verifyTrace(bundleJson, g);
    const br = await attempt(() => shape(bundleJson));
    if (!br.ok) return one("bundle", br.error);
    b = br.value;
    const spec = g.spec;
    const checks = [];
    const push = (name, r) => checks.push({ name, ok: r.ok, detail: r.ok ? r.value : r.error });
    const cp = await attempt(() => parseCheckpoint(b.checkpoint));
    const hashes = await Promise.all(b.headers.map(headerHash));
    push("bundle", await attempt(() => checkBundle(b, g)));
    const rec = await attempt(() => checkRecord(b, spec));
    push("record_signature", rec.ok ? { ok: true, value: rec.value.detail } : rec);
    const tx = rec.ok ? rec.value.tx : null;
    push("signer_key", await attempt(() => checkSignerKey(b, spec, tx, cp)));
    push("block_header", await attempt(() => checkHeaders(b, spec, hashes)));
    push("inclusion", await attempt(() => checkInclusion(b, cp)));
    push("checkpoint_matches_header", await attempt(() => checkCheckpointHeader(b, g, cp, hashes)));
    const inForce = await attempt(() => deriveSet(b, g, cp));
    push("validator_set", await attempt(() => checkValidatorSet(b, g, inForce)));
    push("checkpoint_signatures", await attempt(async () => {
      if (!inForce.ok) fail("the validator set in force does not follow from genesis");
      const f = inForce.value;
      return quorumDetail(await checkNoteSignatures(b.checkpoint, f.known, f.quorum), f.set.length, f.quorum);
    }));
    push("block_time", await attempt(() => checkBlockTime(b, spec, tx)));
    push("summary", await attempt(async () => {
      const s = await summary(b, spec);
      if (s.zh !== b.summary.zh || s.en !== b.summary.en) fail("the summary does not match the bundle's contents");
      return "the summary states what the bundle proves";
    }));
    return { checks, genesisHash: toHex(g.hash), chainId: spec.chain_id };
  }

  // ---- trace bundles (zsl-trace-evidence/1, ledger::evidence::trace) ---------------

  function traceShape(b) {
    if (!isObj(b)) fail(`not a ${TRACE_FORMAT} bundle: expected an object`);
    const fields = ["format", "chain_id", "genesis_hash", "trace_code", "header", "checkpoint", "validators", "records", "facts"];
    for (const k of Object.keys(b)) if (!fields.includes(k)) fail(`not a ${TRACE_FORMAT} bundle: unknown field \`${k}\``);
    for (const k of fields) if (!(k in b)) fail(`not a ${TRACE_FORMAT} bundle: missing field \`${k}\``);
    if (!Array.isArray(b.records) || !b.records.length || b.records.length > TRACE_RECORDS_MAX) fail(`1 to ${TRACE_RECORDS_MAX} records`);
    if (!Array.isArray(b.facts) || b.facts.some(f => typeof f !== "string")) fail("facts: expected an array of strings");
    // One record bundle's fields: the shared parts are `b`'s, the record's
    // parts each record's (shape converts and checks them all).
    const raw = r => ({
      format: FORMAT_V2, chain_id: b.chain_id, genesis_hash: b.genesis_hash, tx_id: r.tx_id, record: r.record,
      signer_key: r.signer_key, headers: [b.header], tx_index: 0, leaf_index: r.leaf_index, inclusion: r.inclusion,
      checkpoint: b.checkpoint, validators: b.validators, summary: { zh: "", en: "" },
    });
    const records = b.records.map((r, i) => {
      if (!isObj(r)) fail(`records.${i}: expected an object`);
      for (const k of Object.keys(r)) if (!["tx_id", "record", "signer_key", "leaf_index", "inclusion"].includes(k)) fail(`records.${i}: unknown field \`${k}\``);
      const one = shape(raw(r));
      return { tx_id: one.tx_id, record: one.record, signer_key: one.signer_key, leaf_index: one.leaf_index, inclusion: one.inclusion };
    });
    const shell = shape(raw(b.records[0]));
    return { format: b.format, chain_id: b.chain_id, genesis_hash: shell.genesis_hash, trace_code: b.trace_code,
      header: shell.headers[0], checkpoint: b.checkpoint, validators: shell.validators, records, facts: b.facts };
  }

  async function traceCode(coder, batchId) {
    const h = await sha256(concat(utf8("zsl-trace\0"), utf8(coder), new Uint8Array([0]), utf8(batchId)));
    return "ZS" + toHex(h.slice(0, 10)).toUpperCase();
  }

  /** Replays the records by the ledger's custody rules (evidence::trace::custody). */
  async function custody(b, spec, txs) {
    const code = b.trace_code, facts = [];
    let coding = null, recalled = false;
    const held = new Map(), transit = new Map(), certificates = new Map(), tests = new Set(), seen = new Set();
    const add = (who, q) => held.set(who, (held.get(who) || 0) + q);
    for (const [i, rec] of b.records.entries()) {
      const at = m => fail(`record ${i} (${toHex(rec.tx_id)}): ${m}`);
      if (seen.has(toHex(rec.tx_id))) at("appears twice");
      seen.add(toHex(rec.tx_id));
      const tx = txs[i] || fail(`record ${i} does not verify`);
      const c = common(tx.body, "record"), r = tx.body, who = c.account;
      const when = localTime(spec, c.created_at_ms);
      if (!coding && !["batch.code", "certificate.issue"].includes(c.type)) at(`a \`${c.type}\` before the batch's coding`);
      const answer = () => {
        const key = r.shipper + "\0" + r.shipment_id, t = transit.get(key);
        if (!t) at(`answers shipment ${r.shipment_id} from ${r.shipper}, which the bundle lacks or was answered already`);
        transit.delete(key);
        if (t.to !== who) at(`shipment ${r.shipment_id} is addressed to ${t.to}, not ${who}`);
        return t;
      };
      let fact;
      if (c.type === "batch.code") {
        if (coding) at("a second coding");
        if ((await traceCode(who, r.batch_id)) !== code) at(`codes another batch than ${code}`);
        held.set(who, r.quantity);
        fact = `${when} coded (赋码) by ${who}: batch ${r.batch_id}, ${r.quantity} ${r.unit} of ${r.product_id}`;
        coding = { certificates: r.certificates || [], tests: r.rapid_tests || [] };
      } else if (c.type === "shipment.create") {
        const qty = (r.lines || []).filter(l => l.trace_code === code).reduce((n, l) => n + l.quantity, 0);
        if (!qty) at(`shipment ${r.shipment_id} carries nothing of ${code}`);
        const has = held.get(who) || 0;
        if (has < qty) at(`${who} ships ${qty} but holds ${has} by the records before it (a receipt missing?)`);
        held.set(who, has - qty);
        transit.set(who + "\0" + r.shipment_id, { to: r.to, quantity: qty });
        fact = `${when} shipped (出库) by ${who} to ${r.to}: shipment ${r.shipment_id}, ${qty}`;
      } else if (c.type === "shipment.receive") {
        const t = answer();
        add(who, t.quantity);
        fact = `${when} received (入库确认) by ${who}: shipment ${r.shipment_id} from ${r.shipper}, ${t.quantity}`;
      } else if (c.type === "shipment.reject") {
        const t = answer();
        add(r.shipper, t.quantity);
        fact = `${when} rejected (拒收) by ${who}: shipment ${r.shipment_id} from ${r.shipper}, ${t.quantity} back to the shipper`;
      } else if (c.type === "certificate.issue") {
        certificates.set(r.certificate_id, r.trace_code === code);
        fact = `${when} certificate (合格证) ${r.certificate_id} issued by ${who}`;
      } else if (c.type === "rapid_test.record") {
        if (r.trace_code !== code) at(`rapid test ${r.test_id} is of another batch`);
        tests.add(r.test_id);
        fact = `${when} rapid test (快检) ${r.test_id} by ${who}: ${r.item} ${r.result}`;
      } else if (c.type === "recall.issue") {
        if (r.trace_code !== code || recalled) at("a recall of another batch, or a second one");
        recalled = true;
        fact = `${when} recalled (召回) by ${who}: ${r.reason}`;
      } else {
        at(`a \`${c.type}\` record is not part of a trace`);
      }
      facts.push(fact);
    }
    if (!coding) fail("no coding record");
    for (const id of coding.certificates) if (!certificates.has(id)) fail(`the coding lists certificate ${id}, which the bundle lacks`);
    for (const [id, names] of certificates) if (!names && !coding.certificates.includes(id)) fail(`certificate ${id} is not for ${code}`);
    for (const id of coding.tests) if (!tests.has(id)) fail(`the coding lists rapid test ${id}, which the bundle lacks`);
    return facts;
  }

  /** Verifies a trace bundle; checks as evidence::verify_trace names them. */
  async function verifyTrace(json, g) {
    const one = (name, detail) => ({ checks: [{ name, ok: false, detail }], trace: true });
    const br = await attempt(() => traceShape(json));
    if (!br.ok) return one("bundle", br.error);
    const b = br.value, spec = g.spec;
    const checks = [];
    const push = (name, r) => checks.push({ name, ok: r.ok, detail: r.ok ? r.value : r.error });
    const cp = await attempt(() => parseCheckpoint(b.checkpoint));
    const shell = { headers: [b.header], validators: b.validators };
    const hashes = [await headerHash(b.header)];
    push("bundle", await attempt(() => {
      if (b.format !== TRACE_FORMAT) fail(`format is \`${b.format}\`, not \`${TRACE_FORMAT}\``);
      if (b.chain_id !== spec.chain_id || !eq(b.genesis_hash, g.hash)) fail("the bundle is for another chain or genesis");
      if (b.header.chain_id !== spec.chain_id) fail("the header is for another chain");
      return `${TRACE_FORMAT}, trace ${b.trace_code}, chain \`${b.chain_id}\`, genesis ${toHex(b.genesis_hash)}`;
    }));
    push("checkpoint_matches_header", await attempt(() => checkCheckpointHeader(shell, g, cp, hashes)));
    const inForce = await attempt(() => deriveSet(shell, g, cp));
    push("validator_set", await attempt(() => checkValidatorSet(shell, g, inForce)));
    push("checkpoint_signatures", await attempt(async () => {
      if (!inForce.ok) fail("the validator set in force does not follow from genesis");
      const f = inForce.value;
      return quorumDetail(await checkNoteSignatures(b.checkpoint, f.known, f.quorum), f.set.length, f.quorum);
    }));
    const txs = [];
    push("records", await attempt(async () => {
      const c = must(cp);
      let prev = null;
      for (const [i, rec] of b.records.entries()) {
        const sub = async f => { try { return await f(); } catch (e) { if (e instanceof Fail) fail(`record ${i} (${toHex(rec.tx_id)}): ${e.message}`); throw e; } };
        if (prev !== null && rec.leaf_index <= prev) await sub(() => fail("not after the record before it (leaf order)"));
        prev = rec.leaf_index;
        const { tx } = await sub(() => checkRecord({ record: rec.record, tx_id: rec.tx_id }, spec));
        // The revocation height is not checked: a trace bundle has no record's block.
        const k = { ...rec.signer_key, revoked: null };
        await sub(() => checkSignerKey({ signer_key: k, headers: [b.header], leaf_index: rec.leaf_index }, spec, tx, cp));
        await sub(async () => verifyInclusion(await leafHash(rec.tx_id), rec.leaf_index, c.tree_size, rec.inclusion, c.root)
          .catch(e => { throw e instanceof Fail ? new Fail("inclusion: " + e.message) : e; }));
        txs[i] = tx;
      }
      const sm2 = txs.filter(tx => tx.signer.length === 65).length;
      const sm2Note = sm2 ? ` (${sm2} of them SM2-SM3)` : "";
      return `${b.records.length} records signed by their keys${sm2Note} and included in the tree of size ${c.tree_size}`;
    }));
    const story = await attempt(() => custody(b, spec, txs));
    push("custody", story.ok ? { ok: true, value: `${story.value.length} records tell trace ${b.trace_code}'s story by the ledger's custody rules` } : story);
    push("facts", await attempt(() => {
      if (!story.ok) fail("the custody check failed, so the facts cannot be derived");
      if (story.value.length !== b.facts.length || story.value.some((f, i) => f !== b.facts[i])) fail("the facts do not say what the records say");
      return b.facts.join("\n");
    }));
    return { checks, trace: true, genesisHash: toHex(g.hash), chainId: spec.chain_id };
  }

  const api = {
    FORMAT, FORMAT_V1, FORMAT_V2, CHECKS, TRACE_FORMAT, TRACE_CHECKS, verify, traceCode, logIdentity, vkey, jcs, sha256, toHex, hexBytes, b64decode, b64encode, headerInput, leafHash,
    noDuplicateKeys, nodeHash, verifyInclusion, parseNote, parseCheckpointText, keyId, ed25519Verify, sm2Verify, sm3, summary, localTime,
    parseTimestampMs, normalizeGenesis, genesisOf, BUNDLE_BYTES_MAX,
    ed25519Supported: () => ed25519Support,
  };
  if (typeof module === "object" && module.exports) module.exports = api;
  if (typeof document === "undefined") return;

  // ---- the page ----------------------------------------------------------------------

  const T = {
    zh: {
      title: "证据核验", brand: "浙食链 · 食品安全追溯", nav_dashboard: "监管驾驶舱", nav_explorer: "区块浏览器",
      intro: "在本浏览器内核验证据包（区块链固证）：签名、哈希、默克尔证明与检查点法定数均在本机计算（WebCrypto），不信任提供本页面的节点，只信任您给出的创世文件。",
      bundle: "证据包（JSON）", genesis: "创世文件（JSON）", upload: "上传文件", verify: "核验",
      genesis_node: "已从本节点预填创世文件（/v1/genesis）。如不信任本节点，请粘贴您自己保存的创世文件。",
      genesis_none: "请粘贴或上传创世文件。",
      fetched: "已从本节点取得交易 {tx} 的证据包。",
      not_sealed: "该交易尚未封存（检查点法定数签名未到），请稍后重试。",
      passed: "核验通过：全部 {n} 项检查通过", failed: "核验失败：{names}",
      used_genesis: "使用的创世文件", from_node: "本节点提供", pasted: "您粘贴/上传", hash: "哈希",
      summary: "证据摘要", bad_json: "不是有效的 JSON", running: "核验中…",
      c_bundle: "证据包格式与创世", c_record_signature: "记录签名与交易ID", c_signer_key: "签名密钥在当时有效",
      c_block_header: "区块头哈希与链接", c_inclusion: "默克尔包含证明（RFC 9162）", c_checkpoint_matches_header: "检查点与区块头一致",
      c_validator_set: "验证节点集合（由创世推导）", c_checkpoint_signatures: "检查点签名与法定数", c_block_time: "出块时间", c_summary: "摘要",
      c_records: "各条记录的签名、密钥与包含证明", c_custody: "流转链条（按账本规则重放）", c_facts: "经核验的追溯事实",
      cli: "也可离线运行：zsl verify BUNDLE --genesis GENESIS",
    },
    en: {
      title: "Evidence verifier", brand: "ZSL · food traceability", nav_dashboard: "Dashboard", nav_explorer: "Explorer",
      intro: "Verifies an evidence bundle inside this browser: signatures, hashes, the Merkle proof and the checkpoint quorum are computed here (WebCrypto). It does not trust the node that served this page, only the genesis file you give it.",
      bundle: "Evidence bundle (JSON)", genesis: "Genesis file (JSON)", upload: "Upload a file", verify: "Verify",
      genesis_node: "Genesis prefilled from this node (/v1/genesis). If you do not trust this node, paste the genesis file you keep.",
      genesis_none: "Paste or upload the genesis file.",
      fetched: "Fetched the bundle of tx {tx} from this node.",
      not_sealed: "This transaction is not sealed yet (no checkpoint with a quorum of signatures); retry shortly.",
      passed: "VERIFIED: all {n} checks passed", failed: "NOT VERIFIED: {names}",
      used_genesis: "Genesis used", from_node: "served by this node", pasted: "pasted/uploaded by you", hash: "hash",
      summary: "Summary", bad_json: "is not valid JSON", running: "Verifying…",
      c_bundle: "Bundle format and genesis", c_record_signature: "Record signature and tx id", c_signer_key: "Signing key valid at that time",
      c_block_header: "Block header hashes and chaining", c_inclusion: "Merkle inclusion (RFC 9162)", c_checkpoint_matches_header: "Checkpoint matches header",
      c_validator_set: "Validator set (from genesis)", c_checkpoint_signatures: "Checkpoint signatures and quorum", c_block_time: "Block time", c_summary: "Summary",
      c_records: "Each record: signature, key, inclusion", c_custody: "Chain of custody (replayed by the ledger's rules)", c_facts: "Verified facts",
      cli: "Offline equivalent: zsl verify BUNDLE --genesis GENESIS",
    },
  };
  let lang = localStorage.getItem("zsl-lang") === "en" ? "en" : "zh";
  const t = (k, vars) => String((T[lang][k] ?? T.en[k] ?? k)).replace(/\{(\w+)\}/g, (_, v) => (vars && v in vars ? vars[v] : ""));
  const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c]));
  const $ = s => document.querySelector(s);
  let nodeGenesisText = null; // the genesis as this node served it, to say which one was used
  let last = null;

  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    $("#lang").textContent = lang === "zh" ? "English" : "中文";
    document.title = t("title") + " · ZSL";
    document.querySelectorAll("[data-i18n]").forEach(e => { e.textContent = t(e.dataset.i18n); });
    noteGenesis();
    if (last) render(last);
  }
  function noteGenesis() {
    $("#genesis-note").textContent = nodeGenesisText !== null && $("#genesis").value === nodeGenesisText ? t("genesis_node") : t("genesis_none");
  }
  function status(html, cls) {
    const s = $("#status");
    s.className = "card " + (cls || "mute");
    s.innerHTML = html;
    s.hidden = !html;
  }

  function render(r) {
    const failed = r.report.checks.filter(c => !c.ok).map(c => c.name);
    const expected = r.report.trace ? TRACE_CHECKS : CHECKS;
    const ok = !failed.length && r.report.checks.length === expected.length;
    const rows = r.report.checks.map(c => `<tr class="check" data-check="${esc(c.name)}" data-ok="${c.ok ? 1 : 0}">
      <td class="${c.ok ? "ok" : "bad"}">${c.ok ? "✓" : "✗"}</td>
      <td><b>${esc(t("c_" + c.name))}</b><br><code>${esc(c.name)}</code></td>
      <td class="hash" style="white-space:pre-line">${esc(c.detail)}</td></tr>`).join("");
    const g = r.genesis;
    const sum = r.summary ? `<h3>${esc(t("summary"))}</h3><p>${esc(r.summary[lang])}</p>` : "";
    $("#result").innerHTML = `<div class="banner ${ok ? "okb" : ""}" id="verdict" data-ok="${ok ? 1 : 0}">${esc(ok ? t("passed", { n: expected.length }) : t("failed", { names: failed.join(", ") }))}</div>
      <table class="data" id="checks"><tbody>${rows}</tbody></table>
      <p class="mute" id="genesis-used">${esc(t("used_genesis"))}: ${esc(g.source === "node" ? t("from_node") : t("pasted"))} · chain <code>${esc(g.chain)}</code> · ${esc(t("hash"))} <code>${esc(g.hash)}</code></p>
      ${sum}<p class="mute">${esc(t("cli"))}</p>`;
    $("#result").hidden = false;
    $("#result").className = "card";
  }

  async function run() {
    status(esc(t("running")));
    $("#result").hidden = true;
    last = null;
    document.body.dataset.done = "";
    const parse = (id, what) => {
      const text = $(id).value;
      if (text.length > TRACE_BUNDLE_BYTES_MAX) throw new Error(`${what}: over ${TRACE_BUNDLE_BYTES_MAX} bytes`);
      try { const v = JSON.parse(text); noDuplicateKeys(text); return v; }
      catch (e) { throw new Error(`${what} ${t("bad_json")}: ${e.message}`); }
    };
    let bundle, genesis;
    try {
      bundle = parse("#bundle", t("bundle"));
      genesis = parse("#genesis", t("genesis"));
    } catch (e) {
      status(esc(e.message), "bad");
      document.body.dataset.done = "error";
      return;
    }
    let report;
    try {
      report = await verify(bundle, genesis);
    } catch (e) {
      // A bug or an input nobody foresaw: shown as a failure, never a pass.
      report = { checks: [{ name: "bundle", ok: false, detail: "verifier error: " + (e && e.message || e) }] };
    }
    let sum = null;
    if (report.checks.find(c => c.name === "summary" && c.ok)) sum = bundle.summary;
    const gtext = $("#genesis").value;
    last = {
      report, summary: sum,
      genesis: { source: nodeGenesisText !== null && gtext === nodeGenesisText ? "node" : "user", chain: report.chainId ?? (genesis && genesis.chain_id) ?? "?", hash: report.genesisHash ?? "?" },
    };
    status("");
    render(last);
    document.body.dataset.done = report.checks.every(c => c.ok) ? "pass" : "fail";
  }

  function upload(input, target) {
    input.onchange = async () => {
      const f = input.files && input.files[0];
      if (!f) return;
      if (f.size > TRACE_BUNDLE_BYTES_MAX) { status(esc(`${f.name}: over ${TRACE_BUNDLE_BYTES_MAX} bytes`), "bad"); return; }
      $(target).value = await f.text();
      noteGenesis();
    };
  }

  async function start() {
    applyLang();
    upload($("#bundle-file"), "#bundle");
    upload($("#genesis-file"), "#genesis");
    $("#genesis").oninput = noteGenesis;
    $("#run").onclick = run;
    $("#lang").onclick = () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("zsl-lang", lang); applyLang(); };
    if (!subtle()) status("this browser lacks WebCrypto (SHA-256, Ed25519): open the page over https or on localhost", "bad");
    // Conveniences only: what the node serves is checked like anything pasted.
    try {
      const r = await fetch("/v1/genesis");
      if (r.ok) {
        nodeGenesisText = JSON.stringify(await r.json(), null, 2);
        if (!$("#genesis").value) $("#genesis").value = nodeGenesisText;
      }
    } catch (e) { /* offline copy of the page: the user pastes the genesis */ }
    noteGenesis();
    const q = new URLSearchParams(location.search);
    const tx = q.get("tx"), trace = q.get("trace");
    // ?tx=ID: a record's bundle; ?trace=CODE: a batch's trace bundle.
    const url = tx && /^[0-9a-fA-F]{64}$/.test(tx) ? "/v1/evidence/" + tx.toLowerCase()
      : trace && /^ZS[0-9A-F]{20}$/.test(trace) ? `/v1/trace/${trace}/evidence` : null;
    if (url) {
      try {
        // Evidence is its parties' and regulators': send the session if signed in.
        const auth = globalThis.ZslSession ? globalThis.ZslSession.authHeaders() : {};
        const r = await fetch(url, { headers: auth });
        const body = await r.json().catch(() => ({}));
        if (r.ok) {
          $("#bundle").value = JSON.stringify(body, null, 2);
          status(esc(t("fetched", { tx: tx ? tx.toLowerCase() : trace })));
          await run();
        } else {
          status(esc(r.status === 409 ? t("not_sealed") : `${r.status} ${body.code || ""}: ${body.message || ""}`), "bad");
        }
      } catch (e) { status(esc(String(e)), "bad"); }
    }
    document.body.dataset.ready = "1";
  }
  start();
})();
