// The sample single-page client in a real browser: Debian's headless Chromium driven by
// playwright-core. Opens the client, signs in as demo-user through Identity's login and consent
// pages, checks the claims, reads and writes the protected resource, signs out, and checks that
// the Identity session has ended; then the device grant: a user code typed on Identity's device
// page, sign-in, Allow, and the device's poll gets tokens. TLS is verified: the demo CAs are trusted through the NSS
// database of the HOME given in BROWSER_HOME (certificate errors are never ignored).
//
// Environment (set by `cargo xtask browser`):
//   RS_URL         the sample client's origin, https://localhost:8084
//   ISSUER         Identity's issuer URL
//   CHROMIUM       the browser executable (/usr/bin/chromium)
//   BROWSER_HOME   a HOME whose .pki/nssdb trusts the demo CAs
//   USER_DATA_DIR  a fresh, empty Chromium profile directory
//   ARTIFACTS      where the screenshots go
//   NODE_EXTRA_CA_CERTS  Identity's demo CA (the device steps call Identity from Node)
//
// Output: one `PASS step` / `FAIL step` line per step (the reason on the next, indented line),
// then `browser: N passed, M failed`; exit 1 on any failure.

import { execFileSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import otplib from "otplib";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through \`cargo xtask browser\`)`);
  return value;
};

const RS_URL = env("RS_URL").replace(/\/$/, "");
const ISSUER = env("ISSUER").replace(/\/$/, "");
const ARTIFACTS = env("ARTIFACTS");
const STEP_TIMEOUT = 30_000;

// Flags for a quiet, reproducible headless run. `--no-sandbox`: CI runs as root, where
// Chromium's sandbox cannot start.
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let passed = 0;
let failed = 0;
let shot = 0;

async function screenshot(page, name) {
  shot += 1;
  const file = join(ARTIFACTS, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    passed += 1;
    console.log(`PASS  ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL  ${name}`);
    console.log(`      ${String(e?.message ?? e).split("\n").join("\n      ")}`);
    throw Object.assign(new Error(`step failed: ${name}`), { reported: true });
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function text(page, selector) {
  return (await page.locator(selector).textContent({ timeout: STEP_TIMEOUT }))?.trim() ?? "";
}

const DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code";

/** POSTs a form from Node (TLS verified with NODE_EXTRA_CA_CERTS): { status, json }. */
async function postForm(url, params) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams(params).toString(),
    signal: AbortSignal.timeout(STEP_TIMEOUT),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json };
}

/** Decodes the QR code in a PNG with Debian's zbarimg (an independent decoder): its text. */
function decodeQr(file) {
  return execFileSync("zbarimg", ["--quiet", "--raw", file], { encoding: "utf8" }).trim();
}

/** Waits until a new TOTP time step starts (each code is usable once). */
async function nextStep(authenticator) {
  await new Promise((resolve) => setTimeout(resolve, (authenticator.timeRemaining() + 1) * 1000));
}

/**
 * TOTP (issue 28): demo-admin (demo-user has a passkey by now) enrols an authenticator on /account/totp with the secret read back
 * out of the QR code by zbarimg and codes computed by otplib, then signs in to the sample client
 * with the password and a fresh code on the second-factor page.
 */
async function totpSteps(context, page) {
  const { authenticator } = otplib;
  let secret = "";
  await step("TOTP: sign in at the account page, open /account/totp, read the QR code with zbarimg", async () => {
    await context.clearCookies();
    await page.goto(`${ISSUER}/account/totp`);
    await page.waitForURL((url) => url.href.startsWith(`${ISSUER}/oidc/v1/login`));
    await page.getByLabel("Username").fill("demo-admin");
    await page.getByLabel("Password").fill("demo-admin-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${ISSUER}/account`);
    await page.goto(`${ISSUER}/account/totp`);
    const qr = page.locator("#totp-qr svg");
    await qr.waitFor();
    const file = join(ARTIFACTS, "totp-qr.png");
    await qr.screenshot({ path: file });
    await screenshot(page, "account-totp");
    const uri = new URL(decodeQr(file));
    expect(uri.protocol === "otpauth:" && uri.host === "totp", `the QR code holds ${uri.protocol}//${uri.host}`);
    expect(decodeURIComponent(uri.pathname).endsWith(":demo-admin"), `label ${uri.pathname}`);
    secret = uri.searchParams.get("secret") ?? "";
    const shown = (await text(page, "#totp-secret")).replaceAll(" ", "");
    expect(secret.length >= 32 && secret === shown, "the QR code's secret differs from the one shown as text");
  });

  await step("TOTP: confirm with an otplib code; the recovery codes are shown once", async () => {
    await page.getByLabel("Code from the app").fill(authenticator.generate(secret));
    await page.getByRole("button", { name: "Confirm" }).click();
    await page.getByRole("heading", { name: "Authenticator app added" }).waitFor();
    const codes = await page.locator("#recovery-codes li").count();
    expect(codes === 10, `${codes} recovery codes shown`);
    await screenshot(page, "account-totp-added");
  });

  await step("TOTP: the sample client's sign-in asks for a code after the password", async () => {
    // The passkey steps left the sample client signed in (its tokens live in the tab's
    // sessionStorage, which clearing cookies keeps): sign out of it first.
    await page.goto(`${RS_URL}/`);
    await page.locator("#signed-in:not([hidden]), #signed-out:not([hidden])").first().waitFor();
    if (await page.locator("#signed-in").isVisible()) {
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByText("You have signed out.").waitFor();
    }
    await context.clearCookies();
    await page.goto(`${RS_URL}/`);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((url) => url.href.startsWith(`${ISSUER}/oidc/v1/login`));
    await page.getByLabel("Username").fill("demo-admin");
    await page.getByLabel("Password").fill("demo-admin-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${ISSUER}/oidc/v1/login/second-factor`);
    await screenshot(page, "identity-second-factor");
    // The confirming code's step is spent: wait for the next one, as a person would.
    await nextStep(authenticator);
    await page.getByLabel("Authentication code").fill(authenticator.generate(secret));
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL(
      (url) => url.href.startsWith(`${RS_URL}/`) || url.href.startsWith(`${ISSUER}/oidc/v1/consent`),
    );
    if (page.url().startsWith(`${ISSUER}/oidc/v1/consent`)) {
      await page.getByRole("button", { name: "Allow" }).click();
    }
    await page.waitForURL(`${RS_URL}/`);
    await page.getByRole("heading", { name: "Signed in" }).waitFor();
    const username = await text(page, "#claim-preferred_username");
    expect(username === "demo-admin", `preferred_username is ${username}`);
    const amr = await text(page, "#claim-amr");
    expect(amr === "pwd otp mfa", `amr is ${amr}`);
    const acr = await text(page, "#claim-acr");
    expect(acr === "urn:cryptoutil:acr:mfa", `acr is ${acr}`);
    await screenshot(page, "sample-client-signed-in-with-totp");
  });
}

async function resultJson(page) {
  return JSON.parse(await text(page, "#result"));
}

/**
 * Passkeys (issue 28): a virtual authenticator through the DevTools protocol (CTAP2, internal
 * transport, resident keys, user verification). demo-user, signed in, adds a passkey on
 * /account/passkeys; then, signed out, signs in to the sample client with the passkey button
 * (passwordless: no password typed) and gets the same subject.
 */
async function passkeySteps(context, page, subject) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const name = `Browser test passkey ${Date.now()}`;

  await step("passkeys: add a passkey on the account page (virtual authenticator)", async () => {
    await page.goto(`${ISSUER}/account/passkeys`);
    if (page.url().startsWith(`${ISSUER}/oidc/v1/login`)) {
      await page.getByLabel("Username").fill("demo-user");
      await page.getByLabel("Password").fill("demo-user-password");
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL((url) => url.href.startsWith(`${ISSUER}/account`));
      await page.goto(`${ISSUER}/account/passkeys`);
    }
    await page.getByLabel("Name for the new passkey (optional)").fill(name);
    await screenshot(page, "identity-passkeys-empty");
    await page.getByRole("button", { name: "Add a passkey" }).click();
    await page.getByRole("heading", { name }).waitFor();
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    expect(credentials.length === 1, `the authenticator holds ${credentials.length} credentials`);
    expect(credentials[0].isResidentCredential, "the passkey is not discoverable");
    const body = await page.locator("body").innerText();
    expect(body.includes("last used never"), "the new passkey is not listed as unused");
    await screenshot(page, "identity-passkeys-added");
  });

  const signedInAs = async () => {
    await page.waitForURL(`${RS_URL}/`);
    await page.getByRole("heading", { name: "Signed in", exact: true }).waitFor();
    const signedIn = await text(page, "#claim-sub");
    expect(signedIn === subject, `signed in as ${signedIn}, not ${subject}`);
    const methods = await text(page, "#claim-amr");
    expect(/hwk|swk/.test(methods) && methods.includes("user"), `amr is ${methods}`);
  };

  await step("passkeys: signed out, conditional UI signs in to the sample client with the passkey, no password", async () => {
    await context.clearCookies();
    await page.goto(`${RS_URL}/`);
    await page.getByRole("button", { name: "Sign in" }).click();
    // The login page's username field offers passkeys (autocomplete="username webauthn"); the
    // virtual authenticator answers the conditional request at once, nothing typed or clicked.
    await signedInAs();
    await screenshot(page, "sample-client-signed-in-with-passkey");
  });

  await step("passkeys: without conditional UI, the login page's Use a passkey button signs in", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("You have signed out.").waitFor();
    await page.addInitScript(() => {
      if (window.PublicKeyCredential) {
        window.PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
      }
    });
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((url) => url.href.startsWith(`${ISSUER}/oidc/v1/login`));
    await screenshot(page, "identity-login-passkey-button");
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await signedInAs();
  });

  await step("passkeys: the account page shows the passkey as used", async () => {
    await page.goto(`${ISSUER}/account/passkeys`);
    await page.getByRole("heading", { name }).waitFor();
    const body = await page.locator("body").innerText();
    expect(!body.includes("last used never"), "the passkey's last use is not shown");
  });
  await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId });
}

async function run() {
  await mkdir(ARTIFACTS, { recursive: true });
  const context = await chromium.launchPersistentContext(env("USER_DATA_DIR"), {
    executablePath: env("CHROMIUM"),
    headless: true,
    args: FLAGS,
    env: { ...process.env, HOME: env("BROWSER_HOME") },
    viewport: { width: 1000, height: 900 },
    timeout: STEP_TIMEOUT,
  });
  const problems = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });

    await step("the sample client loads signed out (TLS verified, CSP satisfied)", async () => {
      const response = await page.goto(`${RS_URL}/`);
      expect(response?.status() === 200, `GET / answered ${response?.status()}`);
      await page.getByRole("heading", { name: "Not signed in" }).waitFor();
      await page.getByRole("button", { name: "Sign in" }).waitFor();
      await screenshot(page, "sample-client-signed-out");
    });

    await step("Sign in leads to Identity's login page", async () => {
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL((url) => url.href.startsWith(`${ISSUER}/oidc/v1/login`));
      await page.getByLabel("Username").fill("demo-user");
      await page.getByLabel("Password").fill("demo-user-password");
      await screenshot(page, "identity-login");
      await page.getByRole("button", { name: "Sign in" }).click();
    });

    await step("the consent page lists the scopes; Allow", async () => {
      await page.waitForURL((url) => url.href.startsWith(`${ISSUER}/oidc/v1/consent`));
      const body = await page.locator("body").innerText();
      for (const scope of ["read:resource", "write:resource"]) {
        expect(body.includes(scope), `the consent page does not mention ${scope}`);
      }
      await screenshot(page, "identity-consent");
      await page.getByRole("button", { name: "Allow" }).click();
    });

    let subject = "";
    await step("back at the client: demo-user's claims", async () => {
      await page.waitForURL(`${RS_URL}/`);
      await page.getByRole("heading", { name: "Signed in" }).waitFor();
      subject = await text(page, "#claim-sub");
      expect(subject.length > 0, "no sub shown");
      const username = await text(page, "#claim-preferred_username");
      expect(username === "demo-user", `preferred_username is ${username}`);
      const name = await text(page, "#claim-name");
      expect(name === "Demo User", `name is ${name}`);
      const email = await text(page, "#claim-email");
      expect(email === "demo-user@cryptoutil.demo.local", `email is ${email}`);
      expect(!page.url().includes("code="), "the code stayed in the address bar");
      await screenshot(page, "sample-client-signed-in");
    });

    await step("Call the protected resource (GET, read:resource)", async () => {
      await page.getByRole("button", { name: "Call the protected resource" }).click();
      await page.getByText(/GET \/api\/v1\/protected\/resource: HTTP 200/).waitFor();
      const body = await resultJson(page);
      expect(body.subject === subject, `the resource saw subject ${body.subject}`);
      expect(body.client_id === "demo-spa-client", `client_id ${body.client_id}`);
      await screenshot(page, "resource-read");
    });

    await step("Write to the protected resource (POST, write:resource), then read it back", async () => {
      const message = `written by the browser test ${Date.now()}`;
      await page.getByLabel(/Message to write/).fill(message);
      await page.getByRole("button", { name: "Write to the protected resource" }).click();
      await page.getByText(/POST \/api\/v1\/protected\/resource: HTTP 201/).waitFor();
      const created = await resultJson(page);
      expect(created.message === message, `the resource stored ${created.message}`);
      expect(created.author === subject, `author ${created.author}`);
      await page.getByRole("button", { name: "Call the protected resource" }).click();
      await page.getByText(/GET \/api\/v1\/protected\/resource: HTTP 200/).waitFor();
      const body = await resultJson(page);
      expect(body.messages?.[0]?.message === message, "the new message is not listed first");
      await screenshot(page, "resource-write");
    });

    await step("Sign out ends the session and returns to the client", async () => {
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(`${RS_URL}/`);
      await page.getByText("You have signed out.").waitFor();
      await page.getByRole("button", { name: "Sign in" }).waitFor();
      await screenshot(page, "sample-client-signed-out-again");
    });

    await step("signing in again asks for the password (the Identity session is gone)", async () => {
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL((url) => url.href.startsWith(`${ISSUER}/oidc/v1/login`));
      await page.getByLabel("Password").waitFor();
      await screenshot(page, "identity-login-again");
    });

    await step("device grant: a user code typed on Identity's device page, sign in, Allow; the device gets tokens", async () => {
      const started = await postForm(`${ISSUER}/oauth2/v1/device_authorization`, { client_id: "demo-cli", scope: "openid offline_access kms:read" });
      expect(started.status === 200, `device authorization answered ${started.status}: ${JSON.stringify(started.json)}`);
      const { user_code: userCode, device_code: deviceCode } = started.json;
      const poll = () => postForm(`${ISSUER}/oauth2/v1/token`, { grant_type: DEVICE_CODE, client_id: "demo-cli", device_code: deviceCode });
      const pending = await poll();
      expect(pending.json?.error === "authorization_pending", `first poll: ${JSON.stringify(pending.json)}`);
      await page.goto(`${ISSUER}/oidc/v1/device`);
      // Typed as a person might: lower case, without the dash.
      await page.getByLabel("Code", { exact: true }).fill(userCode.replace("-", "").toLowerCase());
      await screenshot(page, "identity-device-code");
      await page.getByRole("button", { name: "Continue" }).click();
      await page.waitForURL((url) => url.href.startsWith(`${ISSUER}/oidc/v1/login`));
      await page.getByLabel("Username").fill("demo-user");
      await page.getByLabel("Password").fill("demo-user-password");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL(`${ISSUER}/oidc/v1/device`);
      const body = await page.locator("body").innerText();
      expect(body.includes("demo-cli") && body.includes(userCode), "the device consent page names the client and the code");
      await screenshot(page, "identity-device-consent");
      await page.getByRole("button", { name: "Allow" }).click();
      await page.getByText("You may return to your device.").waitFor();
      await screenshot(page, "identity-device-done");
      const tokens = await poll();
      expect(tokens.status === 200 && tokens.json?.access_token, `the device's poll: ${tokens.status} ${JSON.stringify(tokens.json)}`);
      expect(tokens.json.refresh_token, "no refresh token for offline_access");
    });

    await passkeySteps(context, page, subject);
    await totpSteps(context, page);

    await step("no script errors or CSP violations", async () => {
      expect(problems.length === 0, problems.join("\n"));
    });
  } finally {
    await context.close();
  }
}

try {
  await run();
} catch (e) {
  if (!e?.reported) {
    failed += 1;
    console.log("FAIL  (harness)");
    console.log(`      ${e?.message ?? e}`);
  }
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
