// A minimal scripted "browser" for the login, consent and device pages: a cookie jar, a generic HTML
// form parser, and form submission as a browser would do it (hidden inputs posted back, only
// the clicked submit button's name/value). Deliberately tolerant of markup changes: it looks
// for forms by what they contain (a password field, a submit button named `decision`), not by
// ids or classes. Unit tests: browser.test.mjs (`node --test`).

// ---------------------------------------------------------------------------------------------
// HTML

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

/** Decodes the HTML character references that appear in attribute values. */
export function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ref) => {
    if (ref[0] === "#") {
      const code = ref[1] === "x" || ref[1] === "X" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return Number.isFinite(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    const named = ENTITIES[ref.toLowerCase()];
    return named === undefined ? whole : named;
  });
}

/** Attributes of one start tag's attribute text, names lower-cased, values decoded. */
export function parseAttributes(text) {
  const attrs = {};
  const re = /([^\s"'<>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  let m;
  while ((m = re.exec(text)) !== null) {
    const name = m[1].toLowerCase();
    if (name in attrs) continue; // the first occurrence wins, as in browsers
    const raw = m[2] ?? m[3] ?? m[4];
    attrs[name] = raw === undefined ? "" : decodeEntities(raw);
  }
  return attrs;
}

// The attribute text of a start tag: quoted values may contain ">".
const ATTRS = `((?:[^>"']|"[^"]*"|'[^']*')*)`;

/** Removes comments, scripts and styles, whose content must not be read as markup. */
function stripInert(html) {
  return html
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/<script\b[\s\S]*?<\/script\s*>/gi, "")
    .replace(/<style\b[\s\S]*?<\/style\s*>/gi, "");
}

/**
 * Every <form> of a page: { action, method, attrs, controls }. `action` is the raw attribute
 * (may be "" or missing: resolve against the page URL), `method` is upper-cased (GET default).
 * `controls` are { tag, type, name, value, checked, disabled } for input, button, textarea and
 * select (the selected option, or the first one).
 */
export function parseForms(html) {
  const forms = [];
  const source = stripInert(html);
  const formRe = new RegExp(`<form\\b${ATTRS}>([\\s\\S]*?)(?:<\\/form\\s*>|$)`, "gi");
  let f;
  while ((f = formRe.exec(source)) !== null) {
    const attrs = parseAttributes(f[1]);
    forms.push({
      action: attrs.action ?? "",
      method: (attrs.method || "get").toUpperCase(),
      attrs,
      controls: parseControls(f[2]),
    });
  }
  return forms;
}

// <input> is a void element; the others hold content up to their end tag.
const CONTROL_RE = new RegExp(`<(?:(input)\\b${ATTRS}>|(button|textarea|select)\\b${ATTRS}>([\\s\\S]*?)<\\/\\3\\s*>)`, "gi");
const OPTION_RE = new RegExp(`<option\\b${ATTRS}>([^<]*)`, "gi");

function parseControls(body) {
  const controls = [];
  for (const m of body.matchAll(CONTROL_RE)) {
    const tag = (m[1] ?? m[3]).toLowerCase();
    const attrs = parseAttributes(m[2] ?? m[4]);
    const content = m[5] ?? "";
    const type = (attrs.type || (tag === "button" ? "submit" : tag === "input" ? "text" : tag)).toLowerCase();
    let value = attrs.value ?? "";
    if (tag === "textarea") {
      value = decodeEntities(content);
    } else if (tag === "select") {
      const options = [...content.matchAll(OPTION_RE)].map((o) => {
        const oa = parseAttributes(o[1]);
        return { value: oa.value ?? decodeEntities(o[2]).trim(), selected: "selected" in oa };
      });
      value = (options.find((o) => o.selected) ?? options[0])?.value ?? "";
    }
    controls.push({
      tag,
      type,
      name: attrs.name ?? "",
      value,
      checked: "checked" in attrs,
      disabled: "disabled" in attrs,
    });
  }
  return controls;
}

const SUBMIT_TYPES = new Set(["submit", "image"]);
const NEVER_SENT = new Set(["reset", "button", "file"]);

/** Whether the control is a submit button (input type=submit/image or button type=submit). */
export function isSubmit(control) {
  return SUBMIT_TYPES.has(control.type);
}

/**
 * The form data a browser would send when `submitter` (a control of the form, or null) is
 * clicked, with `overrides` applied to (or added as) named fields: an array of [name, value].
 */
export function formData(form, submitter = null, overrides = {}) {
  const entries = [];
  const seen = new Set();
  for (const c of form.controls) {
    if (!c.name || c.disabled || NEVER_SENT.has(c.type)) continue;
    if (isSubmit(c) && c !== submitter) continue;
    if ((c.type === "checkbox" || c.type === "radio") && !c.checked) continue;
    if (Object.hasOwn(overrides, c.name)) {
      if (!seen.has(c.name)) entries.push([c.name, String(overrides[c.name])]);
    } else {
      entries.push([c.name, c.type === "checkbox" && c.value === "" ? "on" : c.value]);
    }
    seen.add(c.name);
  }
  for (const [name, value] of Object.entries(overrides)) {
    if (!seen.has(name)) entries.push([name, String(value)]);
  }
  return entries;
}

/** The first form with a password field (a login form), or undefined. */
export function findLoginForm(forms) {
  return forms.find((f) => f.controls.some((c) => c.type === "password"));
}

/**
 * The consent form and button for `decision` ("allow" or "deny"): the form holding a submit
 * control named `decision` with that value. Returns { form, button } or undefined.
 */
export function findDecision(forms, decision) {
  for (const form of forms) {
    const button = form.controls.find((c) => isSubmit(c) && c.name === "decision" && c.value === decision);
    if (button) return { form, button };
  }
  return undefined;
}

/**
 * The device flow's user-code entry form (RFC 8628 §3.3): the form with a text field named
 * `user_code` (prefilled from `verification_uri_complete`), and its submit button. Returns
 * { form, button } or undefined.
 */
export function findUserCodeForm(forms) {
  for (const form of forms) {
    const field = form.controls.find((c) => c.name === "user_code" && !isSubmit(c) && c.type !== "hidden");
    if (field) return { form, field, button: form.controls.find(isSubmit) ?? null };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Cookies (one origin; the jar keys cookies by name and path)

export class CookieJar {
  constructor() {
    this.cookies = new Map();
  }

  /** Stores the Set-Cookie headers of `response` to a request for `url`. */
  store(url, setCookies, now = Date.now()) {
    const requestPath = new URL(url).pathname;
    for (const line of setCookies) {
      const [pair, ...attrParts] = line.split(";");
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = defaultPath(requestPath);
      let expires;
      for (const part of attrParts) {
        const i = part.indexOf("=");
        const key = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
        const v = i < 0 ? "" : part.slice(i + 1).trim();
        if (key === "path" && v.startsWith("/")) path = v;
        else if (key === "max-age" && /^-?\d+$/.test(v)) expires = now + Number(v) * 1000;
        else if (key === "expires" && expires === undefined) {
          const t = Date.parse(v);
          if (!Number.isNaN(t)) expires = t;
        }
      }
      const key = `${name}\u0000${path}`;
      if (expires !== undefined && expires <= now) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path, expires });
    }
  }

  /** The Cookie header value for a request to `url`, or undefined. */
  header(url, now = Date.now()) {
    const path = new URL(url).pathname;
    const matching = [...this.cookies.values()]
      .filter((c) => (c.expires === undefined || c.expires > now) && pathMatches(path, c.path))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join("; ") : undefined;
  }
}

function defaultPath(requestPath) {
  const i = requestPath.lastIndexOf("/");
  return i <= 0 ? "/" : requestPath.slice(0, i);
}

function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith("/") || requestPath[cookiePath.length] === "/";
}

// ---------------------------------------------------------------------------------------------
// Driving an authorization request through login and consent

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Follows an authorization request as a browser would: redirects on the server's origin are
 * followed (cookies kept in `jar`), the login form is filled with `username`/`password`, and
 * the consent form is answered with `decision`. A prefilled user-code entry form (the device
 * flow's `verification_uri_complete`) is submitted as it is; the device flow ends on a page
 * (its last page has no form), not on a redirect. Stops at the first redirect that leaves the
 * server's origin (normally to the client's redirect_uri: nothing is fetched there) or at a page
 * it does not know how to answer (an error page).
 *
 * Returns { kind: "redirect", url: URL, trail } or
 *         { kind: "page", status, contentType, body, url, trail }.
 * `trail` lists "METHOD path -> status" for diagnostics.
 */
export async function drive(startUrl, { jar = new CookieJar(), username, password, decision = "allow", maxSteps = 12, fetchImpl = fetch } = {}) {
  const origin = new URL(startUrl).origin;
  let url = new URL(startUrl);
  let method = "GET";
  let body;
  const trail = [];
  const answered = new Set();
  for (let step = 0; step < maxSteps; step++) {
    const headers = { accept: "text/html,application/xhtml+xml" };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
    const res = await fetchImpl(url.href, { method, headers, body, redirect: "manual", signal: AbortSignal.timeout(15000) });
    jar.store(url, res.headers.getSetCookie ? res.headers.getSetCookie() : []);
    trail.push(`${method} ${url.pathname} -> ${res.status}`);
    if (REDIRECTS.has(res.status)) {
      await res.arrayBuffer().catch(() => undefined);
      const location = res.headers.get("location");
      if (!location) throw new Error(`${res.status} without Location at ${url.pathname}`);
      const next = new URL(location, url);
      if (next.origin !== origin) return { kind: "redirect", url: next, trail };
      url = next;
      method = "GET";
      body = undefined;
      continue;
    }
    const contentType = res.headers.get("content-type") ?? "";
    const text = await res.text();
    const page = { kind: "page", status: res.status, contentType, body: text, url, trail };
    if (res.status !== 200 || !contentType.includes("html")) return page;
    const forms = parseForms(text);
    let form;
    let fields;
    const login = findLoginForm(forms);
    const consent = findDecision(forms, decision);
    const entry = findUserCodeForm(forms);
    if (entry && !answered.has("user_code") && entry.field.value) {
      // The device flow's entry page, prefilled from verification_uri_complete: submit it.
      answered.add("user_code");
      form = entry.form;
      fields = formData(entry.form, entry.button);
    } else if (login && !answered.has("login")) {
      answered.add("login");
      form = login;
      const submits = login.controls.filter(isSubmit);
      const submitter = submits.find((c) => !/cancel|deny|back/i.test(`${c.name} ${c.value}`)) ?? submits[0] ?? null;
      const userField = login.controls.find((c) => c.name === "username") ? "username" : login.controls.find((c) => ["text", "email"].includes(c.type))?.name ?? "username";
      const passwordField = login.controls.find((c) => c.type === "password")?.name ?? "password";
      fields = formData(login, submitter, { [userField]: username, [passwordField]: password });
    } else if (consent && !answered.has("consent")) {
      answered.add("consent");
      form = consent.form;
      fields = formData(consent.form, consent.button);
    } else {
      return page; // nothing (more) to answer: an error page, or a page shown again
    }
    const action = new URL(form.action || url.href, url);
    if (action.origin !== origin) throw new Error(`form at ${url.pathname} posts off-site to ${action.origin}`);
    if (form.method === "POST") {
      url = action;
      method = "POST";
      body = new URLSearchParams(fields).toString();
    } else {
      action.search = new URLSearchParams(fields).toString();
      url = action;
      method = "GET";
      body = undefined;
    }
  }
  throw new Error(`no redirect back to the client after ${maxSteps} steps: ${trail.join(", ")}`);
}
