// Post-quantum JOSE interop with @noble/post-quantum (pure JavaScript ML-DSA and ML-KEM, no
// OpenSSL, no aws-lc) and @noble/hashes' KMAC256; the JOSE layer is written here from RFC 7515/
// 7516/7518, RFC 9964 and draft-ietf-jose-pqc-kem-05 (AES-GCM and AES key wrap from node:crypto).
//
//   node pq.mjs check <ours.json>            verify our ML-DSA JWS (and expand our seeds), decrypt
//                                            our ML-KEM JWE to our own recipients with their `dk`
//   node pq.mjs produce <ours.json> <out>    sign with its own seeds; encrypt to our recipients
//
// The vector format is crates/jose/examples/pq_interop.rs's. Run by `cargo xtask interop`;
// exits 1 on any mismatch.

import { readFile, writeFile } from "node:fs/promises";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { ml_dsa44, ml_dsa65, ml_dsa87 } from "@noble/post-quantum/ml-dsa.js";
import { ml_kem768, ml_kem1024 } from "@noble/post-quantum/ml-kem.js";
import { kmac256 } from "@noble/hashes/sha3-addons.js";

const DSA = { "ML-DSA-44": ml_dsa44, "ML-DSA-65": ml_dsa65, "ML-DSA-87": ml_dsa87 };
// alg -> [kem, KEK length or null for direct key agreement]
const KEM = {
  "ML-KEM-768": [ml_kem768, null],
  "ML-KEM-1024": [ml_kem1024, null],
  "ML-KEM-768+A192KW": [ml_kem768, 24],
  "ML-KEM-1024+A256KW": [ml_kem1024, 32],
};
const GCM = { A128GCM: 16, A192GCM: 24, A256GCM: 32 };
const KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");
const te = new TextEncoder();
const PAYLOADS = [
  new Uint8Array(0),
  te.encode('{"sub":"carol","iss":"noble"}'),
  Uint8Array.from({ length: 3000 }, (_, i) => (i * 131 + 7) & 0xff),
];

const b64e = (b) => Buffer.from(b).toString("base64url");
const b64d = (s) => {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("not base64url");
  return new Uint8Array(Buffer.from(s, "base64url"));
};
const eq = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

// draft-ietf-jose-pqc-kem-05 §5.1: KMAC256(K = ss, X = be32(len id) || id || be32(bits), L, S = "").
function kdf(ss, id, len) {
  const x = Buffer.alloc(8 + id.length);
  x.writeUInt32BE(id.length, 0);
  x.write(id, 4, "ascii");
  x.writeUInt32BE(len * 8, 4 + id.length);
  return kmac256(ss, x, { dkLen: len });
}

function jweEncrypt(publicJwk, alg, encName, plaintext, kid) {
  const [kem, kekLen] = KEM[alg];
  if (publicJwk.kty !== "AKP" || publicJwk.alg !== alg || "dk" in publicJwk || "priv" in publicJwk) {
    throw new Error("not a public AKP key for " + alg);
  }
  const { cipherText, sharedSecret } = kem.encapsulate(b64d(publicJwk.pub));
  let cek, encryptedKey;
  if (kekLen === null) {
    cek = kdf(sharedSecret, encName, GCM[encName]);
    encryptedKey = new Uint8Array(0);
  } else {
    cek = randomBytes(GCM[encName]);
    const w = createCipheriv(`id-aes${kekLen * 8}-wrap`, kdf(sharedSecret, alg, kekLen), KW_IV);
    encryptedKey = Buffer.concat([w.update(cek), w.final()]);
  }
  const h = b64e(te.encode(JSON.stringify({ alg, enc: encName, ek: b64e(cipherText), kid })));
  const iv = randomBytes(12);
  const c = createCipheriv(`aes-${GCM[encName] * 8}-gcm`, cek, iv);
  c.setAAD(Buffer.from(h, "ascii"));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return [h, b64e(encryptedKey), b64e(iv), b64e(ct), b64e(c.getAuthTag())].join(".");
}

function jweDecrypt(dk, alg, encName, token) {
  const [kem, kekLen] = KEM[alg];
  const [h, ek, iv, ct, tag] = token.split(".");
  const header = JSON.parse(Buffer.from(b64d(h)).toString());
  if (header.alg !== alg || header.enc !== encName) throw new Error("alg/enc");
  const ss = kem.decapsulate(b64d(header.ek), dk);
  let cek;
  if (kekLen === null) {
    if (ek !== "") throw new Error("direct mode has no encrypted key");
    cek = kdf(ss, encName, GCM[encName]);
  } else {
    const u = createDecipheriv(`id-aes${kekLen * 8}-wrap`, kdf(ss, alg, kekLen), KW_IV);
    cek = Buffer.concat([u.update(b64d(ek)), u.final()]);
  }
  const d = createDecipheriv(`aes-${GCM[encName] * 8}-gcm`, cek, b64d(iv));
  d.setAAD(Buffer.from(h, "ascii"));
  d.setAuthTag(b64d(tag));
  return [header, Buffer.concat([d.update(b64d(ct)), d.final()])];
}

function tamper(token, part, at) {
  const parts = token.split(".");
  const b = b64d(parts[part]);
  if (b.length === 0) return null;
  b[at % b.length] ^= 1;
  parts[part] = b64e(b);
  return parts.join(".");
}

async function check(oursFile) {
  const ours = JSON.parse(await readFile(oursFile, "utf8"));
  const failures = [];
  let okJws = 0, okJwe = 0, rejected = 0;
  for (const v of ours.jws) {
    try {
      const dsa = DSA[v.alg];
      const pub = b64d(v.jwk.pub);
      if (v.jwk.kty !== "AKP" || v.jwk.alg !== v.alg || "priv" in v.jwk) throw new Error("not a public AKP key");
      const seed = b64d(v.jwk_private.priv);
      if (seed.length !== 32 || !eq(dsa.keygen(seed).publicKey, pub)) throw new Error("seed does not give pub");
      const [h, p, s] = v.token.split(".");
      if (!dsa.verify(b64d(s), te.encode(`${h}.${p}`), pub)) throw new Error("signature does not verify");
      const header = JSON.parse(Buffer.from(b64d(h)).toString());
      if (header.alg !== v.alg || header.kid !== v.kid || !eq(b64d(p), b64d(v.payload))) throw new Error("header or payload differs");
      for (const [part, at] of [[2, 5], [1, 0], [0, 2]]) {
        const bad = tamper(v.token, part, at);
        if (bad === null) continue;
        const [bh, bp, bs] = bad.split(".");
        if (dsa.verify(b64d(bs), te.encode(`${bh}.${bp}`), pub)) throw new Error("tampered JWS verified");
        rejected++;
      }
      okJws++;
    } catch (e) {
      failures.push(`${v.id}: ${e.message}`);
    }
  }
  const dks = Object.fromEntries(ours.recipients.map((r) => [r.kid, b64d(r.private.dk)]));
  for (const v of ours.jwe_own ?? []) {
    try {
      const [header, plaintext] = jweDecrypt(dks[v.kid], v.alg, v.enc, v.token);
      if (!eq(plaintext, b64d(v.plaintext)) || header.kid !== v.kid) throw new Error("plaintext or kid differs");
      for (const [part, at] of [[4, 0], [3, 1], [1, 9]]) {
        const bad = tamper(v.token, part, at);
        if (bad === null) continue;
        let decrypted = false;
        try {
          jweDecrypt(dks[v.kid], v.alg, v.enc, bad);
          decrypted = true;
        } catch {
          rejected++;
        }
        if (decrypted) throw new Error("tampered JWE decrypted");
      }
      okJwe++;
    } catch (e) {
      failures.push(`${v.id}: ${e.message}`);
    }
  }
  const nJwe = (ours.jwe_own ?? []).length;
  console.log(`noble checked ${ours.producer}: ML-DSA JWS ${okJws}/${ours.jws.length} verified, ML-KEM JWE ${okJwe}/${nJwe} decrypted, ${rejected} tampered tokens rejected, ${failures.length} failure(s)`);
  for (const f of failures) console.log("  FAIL", f);
  return failures.length === 0 && ours.jws.length > 0 && nJwe > 0;
}

async function produce(oursFile, out) {
  const ours = JSON.parse(await readFile(oursFile, "utf8"));
  const jws = [];
  for (const [alg, dsa] of Object.entries(DSA)) {
    const seed = randomBytes(32);
    const { publicKey, secretKey } = dsa.keygen(seed);
    const kid = "noble-" + alg;
    const jwk = { kty: "AKP", alg, pub: b64e(publicKey), priv: b64e(seed), kid };
    PAYLOADS.forEach((payload, i) => {
      const h = b64e(te.encode(JSON.stringify({ alg, kid, typ: "JWT" })));
      const input = `${h}.${b64e(payload)}`;
      const token = `${input}.${b64e(dsa.sign(te.encode(input), secretKey))}`;
      jws.push({ id: `jws/${alg}/p${i}`, alg, kid, jwk, token, payload: b64e(payload) });
    });
  }
  const jwe = [];
  for (const r of ours.recipients) {
    for (const encName of ["A256GCM", "A128GCM"]) {
      PAYLOADS.forEach((plaintext, i) => {
        const token = jweEncrypt(r.public, r.alg, encName, plaintext, r.kid);
        jwe.push({ id: `jwe/${encName}/${r.alg}/p${i}`, alg: r.alg, enc: encName, kid: r.kid, token, plaintext: b64e(plaintext) });
      });
    }
  }
  await writeFile(out, JSON.stringify({ producer: "noble-post-quantum", jws, jwe }, null, 1));
  console.log(`noble produced ${jws.length} ML-DSA JWS, ${jwe.length} ML-KEM JWE`);
  return true;
}

const [command, a, b] = process.argv.slice(2);
let ok;
if (command === "check" && a) ok = await check(a);
else if (command === "produce" && a && b) ok = await produce(a, b);
else {
  console.log("usage: node pq.mjs check <ours.json> | produce <ours.json> <out.json>");
  ok = false;
}
process.exit(ok ? 0 : 1);
