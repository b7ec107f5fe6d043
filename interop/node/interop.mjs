// Interop between cryptoutil-jose (Rust, aws-lc-rs) and panva's `jose` (Node, WebCrypto).
//
//   node interop.mjs produce <file>   write JWS/JWE vectors made by Node `jose` for Rust to check
//   node interop.mjs check <file>     verify/decrypt the vectors written by the Rust side
//
// Both sides use the same vector format (see crates/jose/README.md, "Interop with Node jose"):
//   { producer, jws: [{id, alg, kid, jwk, token, payload}],
//     jwe: [{id, alg, enc, kid, jwk, serialization, token, plaintext, aad?}] }
// `payload`, `plaintext` and `aad` are base64url; `jwk` is the key the checker needs (public for
// signatures, private for decryption); `token` is a compact string or a JWE JSON object.
// The checker also derives tampered variants of every token (signature, payload, header, IV,
// ciphertext, tag, encrypted key, AAD) and requires each one to be rejected.
// Run by `cargo xtask interop`; exits 1 on any mismatch.

import { readFile, writeFile } from "node:fs/promises";
import * as jose from "jose";

const JWS_ALGS = [
  "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
  "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];
const JWE_ENCS = [
  "A128GCM", "A192GCM", "A256GCM", "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512",
];
const JWE_ALGS = [
  "dir", "A128KW", "A192KW", "A256KW", "A128GCMKW", "A192GCMKW", "A256GCMKW",
  "RSA-OAEP-256", "RSA-OAEP-384", "RSA-OAEP-512",
  "ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW",
];
const ECDH_CURVES = ["P-256", "P-384", "P-521", "X25519"];
// SPEC §3.3 key sizes.
const RSA_BITS = { 256: 2048, 384: 3072, 512: 4096 };

const enc = new TextEncoder();
const PAYLOADS = [
  new Uint8Array(0),
  enc.encode('{"sub":"alice","iss":"node-jose"}'),
  Uint8Array.from({ length: 3000 }, (_, i) => (i * 131 + 7) & 0xff),
];

const b64u = (bytes) => Buffer.from(bytes).toString("base64url");
const unb64u = (s) => new Uint8Array(Buffer.from(s, "base64url"));
const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const rsaBits = (alg) => RSA_BITS[alg.slice(-3)];

// ---------------------------------------------------------------------------------------------
// produce

const rsaCache = new Map();
async function rsaJwk(bits) {
  if (!rsaCache.has(bits)) {
    const { privateKey } = await jose.generateKeyPair("PS256", { modulusLength: bits, extractable: true });
    rsaCache.set(bits, await jose.exportJWK(privateKey));
  }
  return rsaCache.get(bits);
}

/** A fresh key for `alg` as { sign/encrypt key, checker JWK (with kid) }. */
async function keyFor(kind, alg, kid, { crv, enc: contentEnc } = {}) {
  let privateJwk;
  if (alg.startsWith("HS") || alg.endsWith("KW") && !alg.startsWith("ECDH") || alg === "dir") {
    const secret = await jose.generateSecret(alg === "dir" ? contentEnc : alg, { extractable: true });
    privateJwk = await jose.exportJWK(secret);
  } else if (alg.startsWith("RS") || alg.startsWith("PS") || alg.startsWith("RSA-OAEP")) {
    privateJwk = { ...(await rsaJwk(rsaBits(alg))) };
  } else {
    const { privateKey } = await jose.generateKeyPair(alg, { crv, extractable: true });
    privateJwk = await jose.exportJWK(privateKey);
  }
  privateJwk.kid = kid;
  const key = await jose.importJWK(privateJwk, alg);
  let checkerJwk = privateJwk;
  if (kind === "jws" && privateJwk.kty !== "oct") {
    const { d, p, q, dp, dq, qi, ...pub } = privateJwk;
    checkerJwk = pub;
  }
  return { key, checkerJwk, privateJwk };
}

async function produce(file) {
  const out = { producer: "node jose 6 (WebCrypto)", jws: [], jwe: [] };

  for (const alg of JWS_ALGS) {
    const kid = `node-${alg}`;
    const { key, checkerJwk } = await keyFor("jws", alg, kid);
    for (const [i, payload] of PAYLOADS.entries()) {
      const token = await new jose.CompactSign(payload)
        .setProtectedHeader({ alg, kid, typ: "JWT", context: { tenant: "t1" } })
        .sign(key);
      out.jws.push({ id: `jws/${alg}/p${i}`, alg, kid, jwk: checkerJwk, token, payload: b64u(payload) });
    }
  }

  // One key per (alg, curve) shared by every enc; `dir` needs one per enc.
  const keys = new Map();
  const jweKey = async (alg, crv, contentEnc) => {
    const id = `${alg}|${crv ?? ""}|${alg === "dir" ? contentEnc : ""}`;
    if (!keys.has(id)) {
      const kid = `node-${alg}${crv ? `-${crv}` : ""}${alg === "dir" ? `-${contentEnc}` : ""}`;
      keys.set(id, { kid, ...(await keyFor("jwe", alg, kid, { crv, enc: contentEnc })) });
    }
    return keys.get(id);
  };

  for (const alg of JWE_ALGS) {
    for (const crv of alg.startsWith("ECDH") ? ECDH_CURVES : [undefined]) {
      for (const contentEnc of JWE_ENCS) {
        const { key, kid, privateJwk } = await jweKey(alg, crv, contentEnc);
        const encryptKey = alg.startsWith("RSA") || alg.startsWith("ECDH")
          ? await jose.importJWK(publicOf(privateJwk), alg)
          : key;
        for (const [i, plaintext] of PAYLOADS.entries()) {
          const e = new jose.CompactEncrypt(plaintext).setProtectedHeader({ alg, enc: contentEnc, kid });
          if (alg.startsWith("ECDH") && i === 2) {
            e.setKeyManagementParameters({ apu: enc.encode("Alice"), apv: enc.encode("Bob") });
          }
          const token = await e.encrypt(encryptKey);
          out.jwe.push({
            id: `jwe/${contentEnc}/${alg}${crv ? `/${crv}` : ""}/p${i}`,
            alg, enc: contentEnc, kid, jwk: privateJwk, serialization: "compact", token,
            plaintext: b64u(plaintext),
          });
        }
      }
    }
  }

  // General JSON, several recipients sharing one CEK; and flattened JSON.
  const recipients = [
    ["A256KW"], ["A128GCMKW"], ["RSA-OAEP-256"], ["ECDH-ES+A128KW", "P-256"], ["ECDH-ES+A256KW", "X25519"],
  ];
  for (const [n, contentEnc] of JWE_ENCS.entries()) {
    const plaintext = PAYLOADS[1 + (n % 2)];
    const aad = n % 2 === 0 ? enc.encode("interop-aad") : undefined;
    const g = new jose.GeneralEncrypt(plaintext)
      .setProtectedHeader({ enc: contentEnc, typ: "interop" })
      .setSharedUnprotectedHeader({ shared: "yes" });
    if (aad) g.setAdditionalAuthenticatedData(aad);
    const members = [];
    for (const [alg, crv] of recipients) {
      const k = await jweKey(alg, crv, contentEnc);
      const encryptKey = alg.startsWith("RSA") || alg.startsWith("ECDH")
        ? await jose.importJWK(publicOf(k.privateJwk), alg)
        : k.key;
      g.addRecipient(encryptKey).setUnprotectedHeader({ alg, kid: k.kid });
      members.push([alg, k]);
    }
    const token = await g.encrypt();
    for (const [r, [alg, k]] of members.entries()) {
      out.jwe.push({
        id: `jwe-general/${contentEnc}/r${r}-${alg}`, alg, enc: contentEnc, kid: k.kid, jwk: k.privateJwk,
        serialization: "general", token, plaintext: b64u(plaintext), ...(aad ? { aad: b64u(aad) } : {}),
      });
    }
    for (const alg of ["A256KW", "ECDH-ES"]) {
      const k = await jweKey(alg, alg === "ECDH-ES" ? "P-384" : undefined, contentEnc);
      const encryptKey = alg === "ECDH-ES" ? await jose.importJWK(publicOf(k.privateJwk), alg) : k.key;
      const f = new jose.FlattenedEncrypt(plaintext)
        .setProtectedHeader({ alg, enc: contentEnc })
        .setUnprotectedHeader({ kid: k.kid });
      if (aad) f.setAdditionalAuthenticatedData(aad);
      const token = await f.encrypt(encryptKey);
      out.jwe.push({
        id: `jwe-flattened/${contentEnc}/${alg}`, alg, enc: contentEnc, kid: k.kid, jwk: k.privateJwk,
        serialization: "flattened", token, plaintext: b64u(plaintext), ...(aad ? { aad: b64u(aad) } : {}),
      });
    }
  }

  await writeFile(file, JSON.stringify(out, null, 1));
  console.log(`node produced: ${out.jws.length} JWS, ${out.jwe.length} JWE (${file})`);
}

function publicOf(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}

// ---------------------------------------------------------------------------------------------
// check

/** Flips the low bit of the first byte of a base64url segment (empty stays empty: returns null). */
function flip(segment) {
  const bytes = unb64u(segment);
  if (bytes.length === 0) return null;
  bytes[0] ^= 1;
  return b64u(bytes);
}

function withExtraHeaderMember(segment) {
  const header = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  header["x-tampered"] = true;
  return b64u(enc.encode(JSON.stringify(header)));
}

function tamperedJws(token) {
  const [h, p, s] = token.split(".");
  const payload = unb64u(p);
  const otherPayload = payload.length ? flip(p) : b64u(enc.encode(" "));
  return [
    ["signature", `${h}.${p}.${flip(s)}`],
    ["payload", `${h}.${otherPayload}.${s}`],
    ["header", `${withExtraHeaderMember(h)}.${p}.${s}`],
  ];
}

function tamperedJwe(token) {
  if (typeof token === "string") {
    const [h, ek, iv, ct, tag] = token.split(".");
    const out = [
      ["tag", `${h}.${ek}.${iv}.${ct}.${flip(tag)}`],
      ["iv", `${h}.${ek}.${flip(iv)}.${ct}.${tag}`],
      ["header", `${withExtraHeaderMember(h)}.${ek}.${iv}.${ct}.${tag}`],
    ];
    if (ct) out.push(["ciphertext", `${h}.${ek}.${iv}.${flip(ct)}.${tag}`]);
    if (ek) out.push(["encrypted_key", `${h}.${flip(ek)}.${iv}.${ct}.${tag}`]);
    return out;
  }
  const out = [
    ["tag", { ...token, tag: flip(token.tag) }],
    ["iv", { ...token, iv: flip(token.iv) }],
    ["protected", { ...token, protected: withExtraHeaderMember(token.protected) }],
  ];
  if (token.ciphertext) out.push(["ciphertext", { ...token, ciphertext: flip(token.ciphertext) }]);
  if (token.aad) out.push(["aad", { ...token, aad: flip(token.aad) }]);
  if (token.encrypted_key) out.push(["encrypted_key", { ...token, encrypted_key: flip(token.encrypted_key) }]);
  return out;
}

async function verifyJws(v, key, token) {
  const { payload, protectedHeader } = await jose.compactVerify(token, key, { algorithms: [v.alg] });
  return { plaintext: payload, header: protectedHeader };
}

async function decryptJwe(v, key, token) {
  const options = { keyManagementAlgorithms: [v.alg], contentEncryptionAlgorithms: [v.enc] };
  if (v.serialization === "compact") {
    const { plaintext, protectedHeader } = await jose.compactDecrypt(token, key, options);
    return { plaintext, header: protectedHeader };
  }
  const fn = v.serialization === "general" ? jose.generalDecrypt : jose.flattenedDecrypt;
  const r = await fn(token, key, options);
  if (v.aad !== undefined && !sameBytes(r.additionalAuthenticatedData ?? new Uint8Array(0), unb64u(v.aad))) {
    throw new Error("AAD differs");
  }
  return { plaintext: r.plaintext, header: { ...r.protectedHeader, ...r.sharedUnprotectedHeader, ...r.unprotectedHeader } };
}

async function check(file) {
  const vectors = JSON.parse(await readFile(file, "utf8"));
  const failures = [];
  const counts = { jws: 0, jwe: 0, tampered: 0 };
  const run = async (kind, v, open, tamper, expected) => {
    let key;
    try {
      key = await jose.importJWK(v.jwk, v.alg);
    } catch (e) {
      failures.push(`${v.id}: key import failed: ${e.message}`);
      return;
    }
    try {
      const { plaintext, header } = await open(v, key, v.token);
      if (!sameBytes(plaintext, unb64u(expected))) throw new Error("payload differs");
      if (header.alg !== v.alg) throw new Error(`header alg ${header.alg}`);
      if (v.enc && header.enc !== v.enc) throw new Error(`header enc ${header.enc}`);
      if (v.kid && header.kid !== v.kid) throw new Error(`header kid ${header.kid}`);
      counts[kind] += 1;
    } catch (e) {
      failures.push(`${v.id}: ${e.code ? `${e.code} ` : ""}${e.message}`);
      return;
    }
    for (const [what, bad] of tamper(v.token)) {
      try {
        await open(v, key, bad);
        failures.push(`${v.id}: tampered ${what} was ACCEPTED`);
      } catch {
        counts.tampered += 1;
      }
    }
  };
  for (const v of vectors.jws) await run("jws", v, verifyJws, tamperedJws, v.payload);
  for (const v of vectors.jwe) await run("jwe", v, decryptJwe, tamperedJwe, v.plaintext);

  console.log(
    `node checked ${vectors.producer}: JWS ${counts.jws}/${vectors.jws.length} verified, ` +
      `JWE ${counts.jwe}/${vectors.jwe.length} decrypted, ${counts.tampered} tampered tokens rejected, ` +
      `${failures.length} failure(s)`,
  );
  for (const f of failures) console.log(`  FAIL ${f}`);
  if (vectors.jws.length === 0 || vectors.jwe.length === 0) {
    console.log("  FAIL no vectors");
    return 1;
  }
  return failures.length === 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------

const [command, file] = process.argv.slice(2);
if (command === "produce" && file) {
  await produce(file);
} else if (command === "check" && file) {
  process.exitCode = await check(file);
} else {
  console.error("usage: node interop.mjs <produce|check> <file>");
  process.exitCode = 2;
}
