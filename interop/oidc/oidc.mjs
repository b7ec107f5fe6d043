// Independent-client checks of the cryptoutil Identity server (SPEC §4) with panva's
// openid-client (Node, pinned by package-lock.json), run by `cargo xtask oidc`.
//
//   ISSUER=https://127.0.0.1:PORT ADMIN_URL=https://127.0.0.1:PORT NODE_EXTRA_CA_CERTS=ca.pem \
//     node oidc.mjs
//
// The server must run with `--dev --demo` (demo users and clients of SPEC §4). TLS is fully
// validated: the demo CA comes in through NODE_EXTRA_CA_CERTS. Login and consent pages are
// answered by the scripted browser of browser.mjs. Prints one `PASS name` or `FAIL name` line
// per case (a failure's reason on the next, indented line), then `oidc: N passed, M failed`; exits 1 on any failure.

import { createHash, randomBytes } from "node:crypto";
import * as client from "openid-client";
import * as jose from "jose";
import { CookieJar, drive } from "./browser.mjs";

// ---------------------------------------------------------------------------------------------
// Environment and demo data (SPEC §4)

const ISSUER = (process.env.ISSUER ?? "").replace(/\/+$/, "");
const ADMIN_URL = (process.env.ADMIN_URL ?? "").replace(/\/+$/, "");
const CASE_TIMEOUT_MS = 60_000;

const USER = { username: "demo-user", password: "demo-user-password" };
const CONFIDENTIAL = {
  id: "demo-confidential-client",
  secret: "demo-confidential-client-secret",
  redirect: "https://localhost:8084/confidential/callback",
  scope: "openid profile email offline_access",
};
const SPA = { id: "demo-spa-client", redirect: "https://localhost:8084/callback", scope: "openid" };
const KMS = { id: "demo-kms-client", secret: "demo-kms-client-secret", scope: "kms:read kms:write", audience: "cryptoutil-kms" };
const INTROSPECTOR = { id: "kms-introspection-client", secret: "kms-introspection-client-secret" };
const FIPS_CURVES = new Set(["P-256", "P-384", "P-521"]);
const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

// ---------------------------------------------------------------------------------------------
// Reporting

const results = [];

/** Runs one case: PASS when `fn` resolves (its string result is printed as a note), FAIL otherwise. */
async function check(name, fn) {
  const started = performance.now();
  let timer;
  try {
    const note = await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${CASE_TIMEOUT_MS / 1000} s`)), CASE_TIMEOUT_MS);
      }),
    ]);
    const ms = Math.round(performance.now() - started);
    results.push({ name, ok: true });
    console.log(`PASS  ${name} (${ms} ms)${typeof note === "string" && note ? ` — ${note}` : ""}`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL  ${name}\n      ${describe(e)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** A one-line account of an error, with what openid-client/oauth4webapi attach to theirs. */
function describe(e) {
  if (!(e instanceof Error)) return String(e);
  const parts = [e.message];
  if (e.error) parts.push(`error=${e.error}`);
  if (e.error_description) parts.push(`error_description=${JSON.stringify(e.error_description)}`);
  if (e.status) parts.push(`status=${e.status}`);
  if (e.code && !String(e.message).includes(e.code)) parts.push(`code=${e.code}`);
  const cause = e.cause;
  if (cause instanceof Error) parts.push(`cause: ${describe(cause)}`);
  else if (cause instanceof URLSearchParams) parts.push(`params: ${cause}`);
  else if (cause && typeof cause === "object" && !(cause instanceof Response)) {
    try {
      parts.push(`cause: ${JSON.stringify(cause).slice(0, 300)}`);
    } catch {
      // not serialisable: leave it out
    }
  }
  return parts.join("; ");
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function assertEqual(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

const scopes = (s) => new Set(String(s ?? "").split(" ").filter(Boolean));
const snippet = (text) => String(text).replace(/\s+/g, " ").slice(0, 200);

/**
 * Expects `promise` (an openid-client call) to fail with an OAuth error in `errors`; returns
 * { status, error, wwwAuthenticate }.
 */
async function expectOAuthError(promise, errors, { status } = {}) {
  let result;
  try {
    result = await promise;
  } catch (e) {
    let error = e.error;
    let wwwAuthenticate;
    if (e instanceof client.WWWAuthenticateChallengeError) {
      wwwAuthenticate = e.response.headers.get("www-authenticate");
      const body = await e.response.json().catch(() => ({}));
      error = body.error ?? e.cause?.[0]?.parameters?.error;
    } else if (!(e instanceof client.ResponseBodyError) && !(e instanceof client.AuthorizationResponseError)) {
      throw new Error(`expected an OAuth error (${errors.join(" or ")}), got: ${describe(e)}`);
    }
    assert(errors.includes(error), `expected error ${errors.join(" or ")}, got ${error} (${describe(e)})`);
    if (status !== undefined) assertEqual(e.status, status, "HTTP status");
    return { status: e.status, error, wwwAuthenticate };
  }
  throw new Error(`expected error ${errors.join(" or ")}, but the request succeeded: ${snippet(JSON.stringify(result))}`);
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: "application/json" }, redirect: "manual", signal: AbortSignal.timeout(15000) });
  const text = await res.text();
  assertEqual(res.status, 200, `GET ${url} status`);
  assert((res.headers.get("content-type") ?? "").includes("json"), `GET ${url}: content-type ${res.headers.get("content-type")}`);
  return JSON.parse(text);
}

/** POSTs a form to `url` (optionally with Basic client authentication); returns { status, headers, json }. */
async function postForm(url, params, basic) {
  const headers = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
  if (basic) {
    const enc = (s) => encodeURIComponent(s).replace(/%20/g, "+");
    headers.authorization = `Basic ${Buffer.from(`${enc(basic[0])}:${enc(basic[1])}`).toString("base64")}`;
  }
  const res = await fetch(url, { method: "POST", headers, body: new URLSearchParams(params).toString(), redirect: "manual", signal: AbortSignal.timeout(15000) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

function uuidv7() {
  const b = randomBytes(16);
  let ts = BigInt(Date.now());
  for (let i = 5; i >= 0; i--) {
    b[i] = Number(ts & 0xffn);
    ts >>= 8n;
  }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Shared set-up (memoised; a failure here fails every case that needs it)

const memo = new Map();
const once = (key, make) => {
  if (!memo.has(key)) memo.set(key, make());
  return memo.get(key);
};

const metadata = () => once("metadata", () => getJson(`${ISSUER}/.well-known/openid-configuration`));
const remoteJwks = () => once("jwks", async () => jose.createRemoteJWKSet(new URL((await metadata()).jwks_uri)));

/** An openid-client Configuration by discovery, with ID token signatures checked too. */
function configFor(clientId, auth) {
  return client.discovery(new URL(ISSUER), clientId, undefined, auth, { execute: [client.enableNonRepudiationChecks] });
}
const confidential = () => once("confidential", () => configFor(CONFIDENTIAL.id, client.ClientSecretBasic(CONFIDENTIAL.secret)));
const spa = () => once("spa", () => configFor(SPA.id, client.None()));
const kms = () => once("kms", () => configFor(KMS.id, client.ClientSecretBasic(KMS.secret)));
const introspector = () => once("introspector", () => configFor(INTROSPECTOR.id, client.ClientSecretBasic(INTROSPECTOR.secret)));

/**
 * Starts an authorization code request and drives it through login and consent.
 * `params` are added to (or, when undefined, removed from) the PKCE/state/nonce defaults.
 * Returns { outcome (of drive), verifier, state, nonce, redirect }.
 */
async function authorize(config, { redirect, scope, params = {}, decision = "allow", par = false, jar = new CookieJar() }) {
  const verifier = client.randomPKCECodeVerifier();
  const all = {
    redirect_uri: redirect,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state: client.randomState(),
    nonce: client.randomNonce(),
    ...params,
  };
  const request = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
  const url = par ? await client.buildAuthorizationUrlWithPAR(config, request) : client.buildAuthorizationUrl(config, request);
  const outcome = await drive(url, { jar, ...USER, decision });
  return { outcome, url, verifier, state: request.state, nonce: request.nonce, redirect };
}

/** The callback URL of a completed authorization (a redirect to `redirect`), or throws. */
function callbackOf(flow) {
  const { outcome } = flow;
  if (outcome.kind !== "redirect") {
    throw new Error(`authorization ended on a ${outcome.status} page instead of redirecting back: ${snippet(outcome.body)} [${outcome.trail.join(", ")}]`);
  }
  assertEqual(outcome.url.origin + outcome.url.pathname, flow.redirect, "redirect target");
  return outcome.url;
}

/** A successful authorization: the callback carries a code, the right state and iss. */
function codeCallback(flow) {
  const cb = callbackOf(flow);
  assert(cb.searchParams.get("code"), `no code on the callback: ${cb.search}`);
  assertEqual(cb.searchParams.get("state"), flow.state, "state on the callback");
  assertEqual(cb.searchParams.get("iss"), ISSUER, "iss on the callback (RFC 9207)");
  return cb;
}

/** Redeems the flow's code with openid-client (state, iss, nonce, ID token signature checked). */
function redeem(config, flow, { callback = codeCallback(flow), verifier = flow.verifier } = {}) {
  return client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
  });
}

/** An authorization error on the callback: error, state and iss checked by us and by openid-client. */
async function expectAuthorizationError(config, flow, error) {
  const cb = callbackOf(flow);
  assertEqual(cb.searchParams.get("error"), error, `error on the callback (${cb.search})`);
  assert(!cb.searchParams.get("code"), "an error response must not carry a code");
  assertEqual(cb.searchParams.get("state"), flow.state, "state on the error callback");
  assertEqual(cb.searchParams.get("iss"), ISSUER, "iss on the error callback (RFC 9207)");
  await expectOAuthError(redeem(config, flow, { callback: cb }), [error]);
}

/** Verifies an RFC 9068 access token against the JWKS; returns its claims. */
async function verifyAccessToken(token, { audience } = {}) {
  const { payload, protectedHeader } = await jose.jwtVerify(token, await remoteJwks(), {
    issuer: ISSUER,
    typ: "at+jwt",
    ...(audience ? { audience } : {}),
  });
  for (const claim of ["iss", "sub", "aud", "client_id", "jti", "iat", "exp"]) {
    assert(payload[claim] !== undefined, `access token lacks "${claim}"`);
  }
  assert(protectedHeader.kid, "access token header lacks kid");
  return payload;
}

/** at_hash of an access token for the ID token's signing algorithm (OIDC Core 3.1.3.6). */
function atHash(accessToken, alg) {
  const hash = /(256)$/.test(alg) ? "sha256" : /(384)$/.test(alg) ? "sha384" : "sha512"; // *512, EdDSA/Ed25519
  const digest = createHash(hash).update(accessToken, "ascii").digest();
  return digest.subarray(0, digest.length / 2).toString("base64url");
}

async function introspect(token) {
  return client.tokenIntrospection(await introspector(), token);
}

async function codeFlowTokens(scope = CONFIDENTIAL.scope) {
  const config = await confidential();
  const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope });
  return { config, flow, tokens: await redeem(config, flow) };
}

// ---------------------------------------------------------------------------------------------
// Cases

async function discoveryCases() {
  await check("discovery: both documents, same issuer, absolute URLs, S256 only, iss parameter", async () => {
    const oidc = await metadata();
    const oauth = await getJson(`${ISSUER}/.well-known/oauth-authorization-server`);
    const origin = new URL(ISSUER).origin;
    for (const [label, doc] of [["openid-configuration", oidc], ["oauth-authorization-server", oauth]]) {
      assertEqual(doc.issuer, ISSUER, `${label} issuer`);
      for (const [key, value] of Object.entries(doc)) {
        if (typeof value !== "string" || !(key.endsWith("_endpoint") || key.endsWith("_uri"))) continue;
        const url = new URL(value); // throws on a relative URL
        assertEqual(url.protocol, "https:", `${label} ${key} scheme`);
        if (key.endsWith("_endpoint") || key === "jwks_uri") assertEqual(url.origin, origin, `${label} ${key} origin`);
      }
      for (const key of ["authorization_endpoint", "token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint", "pushed_authorization_request_endpoint"]) {
        assert(typeof doc[key] === "string", `${label} lacks ${key}`);
      }
      assertEqual(JSON.stringify(doc.code_challenge_methods_supported), '["S256"]', `${label} code_challenge_methods_supported`);
      assertEqual(doc.authorization_response_iss_parameter_supported, true, `${label} authorization_response_iss_parameter_supported`);
      assert(Array.isArray(doc.response_types_supported) && doc.response_types_supported.includes("code"), `${label} response_types_supported lacks code`);
      for (const rt of doc.response_types_supported) assert(!rt.split(" ").includes("token"), `${label} advertises implicit response type "${rt}"`);
      const grants = doc.grant_types_supported ?? [];
      for (const g of ["authorization_code", "client_credentials", "refresh_token"]) assert(grants.includes(g), `${label} grant_types_supported lacks ${g}`);
      for (const g of ["implicit", "password"]) assert(!grants.includes(g), `${label} advertises the ${g} grant`);
      const methods = doc.token_endpoint_auth_methods_supported ?? [];
      for (const m of ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]) assert(methods.includes(m), `${label} token_endpoint_auth_methods_supported lacks ${m}`);
    }
    for (const key of ["authorization_endpoint", "token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"]) {
      assertEqual(oauth[key], oidc[key], `${key} in both documents`);
    }
    for (const key of ["userinfo_endpoint", "end_session_endpoint", "id_token_signing_alg_values_supported", "subject_types_supported"]) {
      assert(oidc[key] !== undefined, `openid-configuration lacks ${key}`);
    }
    assert(!oidc.id_token_signing_alg_values_supported.includes("none"), 'ID token alg "none" advertised');
    if (oidc.scopes_supported !== undefined) assert(oidc.scopes_supported.includes("openid"), "scopes_supported lacks openid");
    for (const acr of ["urn:cryptoutil:acr:sfa", "urn:cryptoutil:acr:mfa", "phr"]) assert((oidc.acr_values_supported ?? []).includes(acr), `acr_values_supported lacks ${acr}`);
    for (const claim of ["acr", "amr"]) assert((oidc.claims_supported ?? []).includes(claim), `claims_supported lacks ${claim}`);
    // openid-client's own discovery, both well-known algorithms.
    const viaOidc = await confidential();
    const viaOauth = await client.discovery(new URL(ISSUER), CONFIDENTIAL.id, undefined, client.ClientSecretBasic(CONFIDENTIAL.secret), { algorithm: "oauth2" });
    assert(viaOidc.serverMetadata().supportsPKCE("S256"), "openid-client: S256 not supported");
    assert(!viaOidc.serverMetadata().supportsPKCE("plain"), "openid-client: plain PKCE supported");
    assertEqual(viaOauth.serverMetadata().issuer, ISSUER, "RFC 8414 discovery issuer");
  });

  await check("JWKS: public FIPS signing keys with kid, same set at /.well-known/jwks.json", async () => {
    const meta = await metadata();
    const jwks = await getJson(meta.jwks_uri);
    const wellKnown = await getJson(`${ISSUER}/.well-known/jwks.json`);
    assert(Array.isArray(jwks.keys) && jwks.keys.length > 0, "JWKS has no keys");
    const kids = new Set();
    for (const key of jwks.keys) {
      assert(typeof key.kid === "string" && key.kid, `key without kid: ${JSON.stringify(key)}`);
      assert(!kids.has(key.kid), `duplicate kid ${key.kid}`);
      kids.add(key.kid);
      for (const m of PRIVATE_JWK_MEMBERS) assert(!(m in key), `key ${key.kid} exposes private member "${m}"`);
      if (key.use !== undefined) assertEqual(key.use, "sig", `key ${key.kid} use`);
      if (key.kty === "EC") assert(FIPS_CURVES.has(key.crv), `key ${key.kid}: curve ${key.crv}`);
      else if (key.kty === "OKP") assertEqual(key.crv, "Ed25519", `key ${key.kid} curve`);
      else if (key.kty === "RSA") assert(Buffer.from(key.n, "base64url").length * 8 >= 2048, `key ${key.kid}: RSA modulus under 2048 bits`);
      else throw new Error(`key ${key.kid}: kty ${key.kty}`);
      await jose.importJWK(key, key.alg ?? (key.kty === "EC" ? { "P-256": "ES256", "P-384": "ES384", "P-521": "ES512" }[key.crv] : key.kty === "OKP" ? "EdDSA" : "RS256"));
    }
    const other = new Set((wellKnown.keys ?? []).map((k) => k.kid));
    assertEqual([...other].sort().join(","), [...kids].sort().join(","), "kids at /.well-known/jwks.json");
    return `${kids.size} key(s): ${jwks.keys.map((k) => k.alg ?? k.kty).join(", ")}`;
  });
}

async function codeFlowCases() {
  await check("code + PKCE (confidential): login, consent, ID token (signature, nonce, at_hash), access token", async () => {
    const { config, tokens } = await codeFlowTokens();
    const claims = tokens.claims();
    assert(claims, "no ID token");
    assertEqual(claims.iss, ISSUER, "ID token iss");
    assertEqual(claims.aud === CONFIDENTIAL.id || (Array.isArray(claims.aud) && claims.aud.includes(CONFIDENTIAL.id)), true, "ID token aud contains the client");
    if (claims.azp !== undefined) assertEqual(claims.azp, CONFIDENTIAL.id, "ID token azp");
    assert(typeof claims.auth_time === "number", "ID token lacks auth_time");
    const { protectedHeader } = await jose.jwtVerify(tokens.id_token, await remoteJwks(), { issuer: ISSUER, audience: CONFIDENTIAL.id });
    assert(claims.at_hash, "ID token lacks at_hash");
    assertEqual(claims.at_hash, atHash(tokens.access_token, protectedHeader.alg), "at_hash");
    assertEqual(tokens.token_type.toLowerCase(), "bearer", "token_type");
    const at = await verifyAccessToken(tokens.access_token);
    assertEqual(at.client_id, CONFIDENTIAL.id, "access token client_id");
    assertEqual(at.sub, claims.sub, "access token sub = ID token sub");
    // RFC 8176 amr and the acr class, the same in both tokens (RFC 9068 §2.2.1).
    assert(Array.isArray(claims.amr) && claims.amr.includes("pwd"), `ID token amr ${JSON.stringify(claims.amr)}`);
    assert((await metadata()).acr_values_supported.includes(claims.acr), `ID token acr ${claims.acr}`);
    assertEqual(at.acr, claims.acr, "access token acr = ID token acr");
    assertEqual(JSON.stringify(at.amr), JSON.stringify(claims.amr), "access token amr = ID token amr");
    assertEqual(at.auth_time, claims.auth_time, "access token auth_time = ID token auth_time");
    for (const s of scopes(CONFIDENTIAL.scope)) assert(scopes(at.scope).has(s), `access token scope lacks ${s} (${at.scope})`);
    assert(tokens.refresh_token, "no refresh token although offline_access was granted");
    assert(config.serverMetadata().issuer === ISSUER, "configuration issuer");
    return `ID token ${protectedHeader.alg}, kid ${protectedHeader.kid}`;
  });

  await check("userinfo: profile and email claims for the ID token's subject", async () => {
    const { config, tokens } = await codeFlowTokens();
    const sub = tokens.claims().sub;
    const info = await client.fetchUserInfo(config, tokens.access_token, sub);
    assertEqual(info.sub, sub, "userinfo sub");
    assert(["name", "preferred_username", "given_name", "family_name"].some((c) => typeof info[c] === "string"), `no profile claim in ${JSON.stringify(info)}`);
    assert(typeof info.email === "string" && info.email.includes("@"), `no email claim in ${JSON.stringify(info)}`);
    return Object.keys(info).sort().join(" ");
  });

  await check("userinfo without a token: 401 with a Bearer challenge", async () => {
    const meta = await metadata();
    const res = await fetch(meta.userinfo_endpoint, { redirect: "manual", signal: AbortSignal.timeout(15000) });
    await res.arrayBuffer();
    assertEqual(res.status, 401, "status");
    assert(/^bearer\b/i.test(res.headers.get("www-authenticate") ?? ""), `WWW-Authenticate: ${res.headers.get("www-authenticate")}`);
  });

  await check("no offline_access: no refresh token", async () => {
    const { tokens } = await codeFlowTokens("openid profile email");
    assertEqual(tokens.refresh_token, undefined, "refresh_token");
  });

  await check("refresh rotation: new token works, old one refused, reuse revokes the family", async () => {
    const { config, tokens } = await codeFlowTokens();
    const rt1 = tokens.refresh_token;
    assert(rt1, "no refresh token");
    const second = await client.refreshTokenGrant(config, rt1);
    const rt2 = second.refresh_token;
    assert(rt2 && rt2 !== rt1, "refresh did not rotate the refresh token");
    assert(second.access_token && second.access_token !== tokens.access_token, "no new access token");
    const third = await client.refreshTokenGrant(config, rt2); // the new one works
    const rt3 = third.refresh_token;
    assert(rt3 && rt3 !== rt2, "second refresh did not rotate");
    await expectOAuthError(client.refreshTokenGrant(config, rt1), ["invalid_grant"], { status: 400 });
    await expectOAuthError(client.refreshTokenGrant(config, rt3), ["invalid_grant"], { status: 400 });
    return "rt1 → rt2 → rt3; rt1 reused → invalid_grant; rt3 then → invalid_grant (family revoked)";
  });

  await check("refresh can narrow the scope but not widen it", async () => {
    const { config, tokens } = await codeFlowTokens();
    const narrowed = await client.refreshTokenGrant(config, tokens.refresh_token, { scope: "openid email offline_access" });
    const granted = scopes(narrowed.scope ?? (await verifyAccessToken(narrowed.access_token)).scope);
    assert(!granted.has("profile"), `narrowed scope still has profile: ${[...granted].join(" ")}`);
    await expectOAuthError(client.refreshTokenGrant(config, narrowed.refresh_token, { scope: `${CONFIDENTIAL.scope} kms:read` }), ["invalid_scope"]);
  });

  await check("PAR: buildAuthorizationUrlWithPAR, then code + PKCE", async () => {
    const config = await confidential();
    const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope: "openid email", par: true });
    const keys = [...flow.url.searchParams.keys()].sort().join(",");
    assertEqual(keys, "client_id,request_uri", "authorization URL parameters after PAR");
    const tokens = await redeem(config, flow);
    assert(tokens.access_token && tokens.claims(), "no tokens");
  });

  await check("public client (demo-spa-client, none): code + PKCE", async () => {
    const config = await spa();
    const flow = await authorize(config, { redirect: SPA.redirect, scope: SPA.scope });
    const tokens = await redeem(config, flow);
    const claims = tokens.claims();
    assert(claims, "no ID token");
    const at = await verifyAccessToken(tokens.access_token);
    assertEqual(at.client_id, SPA.id, "access token client_id");
  });

  await check("consent deny: access_denied on the redirect with state and iss", async () => {
    const config = await confidential();
    const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope: "openid profile", params: { prompt: "consent" }, decision: "deny" });
    await expectAuthorizationError(config, flow, "access_denied");
  });
}

async function machineCases() {
  await check("client_credentials (demo-kms-client): RFC 9068 access token", async () => {
    const tokens = await client.clientCredentialsGrant(await kms(), { scope: KMS.scope });
    assertEqual(tokens.refresh_token, undefined, "refresh_token for client_credentials");
    assertEqual(tokens.id_token, undefined, "id_token for client_credentials");
    const at = await verifyAccessToken(tokens.access_token, { audience: KMS.audience });
    assertEqual(at.client_id, KMS.id, "client_id");
    for (const s of scopes(KMS.scope)) assert(scopes(at.scope).has(s), `scope lacks ${s}`);
    assert(at.tenant_id, "no tenant_id claim");
    return `tenant_id ${at.tenant_id}, expires in ${tokens.expiresIn()} s`;
  });

  await check("client_credentials with a scope the client does not have: invalid_scope", async () => {
    await expectOAuthError(client.clientCredentialsGrant(await kms(), { scope: "kms:read kms:admin" }), ["invalid_scope"], { status: 400 });
  });

  await check("introspection by kms-introspection-client of another client's token: active, claims", async () => {
    const tokens = await client.clientCredentialsGrant(await kms(), { scope: KMS.scope });
    const info = await introspect(tokens.access_token);
    assertEqual(info.active, true, "active");
    assertEqual(info.client_id, KMS.id, "client_id");
    for (const s of scopes(KMS.scope)) assert(scopes(info.scope).has(s), `scope lacks ${s} (${info.scope})`);
    assert(typeof info.exp === "number" && info.exp > Date.now() / 1000, `exp ${info.exp}`);
    if (info.iss !== undefined) assertEqual(info.iss, ISSUER, "iss");
    const garbage = await introspect(`not-a-token-${uuidv7()}`);
    assertEqual(garbage.active, false, "active for an unknown token");
    return Object.keys(info).sort().join(" ");
  });

  await check("revocation (RFC 7009), then introspection inactive", async () => {
    const config = await kms();
    const tokens = await client.clientCredentialsGrant(config, { scope: KMS.scope });
    assertEqual((await introspect(tokens.access_token)).active, true, "active before revocation");
    await client.tokenRevocation(config, tokens.access_token);
    const info = await introspect(tokens.access_token);
    assertEqual(info.active, false, "active after revocation");
    assertEqual(Object.keys(info).join(","), "active", "an inactive token's introspection carries only active");
  });

  await check("revoked refresh token is refused", async () => {
    const { config, tokens } = await codeFlowTokens();
    await client.tokenRevocation(config, tokens.refresh_token, { token_type_hint: "refresh_token" });
    await expectOAuthError(client.refreshTokenGrant(config, tokens.refresh_token), ["invalid_grant"]);
  });

  // private_key_jwt: a client registered through the admin API with our public key.
  const pk = await (async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
    const kid = uuidv7();
    const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
    return { privateKey, kid, jwk, clientId: `interop-pkjwt-${uuidv7()}` };
  })();
  const registered = () =>
    once("pkjwt-client", async () => {
      assert(ADMIN_URL, "ADMIN_URL is not set");
      const res = await fetch(`${ADMIN_URL}/admin/v1/clients`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({
          client_id: pk.clientId,
          name: "openid-client interop (private_key_jwt)",
          auth_method: "private_key_jwt",
          jwks: { keys: [pk.jwk] },
          grant_types: ["client_credentials"],
          scopes: ["kms:read"],
          audiences: [KMS.audience],
        }),
        redirect: "manual",
        signal: AbortSignal.timeout(15000),
    });
    const text = await res.text();
    assertEqual(res.status, 201, `admin client registration (${snippet(text)})`);
    return pk;
    });

  await check("private_key_jwt client_credentials (client registered through the admin API)", async () => {
    await registered();
    const config = await configFor(pk.clientId, client.PrivateKeyJwt({ key: pk.privateKey, kid: pk.kid }));
    const tokens = await client.clientCredentialsGrant(config, { scope: "kms:read" });
    const at = await verifyAccessToken(tokens.access_token, { audience: KMS.audience });
    assertEqual(at.client_id, pk.clientId, "client_id");
  });

  await check("private_key_jwt: a replayed client assertion is refused (invalid_client)", async () => {
    await registered();
    const meta = await metadata();
    const assertion = await new jose.SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: pk.kid, typ: "JWT" })
      .setIssuer(pk.clientId)
      .setSubject(pk.clientId)
      .setAudience(ISSUER)
      .setJti(uuidv7())
      .setIssuedAt()
      .setExpirationTime("60s")
      .sign(pk.privateKey);
    const params = {
      grant_type: "client_credentials",
      scope: "kms:read",
      client_id: pk.clientId,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
    };
    const first = await postForm(meta.token_endpoint, params);
    assertEqual(first.status, 200, `first use of the assertion (${snippet(first.text)})`);
    const replay = await postForm(meta.token_endpoint, params);
    // RFC 6749 §5.2: 401 is required only when the client used the Authorization header; an
    // assertion in the body may be refused with 400.
    assert(
      replay.status === 400 || replay.status === 401,
      `replay status: expected 400 or 401, got ${replay.status} (${snippet(replay.text)})`,
    );
    assertEqual(replay.json?.error, "invalid_client", "replay error");
  });
}

// ---------------------------------------------------------------------------------------------
// Resource indicators (RFC 8707) and token exchange (RFC 8693), issue 24

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const RS = { id: "demo-rs", secret: "demo-rs-secret" };
const resourceServer = () => once("demo-rs", () => configFor(RS.id, client.ClientSecretBasic(RS.secret)));

/** A confidential client registered through the admin API with absolute-URI audiences. */
const resourceClient = () =>
  once("resource-client", async () => {
    assert(ADMIN_URL, "ADMIN_URL is not set");
    const id = uuidv7();
    const audiences = [`https://a-${id}.example/api`, `https://b-${id}.example/api`];
    const clientId = `interop-resources-${id}`;
    const res = await fetch(`${ADMIN_URL}/admin/v1/clients`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({
        client_id: clientId,
        name: "openid-client interop (resource indicators)",
        auth_method: "client_secret_basic",
        grant_types: ["authorization_code", "refresh_token", "client_credentials"],
        redirect_uris: [CONFIDENTIAL.redirect],
        scopes: ["openid", "offline_access", "read:resource"],
        audiences,
      }),
      redirect: "manual",
      signal: AbortSignal.timeout(15000),
    });
    const text = await res.text();
    assertEqual(res.status, 201, `admin client registration (${snippet(text)})`);
    const secret = JSON.parse(text).client_secret;
    return { audiences, config: await configFor(clientId, client.ClientSecretBasic(secret)) };
  });

async function resourceIndicatorCases() {
  await check("resource indicators: resource on the authorization and token requests sets aud; refresh narrows only", async () => {
    const { audiences: [a, b], config } = await resourceClient();
    // Two resource values: a URLSearchParams request (authorize() takes one value per name).
    const verifier = client.randomPKCECodeVerifier();
    const request = new URLSearchParams({
      redirect_uri: CONFIDENTIAL.redirect,
      scope: "openid offline_access read:resource",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state: client.randomState(),
      nonce: client.randomNonce(),
    });
    request.append("resource", a);
    request.append("resource", b);
    const url = client.buildAuthorizationUrl(config, request);
    const outcome = await drive(url, { jar: new CookieJar(), ...USER, decision: "allow" });
    const flow = { outcome, url, verifier, state: request.get("state"), nonce: request.get("nonce"), redirect: CONFIDENTIAL.redirect };
    const tokens = await client.authorizationCodeGrant(config, codeCallback(flow), { pkceCodeVerifier: verifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: a });
    const at = await verifyAccessToken(tokens.access_token, { audience: a });
    assertEqual(JSON.stringify(at.aud), JSON.stringify(a), "aud after the token request named one resource");
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, { resource: b });
    assertEqual((await verifyAccessToken(refreshed.access_token)).aud, b, "aud after a narrowing refresh");
    await expectOAuthError(client.refreshTokenGrant(config, refreshed.refresh_token, { resource: "https://elsewhere.example/" }), ["invalid_target"], { status: 400 });
  });

  await check("resource indicators: a resource the client may not get is invalid_target on the redirect", async () => {
    const { config } = await resourceClient();
    const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope: "openid", params: { resource: "https://not-registered.example/" } });
    await expectAuthorizationError(config, flow, "invalid_target");
  });

  await check("resource indicators: client_credentials with resource", async () => {
    const { audiences: [, b], config } = await resourceClient();
    const tokens = await client.clientCredentialsGrant(config, { resource: b });
    assertEqual((await verifyAccessToken(tokens.access_token, { audience: b })).aud, b, "aud");
    await expectOAuthError(client.clientCredentialsGrant(config, { resource: "https://not-registered.example/" }), ["invalid_target"], { status: 400 });
  });
}

async function tokenExchangeCases() {
  const userToken = () =>
    once("exchange-subject", async () => {
      const config = await spa();
      const flow = await authorize(config, { redirect: SPA.redirect, scope: "openid write:resource kms:encrypt" });
      return (await redeem(config, flow)).access_token;
    });

  await check("discovery lists the token exchange grant", async () => {
    for (const doc of [await metadata(), await getJson(`${ISSUER}/.well-known/oauth-authorization-server`)]) {
      assert(doc.grant_types_supported.includes(TOKEN_EXCHANGE), `grant_types_supported: ${doc.grant_types_supported}`);
    }
  });

  await check("token exchange (genericGrantRequest): demo-rs acts for the user at the KMS (act, aud, introspection)", async () => {
    const subject = await userToken();
    const response = await client.genericGrantRequest(await resourceServer(), TOKEN_EXCHANGE, {
      subject_token: subject,
      subject_token_type: ACCESS_TOKEN_TYPE,
      audience: KMS.audience,
      scope: "kms:encrypt",
    });
    assertEqual(response.issued_token_type, ACCESS_TOKEN_TYPE, "issued_token_type");
    assertEqual(response.token_type.toLowerCase(), "bearer", "token_type");
    assertEqual(response.refresh_token, undefined, "refresh_token of an exchange");
    const at = await verifyAccessToken(response.access_token, { audience: KMS.audience });
    const user = jose.decodeJwt(subject);
    assertEqual(at.sub, user.sub, "sub is the user's");
    assertEqual(at.client_id, RS.id, "client_id");
    assertEqual(at.act?.sub, RS.id, "act.sub");
    assert(at.exp <= user.exp, "the exchanged token outlives the subject token");
    const info = await introspect(response.access_token);
    assertEqual(info.active, true, "active");
    assertEqual(info.act?.sub, RS.id, "introspection act.sub");
    return `act ${JSON.stringify(at.act)}, expires in ${response.expires_in} s`;
  });

  await check("token exchange: a wider scope is invalid_scope, another audience invalid_target", async () => {
    const subject = await userToken();
    const config = await resourceServer();
    const base = { subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE };
    await expectOAuthError(client.genericGrantRequest(config, TOKEN_EXCHANGE, { ...base, scope: "kms:admin" }), ["invalid_scope"], { status: 400 });
    await expectOAuthError(client.genericGrantRequest(config, TOKEN_EXCHANGE, { ...base, audience: "cryptoutil-rs" }), ["invalid_target"], { status: 400 });
  });
}

async function negativeCases() {
  // RFC 9700 §2.1.1, RFC 6749 §4.1.2/§4.1.3, OAuth 2.1 §4.1.
  await check("code reuse: second redemption invalid_grant, and the first redemption's tokens are revoked", async () => {
    const config = await confidential();
    const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope: CONFIDENTIAL.scope });
    const first = await redeem(config, flow);
    assertEqual((await introspect(first.access_token)).active, true, "access token active after the first redemption");
    await expectOAuthError(redeem(config, flow), ["invalid_grant"], { status: 400 });
    assertEqual((await introspect(first.access_token)).active, false, "first access token active after the code was reused");
    if (first.refresh_token) {
      await expectOAuthError(client.refreshTokenGrant(config, first.refresh_token), ["invalid_grant"]);
    }
  });

  await check("redirect_uri not registered: error page at authorize, no redirect", async () => {
    const config = await confidential();
    const evil = "https://localhost:8084/confidential/callback-evil";
    const flow = await authorize(config, { redirect: evil, scope: "openid" });
    const { outcome } = flow;
    assert(outcome.kind === "page", `redirected to ${outcome.url?.href}`);
    assert(outcome.status >= 400 && outcome.status < 500, `status ${outcome.status}`);
    assert(outcome.contentType.includes("text/html"), `content-type ${outcome.contentType} (user-facing errors are pages)`);
    return `${outcome.status} ${outcome.contentType}`;
  });

  await check("redirect_uri differing at the token endpoint: invalid_grant", async () => {
    const config = await confidential();
    const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope: "openid" });
    const cb = codeCallback(flow);
    const moved = new URL(`https://localhost:8084/confidential/other${cb.search}`);
    await expectOAuthError(redeem(config, flow, { callback: moved }), ["invalid_grant"], { status: 400 });
  });

  await check("PKCE missing at authorize: invalid_request on the redirect", async () => {
    const config = await confidential();
    const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope: "openid", params: { code_challenge: undefined, code_challenge_method: undefined } });
    await expectAuthorizationError(config, flow, "invalid_request");
  });

  await check("code_challenge_method=plain refused: invalid_request on the redirect", async () => {
    const config = await confidential();
    const verifier = client.randomPKCECodeVerifier();
    const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope: "openid", params: { code_challenge: verifier, code_challenge_method: "plain" } });
    await expectAuthorizationError(config, flow, "invalid_request");
  });

  await check("wrong code_verifier at the token endpoint: invalid_grant", async () => {
    const config = await confidential();
    const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope: "openid" });
    await expectOAuthError(redeem(config, flow, { verifier: client.randomPKCECodeVerifier() }), ["invalid_grant"], { status: 400 });
  });

  await check("refresh token used by another client: refused", async () => {
    const { tokens } = await codeFlowTokens();
    const { error } = await expectOAuthError(client.refreshTokenGrant(await spa(), tokens.refresh_token), ["invalid_grant", "unauthorized_client"]);
    return error;
  });

  await check("code redeemed by another client: invalid_grant", async () => {
    const config = await confidential();
    const flow = await authorize(config, { redirect: CONFIDENTIAL.redirect, scope: "openid" });
    await expectOAuthError(redeem(await spa(), flow), ["invalid_grant"], { status: 400 });
  });

  const clientAuthFailure = async (id, secret) => {
    const meta = await metadata();
    const res = await postForm(meta.token_endpoint, { grant_type: "client_credentials" }, [id, secret]);
    assertEqual(res.status, 401, `status (${snippet(res.text)})`);
    assertEqual(res.json?.error, "invalid_client", "error");
    assert(/^basic\b/i.test(res.headers.get("www-authenticate") ?? ""), `WWW-Authenticate: ${res.headers.get("www-authenticate")} (RFC 6749 §5.2: Basic challenge)`);
  };
  await check("unknown client: 401 invalid_client", () => clientAuthFailure(`unknown-${uuidv7()}`, "whatever-secret"));
  await check("wrong client secret: 401 invalid_client", () => clientAuthFailure(KMS.id, `${KMS.secret}-wrong`));
}

// ---------------------------------------------------------------------------------------------
// DPoP (RFC 9449) with openid-client's DPoP handle

/** A fresh DPoP key pair and openid-client handle for `config`, with the key's thumbprint. */
async function dpopHandle(config, alg = "ES256") {
  const handle = client.getDPoPHandle(config, await client.randomDPoPKeyPair(alg));
  return { handle, jkt: await handle.calculateThumbprint() };
}

/** A bound code grant of the public client: dpop_jkt on the request, the proof at the token endpoint. */
async function dpopCodeFlow(scope = "openid offline_access") {
  const config = await spa();
  const { handle, jkt } = await dpopHandle(config);
  const flow = await authorize(config, { redirect: SPA.redirect, scope, params: { dpop_jkt: jkt } });
  const tokens = await client.authorizationCodeGrant(
    config,
    codeCallback(flow),
    { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce },
    undefined,
    { DPoP: handle },
  );
  return { config, handle, jkt, tokens };
}

async function dpopCases() {
  await check("DPoP: discovery lists dpop_signing_alg_values_supported", async () => {
    const algs = (await metadata()).dpop_signing_alg_values_supported;
    assert(Array.isArray(algs) && algs.includes("ES256") && algs.includes("EdDSA"), `got ${JSON.stringify(algs)}`);
    assert(!algs.some((a) => a === "none" || a.startsWith("HS")), `symmetric or none listed: ${algs}`);
  });

  await check("DPoP: bound code grant (dpop_jkt): token_type DPoP, cnf.jkt, userinfo with DPoP, introspection says DPoP", async () => {
    const { config, handle, jkt, tokens } = await dpopCodeFlow();
    assertEqual(String(tokens.token_type).toLowerCase(), "dpop", "token_type");
    const claims = tokens.claims();
    assert(claims, "no ID token");
    // Userinfo takes the bound token with the DPoP scheme and a proof (ath) of its key.
    const info0 = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP: handle });
    assertEqual(info0.sub, claims.sub, "userinfo sub");
    const at = await verifyAccessToken(tokens.access_token);
    assertEqual(at.cnf?.jkt, jkt, "access token cnf.jkt");
    const info = await introspect(tokens.access_token);
    assertEqual(info.active, true, "active");
    assertEqual(info.token_type, "DPoP", "introspection token_type");
    assertEqual(info.cnf?.jkt, jkt, "introspection cnf.jkt");
  });

  await check("DPoP: nonce retry: use_dpop_nonce with a DPoP-Nonce, openid-client retries with it", async () => {
    const config = await configFor(KMS.id, client.ClientSecretBasic(KMS.secret));
    const seen = [];
    config[client.customFetch] = async (url, options) => {
      const response = await fetch(url, options);
      const body = response.status === 400 ? await response.clone().json().catch(() => ({})) : {};
      seen.push({ status: response.status, error: body.error, nonce: response.headers.get("dpop-nonce") });
      return response;
    };
    const { handle, jkt } = await dpopHandle(config, "ES384");
    const tokens = await client.clientCredentialsGrant(config, { scope: "kms:read" }, { DPoP: handle });
    assertEqual(seen.length, 2, `token requests (${JSON.stringify(seen)})`);
    assertEqual(seen[0].error, "use_dpop_nonce", "first answer");
    assert(seen[0].nonce, "no DPoP-Nonce with use_dpop_nonce");
    assertEqual(seen[1].status, 200, "the retry");
    assertEqual(String(tokens.token_type).toLowerCase(), "dpop", "token_type");
    assertEqual((await verifyAccessToken(tokens.access_token, { audience: KMS.audience })).cnf?.jkt, jkt, "cnf.jkt");
  });

  await check("DPoP: an Ed25519 key (openid-client signs its proofs with alg Ed25519, RFC 9864)", async () => {
    const config = await configFor(KMS.id, client.ClientSecretBasic(KMS.secret));
    const { handle, jkt } = await dpopHandle(config, "EdDSA");
    const tokens = await client.clientCredentialsGrant(config, { scope: "kms:read" }, { DPoP: handle });
    assertEqual(String(tokens.token_type).toLowerCase(), "dpop", "token_type");
    assertEqual((await verifyAccessToken(tokens.access_token, { audience: KMS.audience })).cnf?.jkt, jkt, "cnf.jkt");
  });

  await check("DPoP: bound refresh (public client): another key or none refused, the right key refreshes", async () => {
    const { config, handle, jkt, tokens } = await dpopCodeFlow();
    assert(tokens.refresh_token, "no refresh token");
    const { handle: thief } = await dpopHandle(config, "PS256");
    await expectOAuthError(client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: thief }), ["invalid_grant"], { status: 400 });
    await expectOAuthError(client.refreshTokenGrant(config, tokens.refresh_token), ["invalid_grant"], { status: 400 });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: handle });
    assertEqual(String(refreshed.token_type).toLowerCase(), "dpop", "token_type");
    assertEqual((await verifyAccessToken(refreshed.access_token)).cnf?.jkt, jkt, "cnf.jkt after refresh");
  });

  await check("DPoP: PAR with a DPoP proof binds the code to its key (RFC 9449 §10.1)", async () => {
    const config = await confidential();
    const { handle, jkt } = await dpopHandle(config);
    const { handle: other } = await dpopHandle(config);
    const verifier = client.randomPKCECodeVerifier();
    const request = {
      redirect_uri: CONFIDENTIAL.redirect,
      scope: "openid",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state: client.randomState(),
      nonce: client.randomNonce(),
    };
    const url = await client.buildAuthorizationUrlWithPAR(config, request, { DPoP: handle });
    const flow = { outcome: await drive(url, { jar: new CookieJar(), ...USER, decision: "allow" }), verifier, state: request.state, nonce: request.nonce, redirect: CONFIDENTIAL.redirect };
    const callback = codeCallback(flow);
    const checks = { pkceCodeVerifier: verifier, expectedState: flow.state, expectedNonce: flow.nonce };
    await expectOAuthError(client.authorizationCodeGrant(config, callback, checks, undefined, { DPoP: other }), ["invalid_dpop_proof"], { status: 400 });
    // The refused attempt spent the code (single use): a second flow for the right key.
    const state2 = client.randomState();
    const url2 = await client.buildAuthorizationUrlWithPAR(config, { ...request, state: state2 }, { DPoP: handle });
    const flow2 = { ...flow, outcome: await drive(url2, { jar: new CookieJar(), ...USER, decision: "allow" }), state: state2 };
    const tokens = await client.authorizationCodeGrant(config, codeCallback(flow2), { ...checks, expectedState: state2 }, undefined, { DPoP: handle });
    assertEqual((await verifyAccessToken(tokens.access_token)).cnf?.jkt, jkt, "cnf.jkt");
  });

  await check("DPoP: a code bound with dpop_jkt is refused with another key's proof (invalid_dpop_proof)", async () => {
    const config = await spa();
    const { jkt } = await dpopHandle(config);
    const { handle: other } = await dpopHandle(config);
    const flow = await authorize(config, { redirect: SPA.redirect, scope: SPA.scope, params: { dpop_jkt: jkt } });
    await expectOAuthError(
      client.authorizationCodeGrant(
        config,
        codeCallback(flow),
        { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce },
        undefined,
        { DPoP: other },
      ),
      ["invalid_dpop_proof"],
      { status: 400 },
    );
  });
}

async function registrationCases() {
  // The --demo server opens registration (RFC 7591); registered clients then run the code flow.
  const redirect = "https://localhost:8084/registered/callback";
  await check("discovery lists registration_endpoint", async () => {
    const doc = await getJson(`${ISSUER}/.well-known/openid-configuration`);
    assertEqual(doc.registration_endpoint, `${ISSUER}/oauth2/v1/register`, "registration_endpoint");
  });

  await check("dynamicClientRegistration (public client, none), then code + PKCE with it", async () => {
    const config = await client.dynamicClientRegistration(
      new URL(ISSUER),
      { redirect_uris: [redirect], token_endpoint_auth_method: "none", grant_types: ["authorization_code"], response_types: ["code"], scope: "openid profile", client_name: "openid-client public" },
      client.None(),
      { execute: [client.enableNonRepudiationChecks] },
    );
    const registered = config.clientMetadata();
    assert(registered.client_id, "no client_id");
    assert(registered.registration_access_token, "no registration_access_token");
    assertEqual(registered.registration_client_uri, `${ISSUER}/oauth2/v1/register/${registered.client_id}`, "registration_client_uri");
    assertEqual(registered.client_secret, undefined, "a public client gets no secret");
    const flow = await authorize(config, { redirect, scope: "openid profile" });
    const tokens = await redeem(config, flow);
    assert(tokens.claims(), "no ID token");
    const at = await verifyAccessToken(tokens.access_token);
    assertEqual(at.client_id, registered.client_id, "access token client_id");
    return `client ${registered.client_id}`;
  });

  await check("dynamicClientRegistration (client_secret_basic), then code + PKCE with the issued secret", async () => {
    const registration = await client.dynamicClientRegistration(
      new URL(ISSUER),
      { redirect_uris: [redirect], token_endpoint_auth_method: "client_secret_basic", grant_types: ["authorization_code", "refresh_token"], scope: "openid offline_access" },
      client.None(),
      { execute: [client.enableNonRepudiationChecks] },
    );
    const registered = registration.clientMetadata();
    assert(registered.client_secret, "no client_secret for a confidential client");
    assertEqual(registered.client_secret_expires_at, 0, "client_secret_expires_at");
    const config = new client.Configuration(registration.serverMetadata(), registered.client_id, registered.client_secret, client.ClientSecretBasic(registered.client_secret));
    client.enableNonRepudiationChecks(config);
    const flow = await authorize(config, { redirect, scope: "openid offline_access" });
    const tokens = await redeem(config, flow);
    assert(tokens.refresh_token, "no refresh token");
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert(refreshed.access_token, "refresh failed");
    // RFC 7592: the registration access token reads the registration; another token does not.
    const uri = registered.registration_client_uri;
    const read = await fetch(uri, { headers: { authorization: `Bearer ${registered.registration_access_token}` } });
    assertEqual(read.status, 200, "read with the registration access token");
    assertEqual((await read.json()).client_id, registered.client_id, "read client_id");
    const wrong = await fetch(uri, { headers: { authorization: "Bearer not-the-token" } });
    assertEqual(wrong.status, 401, "read with another token");
    assert(/invalid_token/.test(wrong.headers.get("www-authenticate") ?? ""), "Bearer invalid_token challenge");
    const gone = await fetch(uri, { method: "DELETE", headers: { authorization: `Bearer ${registered.registration_access_token}` } });
    assertEqual(gone.status, 204, "delete");
  });

  await check("dynamicClientRegistration with a fragment in a redirect URI: invalid_redirect_uri", async () => {
    await expectOAuthError(
      client.dynamicClientRegistration(new URL(ISSUER), { redirect_uris: [`${redirect}#fragment`], token_endpoint_auth_method: "none" }, client.None()),
      ["invalid_redirect_uri"],
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Device authorization grant (RFC 8628)

const CLI = { id: "demo-cli", scope: "openid profile offline_access kms:read", audience: "cryptoutil-kms" };
const DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code";
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;
const cli = () => once("cli", () => configFor(CLI.id, client.None()));

/** The user's side of a device authorization: verification_uri_complete through the pages. */
async function userDecides(response, decision) {
  const outcome = await drive(response.verification_uri_complete, { ...USER, decision });
  if (outcome.kind !== "page" || outcome.status !== 200) {
    throw new Error(`the device pages ended on ${outcome.kind} ${outcome.status ?? outcome.url}: ${snippet(outcome.body ?? "")} [${outcome.trail.join(", ")}]`);
  }
  return outcome;
}

async function deviceCases() {
  await check("device grant: discovery lists device_authorization_endpoint and the grant", async () => {
    for (const doc of [await metadata(), await getJson(`${ISSUER}/.well-known/oauth-authorization-server`)]) {
      assertEqual(doc.device_authorization_endpoint, `${ISSUER}/oauth2/v1/device_authorization`, "device_authorization_endpoint");
      assert(doc.grant_types_supported.includes(DEVICE_CODE), `grant_types_supported: ${doc.grant_types_supported}`);
    }
  });

  await check("device grant (demo-cli, public): initiateDeviceAuthorization, the pages, pollDeviceAuthorizationGrant", async () => {
    const config = await cli();
    const response = await client.initiateDeviceAuthorization(config, { scope: CLI.scope });
    assert(USER_CODE.test(response.user_code), `user_code ${response.user_code}`);
    assertEqual(response.verification_uri, `${ISSUER}/oidc/v1/device`, "verification_uri");
    assertEqual(response.verification_uri_complete, `${ISSUER}/oidc/v1/device?user_code=${response.user_code}`, "verification_uri_complete");
    assert(response.expires_in > 0 && response.interval >= 1, `expires_in ${response.expires_in}, interval ${response.interval}`);
    const page = await userDecides(response, "allow");
    assert(page.body.includes("You may return to your device."), `last page: ${snippet(page.body)}`);
    const tokens = await client.pollDeviceAuthorizationGrant(config, response);
    assertEqual(tokens.token_type.toLowerCase(), "bearer", "token_type");
    assert(tokens.refresh_token, "a refresh token (offline_access)");
    const at = await verifyAccessToken(tokens.access_token, { audience: CLI.audience });
    assertEqual(at.client_id, CLI.id, "client_id");
    const id = tokens.claims();
    assertEqual(id.sub, at.sub, "the ID token's subject");
    assertEqual(id.aud, CLI.id, "the ID token's audience");
    const again = await postForm(`${ISSUER}/oauth2/v1/token`, { grant_type: DEVICE_CODE, client_id: CLI.id, device_code: response.device_code });
    assertEqual(again.json?.error, "invalid_grant", "a second redemption");
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert(refreshed.access_token, "refreshed");
    return `user_code ${response.user_code}, trail ${page.trail.length} steps`;
  });

  await check("device grant: the user denies -> access_denied", async () => {
    const config = await cli();
    const response = await client.initiateDeviceAuthorization(config, { scope: "openid" });
    const page = await userDecides(response, "deny");
    assert(page.body.includes("Access denied. You may close this page."), `last page: ${snippet(page.body)}`);
    await expectOAuthError(client.pollDeviceAuthorizationGrant(config, response), ["access_denied"], { status: 400 });
  });

  await check("device grant: authorization_pending, then slow_down (interval + 5 s), unknown code invalid_grant", async () => {
    const config = await cli();
    const response = await client.initiateDeviceAuthorization(config, { scope: "openid" });
    const poll = (device_code) => postForm(`${ISSUER}/oauth2/v1/token`, { grant_type: DEVICE_CODE, client_id: CLI.id, device_code });
    assertEqual((await poll(response.device_code)).json?.error, "authorization_pending", "first poll");
    const slow = await poll(response.device_code);
    assertEqual(slow.json?.error, "slow_down", "an immediate second poll");
    assert(String(slow.json?.error_description).includes(`${response.interval + 5} seconds`), `slow_down description: ${slow.json?.error_description}`);
    assertEqual((await poll(`unknown-${uuidv7()}`)).json?.error, "invalid_grant", "unknown device code");
  });

  await check("device grant: a public client without the grant is unauthorized_client", async () => {
    await expectOAuthError(client.initiateDeviceAuthorization(await spa(), { scope: "openid" }), ["unauthorized_client"], { status: 400 });
  });
}

// ---------------------------------------------------------------------------------------------

async function main() {
  if (!ISSUER.startsWith("https://")) {
    console.error("usage: ISSUER=https://127.0.0.1:PORT ADMIN_URL=https://127.0.0.1:PORT NODE_EXTRA_CA_CERTS=ca.pem node oidc.mjs");
    process.exit(2);
  }
  if (!process.env.NODE_EXTRA_CA_CERTS) console.log("note: NODE_EXTRA_CA_CERTS is not set: the server's CA must be trusted otherwise");
  console.log(`openid-client checks against ${ISSUER}`);
  await discoveryCases();
  await codeFlowCases();
  await machineCases();
  await negativeCases();
  await dpopCases();
  await resourceIndicatorCases();
  await tokenExchangeCases();
  await registrationCases();
  await deviceCases();
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`oidc: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.log(`FAIL  (harness)\n      ${describe(e)}`);
  console.log(`oidc: ${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
  process.exit(1);
});
