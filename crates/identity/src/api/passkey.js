// cryptoutil Identity passkeys (WebAuthn): buttons data-passkey="sign-in"|"register" with
// data-csrf; answers are posted as forms. No dependencies.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("[data-passkey]");
  if (!buttons.length) return;
  if (!window.PublicKeyCredential || !navigator.credentials) {
    buttons.forEach(function (b) { b.hidden = true; });
    return;
  }
  function enc(buf) {
    var s = "", a = new Uint8Array(buf);
    for (var i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function dec(text) {
    var s = atob(text.replace(/-/g, "+").replace(/_/g, "/")), a = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
    return a;
  }
  function ids(list) {
    return (list || []).map(function (c) { return { type: c.type, id: dec(c.id), transports: c.transports }; });
  }
  function alertFor(button) {
    var box = document.getElementById("passkey-error");
    if (!box) {
      box = document.createElement("div");
      box.id = "passkey-error";
      box.className = "alert";
      box.setAttribute("role", "alert");
      button.parentNode.insertBefore(box, button);
    }
    return box;
  }
  function fail(button, error) {
    var text = error && error.name === "NotAllowedError"
      ? "The passkey request was cancelled or timed out. You can try again."
      : error && error.name === "InvalidStateError"
        ? "This authenticator already holds a passkey for your account."
        : (error && error.message) || "The passkey request failed.";
    alertFor(button).textContent = text;
    button.focus();
  }
  function post(action, fields) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = action;
    form.hidden = true;
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }
  function options(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.status === 401 && body.location) window.location.assign(body.location);
          if (!r.ok) throw new Error(body.error_description || "The passkey request failed. Please try again.");
          return body;
        });
      });
  }
  var LOGIN = "/oidc/v1/login/passkey";
  var pending = null;
  function signIn(button, conditional) {
    if (pending) pending.abort();
    var controller = new AbortController();
    pending = controller;
    return options(LOGIN).then(function (o) {
      o.challenge = dec(o.challenge);
      o.allowCredentials = ids(o.allowCredentials);
      var request = { publicKey: o, signal: controller.signal };
      if (conditional) request.mediation = "conditional";
      return navigator.credentials.get(request);
    }).then(function (cred) {
      if (!cred) return;
      var r = cred.response;
      post(LOGIN, {
        csrf_token: button.dataset.csrf,
        id: enc(cred.rawId),
        client_data_json: enc(r.clientDataJSON),
        authenticator_data: enc(r.authenticatorData),
        signature: enc(r.signature),
        user_handle: r.userHandle ? enc(r.userHandle) : ""
      });
    }).catch(function (e) {
      if (controller.signal.aborted || (conditional && e && e.name === "AbortError")) return;
      fail(button, e);
    });
  }
  function register(button) {
    var nameInput = document.getElementById("passkey-name");
    options("/account/passkeys/options").then(function (o) {
      o.challenge = dec(o.challenge);
      o.user.id = dec(o.user.id);
      o.excludeCredentials = ids(o.excludeCredentials);
      return navigator.credentials.create({ publicKey: o });
    }).then(function (cred) {
      var r = cred.response, ext = cred.getClientExtensionResults ? cred.getClientExtensionResults() : {};
      var rk = ext.credProps && typeof ext.credProps.rk === "boolean" ? String(ext.credProps.rk) : "";
      post("/account/passkeys", {
        csrf_token: button.dataset.csrf,
        name: nameInput ? nameInput.value : "",
        client_data_json: enc(r.clientDataJSON),
        attestation_object: enc(r.attestationObject),
        transports: JSON.stringify(r.getTransports ? r.getTransports() : []),
        resident_key: rk
      });
    }).catch(function (e) { fail(button, e); });
  }
  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      if (button.dataset.passkey === "register") register(button);
      else signIn(button, false);
    });
  });
  var signInButton = document.querySelector('[data-passkey="sign-in"]');
  var field = document.querySelector('input[autocomplete~="webauthn"]');
  if (signInButton && field && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (yes) {
      if (yes) signIn(signInButton, true);
    });
  }
})();
