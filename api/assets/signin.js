// Sign-in for the regulator and enterprise pages: the user picks their key
// file ({account, public_key, secret_key}, as `zsl keygen` writes it); the
// page signs one request, POST /v1/sessions, per RFC 9421 (Ed25519 through
// WebCrypto) and keeps only the short-lived session token it answers, in
// sessionStorage. The key itself is never stored or sent. Consumer pages
// need none of this.
"use strict";

(function () {
  const STORE = "zsl-session";
  const hexToBytes = h => {
    if (!/^([0-9a-f]{2})+$/.test(h)) throw new Error("not lowercase hex");
    return new Uint8Array(h.match(/../g).map(b => parseInt(b, 16)));
  };
  const toHex = b => Array.from(b, x => x.toString(16).padStart(2, "0")).join("");
  const b64 = b => btoa(String.fromCharCode(...b));
  const b64urlToHex = s => toHex(Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - s.length % 4) % 4)), c => c.charCodeAt(0)));
  // PKCS#8 wrapping of a 32-byte Ed25519 seed (RFC 8410).
  const PKCS8_PREFIX = hexToBytes("302e020100300506032b657004220420");

  function current() {
    try {
      const s = JSON.parse(sessionStorage.getItem(STORE) || "null");
      return s && s.expires_at_ms > Date.now() ? s : null;
    } catch (e) { return null; }
  }

  /** Headers that carry the session, if any. */
  function authHeaders() {
    const s = current();
    return s ? { Authorization: "Bearer " + s.token } : {};
  }

  /** The RFC 9421 headers of `method path` (no body) signed by the key file. */
  async function signedHeaders(keyFile, method, path) {
    const subtle = globalThis.crypto && globalThis.crypto.subtle;
    if (!subtle) throw new Error("this browser lacks WebCrypto (a secure context: https or localhost is needed)");
    const seed = hexToBytes(String(keyFile.secret_key || ""));
    if (seed.length !== 32) throw new Error("the key file's secret_key is not 32 bytes of hex");
    const der = new Uint8Array(PKCS8_PREFIX.length + 32);
    der.set(PKCS8_PREFIX); der.set(seed, PKCS8_PREFIX.length);
    const key = await subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
    const jwk = await subtle.exportKey("jwk", key);
    const publicKey = b64urlToHex(jwk.x);
    if (keyFile.public_key && keyFile.public_key !== publicKey) throw new Error("the key file's public_key does not match its secret_key");
    const [p, q] = path.split("?");
    const nonce = toHex(crypto.getRandomValues(new Uint8Array(16)));
    const params = `("@method" "@path" "@query");created=${Math.floor(Date.now() / 1000)};keyid="${publicKey}";alg="ed25519";nonce="${nonce}"`;
    const base = `"@method": ${method}\n"@path": ${p}\n"@query": ?${q || ""}\n"@signature-params": ${params}`;
    const sig = new Uint8Array(await subtle.sign({ name: "Ed25519" }, key, new TextEncoder().encode(base)));
    return { "Signature-Input": "zsl=" + params, "Signature": "zsl=:" + b64(sig) + ":" };
  }

  /** Signs in with a key file's text; resolves to the session. */
  async function signIn(keyFileText) {
    let keyFile;
    try { keyFile = JSON.parse(keyFileText); } catch (e) { throw new Error("the key file is not JSON"); }
    const r = await fetch("/v1/sessions", { method: "POST", headers: await signedHeaders(keyFile, "POST", "/v1/sessions") });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(`${r.status} ${body.code || ""}: ${body.message || ""}`);
    sessionStorage.setItem(STORE, JSON.stringify(body));
    return body;
  }

  async function signOut() {
    const h = authHeaders();
    sessionStorage.removeItem(STORE);
    if (h.Authorization) await fetch("/v1/sessions", { method: "DELETE", headers: h }).catch(() => {});
  }

  globalThis.ZslSession = { current, authHeaders, signIn, signOut, signedHeaders };
})();
