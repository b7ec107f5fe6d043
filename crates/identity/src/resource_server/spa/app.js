// The cryptoutil sample single-page client (served by `cryptoutil identity rs start`).
//
// Signs in at the issuer with the authorization code flow and PKCE (S256) as a public client,
// shows the claims of the ID token, calls the sample resource with the access token, and signs
// out with RP-initiated logout. Everything it keeps lives in sessionStorage (this tab only).
//
// ID token checks: the token comes straight from the issuer's token endpoint over TLS, so,
// per OpenID Connect Core 3.1.3.7 (6), its signature need not be checked here; the client
// checks iss, aud (and azp), exp and the nonce it sent. Access tokens are opaque to this
// client: the resource server validates them (signature, issuer, audience, expiry, scope).

const KEY_PENDING = "cryptoutil.sample.pending"; // { state, nonce, verifier } during sign-in
const KEY_SESSION = "cryptoutil.sample.session"; // tokens and claims after sign-in
const KEY_LOGOUT = "cryptoutil.sample.logout"; // the state sent with the logout request

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Encoding and randomness

function base64url(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomToken(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function s256(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function jwtClaims(jwt) {
  const parts = typeof jwt === "string" ? jwt.split(".") : [];
  if (parts.length !== 3) throw new Error("the ID token is not a compact JWS");
  const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function readJson(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Protocol

async function fetchJson(url, options = {}) {
  const response = await fetch(url, { credentials: "omit", cache: "no-store", ...options });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { response, body };
}

async function discover(issuer) {
  const { response, body } = await fetchJson(`${issuer}/.well-known/openid-configuration`);
  if (!response.ok || !body) throw new Error(`discovery at ${issuer} failed (HTTP ${response.status})`);
  if (body.issuer !== issuer) throw new Error("the discovery document names another issuer");
  for (const name of ["authorization_endpoint", "token_endpoint", "end_session_endpoint"]) {
    if (typeof body[name] !== "string") throw new Error(`the discovery document has no ${name}`);
  }
  return body;
}

function redirectUri() {
  return `${location.origin}/callback`;
}

async function signIn(config, metadata) {
  const pending = { state: randomToken(16), nonce: randomToken(16), verifier: randomToken(32) };
  sessionStorage.setItem(KEY_PENDING, JSON.stringify(pending));
  const url = new URL(metadata.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await s256(pending.verifier),
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

/** Checks the ID token's claims (see the note at the top) and returns them. */
function checkIdToken(idToken, config, nonce) {
  const claims = jwtClaims(idToken);
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.iss !== config.issuer) throw new Error("the ID token is from another issuer");
  if (!audiences.includes(config.client_id)) throw new Error("the ID token is not for this client");
  if (audiences.length > 1 && claims.azp !== config.client_id) {
    throw new Error("the ID token's azp is not this client");
  }
  if (typeof claims.exp !== "number" || claims.exp * 1000 <= Date.now()) {
    throw new Error("the ID token has expired");
  }
  if (claims.nonce !== nonce) throw new Error("the ID token's nonce is not the one sent");
  if (typeof claims.sub !== "string" || claims.sub === "") throw new Error("the ID token has no sub");
  return claims;
}

/** Finishes a sign-in at /callback: state, iss, then the code exchange. */
async function completeSignIn(config, metadata) {
  const params = new URLSearchParams(location.search);
  const pending = readJson(KEY_PENDING);
  sessionStorage.removeItem(KEY_PENDING);
  history.replaceState(null, "", "/"); // the code never stays in the address bar or history
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("this sign-in response does not match a sign-in started here (state)");
  }
  if (params.get("iss") !== config.issuer) {
    throw new Error("the sign-in response comes from another issuer (iss, RFC 9207)");
  }
  if (params.has("error")) {
    const description = params.get("error_description");
    throw new Error(`sign-in refused: ${params.get("error")}${description ? ` (${description})` : ""}`);
  }
  const code = params.get("code");
  if (!code) throw new Error("the sign-in response has no code");
  const { response, body } = await fetchJson(metadata.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(),
      client_id: config.client_id,
      code_verifier: pending.verifier,
    }),
  });
  if (!response.ok || !body || typeof body.access_token !== "string") {
    const reason = body?.error ? `${body.error}${body.error_description ? `: ${body.error_description}` : ""}` : `HTTP ${response.status}`;
    throw new Error(`the token request failed (${reason})`);
  }
  const claims = checkIdToken(body.id_token, config, pending.nonce);
  const session = {
    accessToken: body.access_token,
    idToken: body.id_token,
    scope: body.scope ?? config.scope,
    expiresAt: Date.now() + 1000 * (Number(body.expires_in) || 0),
    claims,
  };
  sessionStorage.setItem(KEY_SESSION, JSON.stringify(session));
  return session;
}

function signOut(config, metadata, session) {
  const state = randomToken(16);
  sessionStorage.clear();
  sessionStorage.setItem(KEY_LOGOUT, state);
  const url = new URL(metadata.end_session_endpoint);
  url.search = new URLSearchParams({
    id_token_hint: session.idToken,
    client_id: config.client_id,
    post_logout_redirect_uri: `${location.origin}/`,
    state,
  }).toString();
  location.assign(url.toString());
}

/** True (and the address bar cleaned) when this page load is the return from our logout. */
function returnedFromSignOut() {
  const expected = sessionStorage.getItem(KEY_LOGOUT);
  const state = new URLSearchParams(location.search).get("state");
  if (expected === null || state === null) return false;
  sessionStorage.removeItem(KEY_LOGOUT);
  history.replaceState(null, "", "/");
  return state === expected;
}

async function callResource(config, session, method) {
  const options = { method, headers: { Authorization: `Bearer ${session.accessToken}` } };
  if (method === "POST") {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify({ message: $("message").value });
  }
  $("result-status").textContent = `${method} ${config.resource} …`;
  $("result").textContent = "";
  try {
    const { response, body } = await fetchJson(config.resource, options);
    $("result-status").textContent = `${method} ${config.resource}: HTTP ${response.status}`;
    $("result").textContent = body === null ? "(no JSON body)" : JSON.stringify(body, null, 2);
  } catch (e) {
    $("result-status").textContent = `${method} ${config.resource} failed: ${e.message}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Page

function show(view, note = "") {
  $("loading").hidden = true;
  $("signed-out").hidden = view !== "signed-out";
  $("signed-in").hidden = view !== "signed-in";
  $("signed-out-note").textContent = note;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function showSession(session) {
  for (const name of ["sub", "preferred_username", "name", "email", "acr"]) {
    const value = session.claims[name];
    $(`claim-${name}`).textContent = typeof value === "string" ? value : "(not given)";
  }
  const amr = session.claims.amr;
  $("claim-amr").textContent = Array.isArray(amr) ? amr.join(" ") : "(not given)";
  $("granted-scope").textContent = session.scope;
  show("signed-in");
}

async function main() {
  const { response, body: config } = await fetchJson("/spa/config.json");
  if (!response.ok || !config) throw new Error("cannot load /spa/config.json");
  let metadata = null;
  const signInButton = $("sign-in");
  signInButton.addEventListener("click", async () => {
    try {
      metadata ??= await discover(config.issuer);
      await signIn(config, metadata);
    } catch (e) {
      showError(`Cannot sign in: ${e.message}`);
    }
  });

  let session = null;
  let note = "";
  if (location.pathname === "/callback") {
    metadata = await discover(config.issuer);
    session = await completeSignIn(config, metadata);
  } else if (returnedFromSignOut()) {
    note = "You have signed out.";
  } else {
    session = readJson(KEY_SESSION);
    if (session && session.expiresAt <= Date.now()) {
      sessionStorage.removeItem(KEY_SESSION);
      session = null;
      note = "Your session has expired; sign in again.";
    }
  }
  if (!session) {
    show("signed-out", note);
    return;
  }
  showSession(session);
  $("read").addEventListener("click", () => callResource(config, session, "GET"));
  $("write").addEventListener("click", () => callResource(config, session, "POST"));
  $("sign-out").addEventListener("click", async () => {
    try {
      metadata ??= await discover(config.issuer);
      signOut(config, metadata, session);
    } catch (e) {
      showError(`Cannot sign out: ${e.message}`);
    }
  });
}

main().catch((e) => {
  show("signed-out");
  showError(e.message);
});
