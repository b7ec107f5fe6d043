// Unit tests of the scripted browser (no server needed): `node --test browser.test.mjs`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { CookieJar, decodeEntities, drive, findDecision, findLoginForm, findUserCodeForm, formData, parseAttributes, parseForms } from "./browser.mjs";

const LOGIN = `<!doctype html><html><head><title>Sign in</title>
<script>const x = "<form action='/evil'><input name=a></form>";</script></head><body>
<!-- <form action="/commented"><input type="hidden" name="nope" value="1"></form> -->
<form method="post" action="/oidc/v1/login?request_id=abc&amp;x=1" class="login">
  <input type="hidden" name="csrf_token" value="tok&#x2F;+=&quot;q&quot;">
  <input type=hidden name=request_id value=abc>
  <label>User <input type="text" name="username" autocomplete="username"></label>
  <label>Password <input type="password" name="password"></label>
  <input type="checkbox" name="remember" value="yes">
  <input type="checkbox" name="terms" checked>
  <input type="hidden" name="disabled_one" value="x" disabled>
  <select name="locale"><option value="en">English</option><option value="de" selected>Deutsch</option></select>
  <textarea name="note">a &lt;b&gt;</textarea>
  <button type="submit" name="action" value="login">Sign in</button>
  <button type="reset">Clear</button>
</form></body></html>`;

const CONSENT = `<html><body><h1>Allow demo-confidential-client?</h1>
<form method='POST' action='/oidc/v1/consent'>
  <input type='hidden' name='csrf_token' value='c1'>
  <input type='hidden' name='consent_id' value='019a-1'>
  <button type='submit' name='decision' value='allow'>Allow</button>
  <button name='decision' value='deny' class='secondary'>Deny</button>
</form></body></html>`;

test("entities in attribute values are decoded", () => {
  assert.equal(decodeEntities("a&amp;b&lt;&gt;&quot;&#39;&#x2F;&unknown;"), "a&b<>\"'/&unknown;");
  assert.deepEqual(parseAttributes(` a="1 > 2" b='x' c=y d  E="Z"`), { a: "1 > 2", b: "x", c: "y", d: "", e: "Z" });
});

test("the login form is found with its hidden fields; scripts and comments are not markup", () => {
  const forms = parseForms(LOGIN);
  assert.equal(forms.length, 1);
  const login = findLoginForm(forms);
  assert.ok(login);
  assert.equal(login.method, "POST");
  assert.equal(login.action, "/oidc/v1/login?request_id=abc&x=1");
  const submit = login.controls.find((c) => c.type === "submit");
  const data = formData(login, submit, { username: "demo-user", password: "pw" });
  assert.deepEqual(data, [
    ["csrf_token", 'tok/+="q"'],
    ["request_id", "abc"],
    ["username", "demo-user"],
    ["password", "pw"],
    ["terms", "on"],
    ["locale", "de"],
    ["note", "a <b>"],
    ["action", "login"],
  ]);
});

test("consent: only the clicked decision button is sent", () => {
  const forms = parseForms(CONSENT);
  assert.equal(findLoginForm(forms), undefined);
  for (const decision of ["allow", "deny"]) {
    const found = findDecision(forms, decision);
    assert.ok(found, decision);
    assert.deepEqual(formData(found.form, found.button), [
      ["csrf_token", "c1"],
      ["consent_id", "019a-1"],
      ["decision", decision],
    ]);
  }
  assert.equal(findDecision(forms, "maybe"), undefined);
});

test("consent split over two forms, one per decision", () => {
  const html = `<form method=post action=/c><input type=hidden name=t value=1><input type=submit name=decision value=allow></form>
    <form method=post action=/c?deny><input type=hidden name=t value=2><input type=submit name=decision value=deny></form>`;
  const deny = findDecision(parseForms(html), "deny");
  assert.equal(deny.form.action, "/c?deny");
  assert.deepEqual(formData(deny.form, deny.button), [["t", "2"], ["decision", "deny"]]);
});

test("overrides of missing fields are appended; duplicate names are kept once when overridden", () => {
  const [form] = parseForms(`<form><input name=a value=1><input name=a value=2><input name=b value=3></form>`);
  assert.equal(form.method, "GET");
  assert.deepEqual(formData(form, null, { a: "x", c: "y" }), [["a", "x"], ["b", "3"], ["c", "y"]]);
  assert.deepEqual(formData(form), [["a", "1"], ["a", "2"], ["b", "3"]]);
});

test("cookie jar: paths, replacement, expiry", () => {
  const jar = new CookieJar();
  const now = 1_000_000;
  jar.store("https://h/oidc/v1/login", ["sid=1; Path=/; Secure; HttpOnly; SameSite=Lax", "csrf=a; Path=/oidc", "loc=x"], now);
  assert.equal(jar.header("https://h/oauth2/v1/authorize", now), "sid=1");
  // Longer paths first (RFC 6265 §5.4); loc got the default path /oidc/v1.
  assert.equal(jar.header("https://h/oidc/v1/consent", now), "loc=x; csrf=a; sid=1");
  assert.equal(jar.header("https://h/oidcx", now), "sid=1");
  jar.store("https://h/", ["sid=2; Path=/"], now);
  assert.match(jar.header("https://h/", now), /sid=2/);
  jar.store("https://h/", ["sid=; Path=/; Max-Age=0"], now);
  assert.equal(jar.header("https://h/", now), undefined);
  jar.store("https://h/", ["t=1; Path=/; Max-Age=10"], now);
  assert.equal(jar.header("https://h/", now + 5_000), "t=1");
  assert.equal(jar.header("https://h/", now + 11_000), undefined);
  jar.store("https://h/", ["old=1; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"], now);
  assert.equal(jar.header("https://h/", now), "t=1", "an already expired cookie is not stored");
});

/** A fake server: routes by "METHOD path" to { status, headers, body }. */
function fakeFetch(routes, seen) {
  return async (url, init) => {
    const u = new URL(url);
    seen.push({ method: init.method, path: u.pathname + u.search, cookie: init.headers.cookie, body: init.body });
    const route = routes[`${init.method} ${u.pathname}`];
    if (!route) return new Response("not found", { status: 404, headers: { "content-type": "text/html" } });
    const r = typeof route === "function" ? route(u, init) : route;
    const headers = new Headers(r.headers ?? {});
    for (const c of r.cookies ?? []) headers.append("set-cookie", c);
    return new Response(r.body ?? null, { status: r.status, headers });
  };
}

test("drive: authorize -> login -> consent -> redirect back to the client", async () => {
  const seen = [];
  const routes = {
    "GET /oauth2/v1/authorize": { status: 303, headers: { location: "/oidc/v1/login?request_id=abc" } },
    "GET /oidc/v1/login": { status: 200, headers: { "content-type": "text/html; charset=utf-8" }, body: LOGIN, cookies: ["pre=1; Path=/; Secure"] },
    "POST /oidc/v1/login": { status: 303, headers: { location: "https://as.test/oidc/v1/consent?request_id=abc" }, cookies: ["sid=s1; Path=/; Secure; HttpOnly"] },
    "GET /oidc/v1/consent": { status: 200, headers: { "content-type": "text/html" }, body: CONSENT },
    "POST /oidc/v1/consent": (u, init) => ({
      status: 303,
      headers: { location: `https://localhost:8084/confidential/callback?${new URLSearchParams(init.body).get("decision") === "allow" ? "code=C" : "error=access_denied"}&state=S&iss=https%3A%2F%2Fas.test` },
    }),
  };
  for (const decision of ["allow", "deny"]) {
    seen.length = 0;
    const out = await drive("https://as.test/oauth2/v1/authorize?client_id=x", { username: "demo-user", password: "pw", decision, fetchImpl: fakeFetch(routes, seen) });
    assert.equal(out.kind, "redirect");
    assert.equal(out.url.origin + out.url.pathname, "https://localhost:8084/confidential/callback");
    assert.equal(out.url.searchParams.get(decision === "allow" ? "code" : "error"), decision === "allow" ? "C" : "access_denied");
    assert.deepEqual(seen.map((s) => `${s.method} ${s.path}`), [
      "GET /oauth2/v1/authorize?client_id=x",
      "GET /oidc/v1/login?request_id=abc",
      "POST /oidc/v1/login?request_id=abc&x=1",
      "GET /oidc/v1/consent?request_id=abc",
      "POST /oidc/v1/consent",
    ]);
    const login = new URLSearchParams(seen[2].body);
    assert.equal(login.get("username"), "demo-user");
    assert.equal(login.get("csrf_token"), 'tok/+="q"');
    assert.equal(seen[2].cookie, "pre=1");
    assert.match(seen[4].cookie, /sid=s1/);
    assert.equal(new URLSearchParams(seen[4].body).get("decision"), decision);
  }
});

test("drive: an error page is returned, not followed", async () => {
  const seen = [];
  const routes = { "GET /oauth2/v1/authorize": { status: 400, headers: { "content-type": "text/html" }, body: "<h1>invalid redirect_uri</h1>" } };
  const out = await drive("https://as.test/oauth2/v1/authorize", { username: "u", password: "p", fetchImpl: fakeFetch(routes, seen) });
  assert.equal(out.kind, "page");
  assert.equal(out.status, 400);
  assert.match(out.body, /invalid redirect_uri/);
});

test("drive: a login page shown again (wrong password) is returned, not retried forever", async () => {
  const seen = [];
  const routes = {
    "GET /oidc/v1/login": { status: 200, headers: { "content-type": "text/html" }, body: LOGIN },
    "POST /oidc/v1/login": { status: 200, headers: { "content-type": "text/html" }, body: LOGIN },
  };
  const out = await drive("https://as.test/oidc/v1/login", { username: "u", password: "bad", fetchImpl: fakeFetch(routes, seen) });
  assert.equal(out.kind, "page");
  assert.equal(seen.length, 2);
});

const DEVICE_ENTRY = `<html><body><h1>Connect a device</h1>
<form method="post" action="/oidc/v1/device" novalidate>
  <input type="hidden" name="csrf_token" value="d1">
  <label for="user_code">Code</label>
  <input type="text" id="user_code" name="user_code" value="BCDF-GHJK" autocomplete="off">
  <button type="submit" class="primary">Continue</button>
</form></body></html>`;

const DEVICE_CONSENT = CONSENT.replace("/oidc/v1/consent", "/oidc/v1/device");

test("drive: the device flow's prefilled entry -> login -> consent -> last page", async () => {
  const seen = [];
  const routes = {
    "GET /oidc/v1/device": (u) =>
      u.search
        ? { status: 200, headers: { "content-type": "text/html" }, body: DEVICE_ENTRY, cookies: ["sid=s0; Path=/"] }
        : { status: 200, headers: { "content-type": "text/html" }, body: DEVICE_CONSENT },
    "POST /oidc/v1/device": (u, init) =>
      new URLSearchParams(init.body).get("decision")
        ? { status: 200, headers: { "content-type": "text/html" }, body: "<p>You may return to your device.</p>" }
        : { status: 303, headers: { location: "/oidc/v1/login" } },
    "GET /oidc/v1/login": { status: 200, headers: { "content-type": "text/html" }, body: LOGIN },
    "POST /oidc/v1/login": { status: 303, headers: { location: "/oidc/v1/device" }, cookies: ["sid=s1; Path=/"] },
  };
  const out = await drive("https://as.test/oidc/v1/device?user_code=BCDF-GHJK", { username: "demo-user", password: "pw", fetchImpl: fakeFetch(routes, seen) });
  assert.equal(out.kind, "page");
  assert.equal(out.status, 200);
  assert.match(out.body, /You may return to your device/);
  assert.deepEqual(seen.map((s) => `${s.method} ${s.path}`), [
    "GET /oidc/v1/device?user_code=BCDF-GHJK",
    "POST /oidc/v1/device",
    "GET /oidc/v1/login",
    "POST /oidc/v1/login?request_id=abc&x=1",
    "GET /oidc/v1/device",
    "POST /oidc/v1/device",
  ]);
  const entry = new URLSearchParams(seen[1].body);
  assert.equal(entry.get("user_code"), "BCDF-GHJK");
  assert.equal(entry.get("csrf_token"), "d1");
  assert.equal(seen[1].cookie, "sid=s0");
  assert.equal(new URLSearchParams(seen[5].body).get("decision"), "allow");
});

test("drive: an empty entry form is not submitted", async () => {
  const seen = [];
  const routes = {
    "GET /oidc/v1/device": { status: 200, headers: { "content-type": "text/html" }, body: DEVICE_ENTRY.replace(' value="BCDF-GHJK"', "") },
  };
  const out = await drive("https://as.test/oidc/v1/device", { username: "u", password: "p", fetchImpl: fakeFetch(routes, seen) });
  assert.equal(out.kind, "page");
  assert.equal(seen.length, 1);
});

test("the user-code form is found by its field, not by markup", () => {
  const found = findUserCodeForm(parseForms(DEVICE_ENTRY));
  assert.equal(found.field.value, "BCDF-GHJK");
  assert.equal(found.form.action, "/oidc/v1/device");
  assert.equal(findUserCodeForm(parseForms(CONSENT)), undefined);
});
