// The MCP authorization path (MCP spec 2025-11-25, "Authorization") against the cryptoutil
// Identity server and its sample resource server, with the official SDK's client auth helpers
// (@modelcontextprotocol/sdk, client/auth.js): a client that knows only the resource URL
//
//   1. calls the resource without a token and reads the 401's WWW-Authenticate
//      (resource_metadata, RFC 9728 §5.1),
//   2. lets the SDK's `auth()` discover the protected resource metadata (RFC 9728) and the
//      authorization server metadata (RFC 8414), identify itself — MODE=cimd: a client ID
//      metadata document it serves itself over https on loopback (the SDK's
//      `clientMetadataUrl`); MODE=dcr: RFC 7591 dynamic registration (`registerClient`) — and
//      build the authorization request with PKCE S256 and `resource` (RFC 8707),
//   3. signs in and consents by posting the pages as a browser would (../oidc/browser.mjs),
//   4. has `auth()` exchange the code (PKCE verifier, `resource`) for tokens,
//   5. calls the resource with the access token: 200.
//
// Environment: RS_URL (the resource server's base URL), ISSUER (checked against what the
// resource advertises), MODE (cimd | dcr), and for cimd DOC_CERT / DOC_KEY (a server
// certificate for 127.0.0.1 from a CA Identity trusts). NODE_EXTRA_CA_CERTS must trust every
// server. Prints one `PASS name` / `FAIL name` line per step (the reason indented on the next
// line), then `mcp: N passed, M failed`; exits 1 on any failure.

import { readFileSync } from "node:fs";
import { createServer } from "node:https";

import {
  auth,
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
} from "@modelcontextprotocol/sdk/client/auth.js";

import { CookieJar, drive } from "../oidc/browser.mjs";

const RS_URL = required("RS_URL").replace(/\/$/, "");
const ISSUER = required("ISSUER").replace(/\/$/, "");
const MODE = process.env.MODE ?? "cimd";
const RESOURCE_PATH = "/api/v1/protected/resource";
const USER = process.env.DEMO_USER ?? "demo-user";
const PASSWORD = process.env.DEMO_PASSWORD ?? `${USER}-password`;

let passed = 0;
let failed = 0;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.log(`FAIL  (harness)\n      ${name} is not set`);
    process.exit(1);
  }
  return value;
}

async function step(name, fn) {
  const started = Date.now();
  try {
    const result = await fn();
    passed++;
    console.log(`PASS  ${name} (${Date.now() - started} ms)`);
    return result;
  } catch (error) {
    failed++;
    console.log(`FAIL  ${name}\n      ${String(error?.stack ?? error).split("\n").slice(0, 4).join("\n      ")}`);
    throw Object.assign(new Error(`${name} failed`), { reported: true });
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Serves `documents` (path → JSON) over https on a free loopback port; resolves to its origin. */
function serveDocuments(documents, cert, key) {
  const server = createServer({ cert, key, minVersion: "TLSv1.3" }, (req, res) => {
    const path = new URL(req.url, "https://127.0.0.1").pathname;
    const doc = documents.get(path);
    if (!doc) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=60" });
    res.end(JSON.stringify(doc()));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve({ server, origin: `https://127.0.0.1:${server.address().port}` }));
  });
}

/** An OAuthClientProvider kept in memory; the "browser" is ../oidc/browser.mjs. */
class Provider {
  constructor({ redirectUrl, clientMetadataUrl, clientMetadata }) {
    this._redirectUrl = redirectUrl;
    this.clientMetadataUrl = clientMetadataUrl;
    this._clientMetadata = clientMetadata;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this.authorizationUrl = undefined;
    this.registered = false;
  }
  get redirectUrl() {
    return this._redirectUrl;
  }
  get clientMetadata() {
    return this._clientMetadata;
  }
  state() {
    return "mcp-state-" + Math.random().toString(36).slice(2);
  }
  clientInformation() {
    return this._clientInformation;
  }
  saveClientInformation(info) {
    this._clientInformation = info;
    if (info.client_id !== this.clientMetadataUrl) this.registered = true;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  redirectToAuthorization(url) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier) {
    this._codeVerifier = verifier;
  }
  codeVerifier() {
    return this._codeVerifier;
  }
}

async function main() {
  console.log(`MCP authorization (${MODE}) against ${RS_URL}, issuer ${ISSUER}`);
  const serverUrl = `${RS_URL}${RESOURCE_PATH}`;

  const challenge = await step("the resource answers 401 with resource_metadata", async () => {
    const res = await fetch(serverUrl);
    await res.arrayBuffer();
    assert(res.status === 401, `expected 401, got ${res.status}`);
    const params = extractWWWAuthenticateParams(res);
    assert(params.resourceMetadataUrl, `no resource_metadata in ${res.headers.get("www-authenticate")}`);
    return params;
  });

  const resourceMetadata = await step("RFC 9728 protected resource metadata (SDK)", async () => {
    const prm = await discoverOAuthProtectedResourceMetadata(serverUrl, {
      resourceMetadataUrl: challenge.resourceMetadataUrl,
    });
    assert(prm.resource === RS_URL, `resource ${prm.resource} is not ${RS_URL}`);
    assert(prm.authorization_servers?.includes(ISSUER), `authorization_servers ${prm.authorization_servers} lack ${ISSUER}`);
    return prm;
  });

  await step("RFC 8414 authorization server metadata (SDK)", async () => {
    const as = await discoverAuthorizationServerMetadata(resourceMetadata.authorization_servers[0]);
    assert(as.issuer === ISSUER, `issuer ${as.issuer}`);
    assert(as.code_challenge_methods_supported?.includes("S256"), "no S256");
    if (MODE === "cimd") {
      assert(as.client_id_metadata_document_supported === true, "client_id_metadata_document_supported is not true");
    } else {
      assert(as.registration_endpoint, "no registration_endpoint");
    }
  });

  let documents;
  let redirectUrl;
  let clientMetadataUrl;
  if (MODE === "cimd") {
    const docs = new Map();
    documents = await serveDocuments(docs, readFileSync(required("DOC_CERT")), readFileSync(required("DOC_KEY")));
    redirectUrl = `http://127.0.0.1:${documents.server.address().port}/callback`;
    clientMetadataUrl = `${documents.origin}/mcp/client-metadata.json`;
    docs.set("/mcp/client-metadata.json", () => ({
      client_id: clientMetadataUrl,
      client_name: "MCP interop client",
      client_uri: documents.origin,
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }));
  } else if (MODE === "dcr") {
    redirectUrl = "http://127.0.0.1:33418/callback";
  } else {
    throw new Error(`MODE must be cimd or dcr, not ${MODE}`);
  }
  const provider = new Provider({
    redirectUrl,
    clientMetadataUrl,
    clientMetadata: {
      client_name: "MCP interop client",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    },
  });

  try {
    await step(`auth(): discovery, ${MODE === "cimd" ? "metadata document client id" : "dynamic registration"}, PKCE + resource`, async () => {
      const result = await auth(provider, {
        serverUrl,
        resourceMetadataUrl: challenge.resourceMetadataUrl,
        scope: challenge.scope,
      });
      assert(result === "REDIRECT", `expected REDIRECT, got ${result}`);
      const url = provider.authorizationUrl;
      assert(url, "no authorization URL");
      const p = url.searchParams;
      assert(url.href.startsWith(`${ISSUER}/`), `authorization endpoint ${url.origin}${url.pathname}`);
      assert(p.get("code_challenge_method") === "S256" && p.get("code_challenge"), "no PKCE S256");
      assert(p.get("resource") === RS_URL, `resource ${p.get("resource")}`);
      if (MODE === "cimd") {
        assert(p.get("client_id") === clientMetadataUrl, `client_id ${p.get("client_id")}`);
      } else {
        assert(provider.registered && p.get("client_id"), "not registered");
      }
    });

    const code = await step("sign-in and consent (posted as a browser would)", async () => {
      const outcome = await drive(provider.authorizationUrl.href, { jar: new CookieJar(), username: USER, password: PASSWORD });
      assert(outcome.kind === "redirect", `stopped at a page: ${outcome.status} ${outcome.trail?.join(", ")} ${outcome.body?.slice(0, 300)}`);
      const back = outcome.url;
      assert(back.href.startsWith(redirectUrl), `redirected to ${back.href}`);
      assert(!back.searchParams.get("error"), `error ${back.searchParams.get("error")}: ${back.searchParams.get("error_description")}`);
      assert(back.searchParams.get("iss") === ISSUER, "no iss (RFC 9207)");
      return back.searchParams.get("code");
    });

    await step("auth(): code exchange with the PKCE verifier and resource", async () => {
      const result = await auth(provider, {
        serverUrl,
        resourceMetadataUrl: challenge.resourceMetadataUrl,
        authorizationCode: code,
      });
      assert(result === "AUTHORIZED", `expected AUTHORIZED, got ${result}`);
      const tokens = provider.tokens();
      assert(tokens?.access_token, "no access token");
      assert(tokens.token_type?.toLowerCase() === "bearer", `token_type ${tokens.token_type}`);
      const [, payload] = tokens.access_token.split(".");
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
      const aud = [].concat(claims.aud);
      assert(aud.length === 1 && aud[0] === RS_URL, `aud ${JSON.stringify(claims.aud)} is not the resource`);
      assert(claims.client_id === provider.clientInformation().client_id, `client_id ${claims.client_id}`);
    });

    await step("the resource answers 200 with the token", async () => {
      const res = await fetch(serverUrl, { headers: { authorization: `Bearer ${provider.tokens().access_token}` } });
      const text = await res.text();
      assert(res.status === 200, `expected 200, got ${res.status}: ${text.slice(0, 300)}`);
    });
  } finally {
    documents?.server.close();
  }
}

try {
  await main();
} catch (error) {
  if (!error?.reported) {
    failed++;
    console.log(`FAIL  (harness)\n      ${error?.stack ?? error}`);
  }
}
console.log(`mcp: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
