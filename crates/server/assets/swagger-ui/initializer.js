// cryptoutil: starts Swagger UI on ./doc.json. A file of its own (no inline script) so the page
// runs under a Content-Security-Policy that allows scripts from 'self' only.
//
// "Try it out" on the browser surface needs the double-submit CSRF token: before the first
// unsafe request (POST, PUT, PATCH, DELETE) to a /browser/<api>/<version>/ path, fetch
// <that prefix>/csrf-token once (same-origin, so the __Host-csrf cookie is set) and send the
// token as X-CSRF-Token. A 403 forgets the cached token so the next try fetches a fresh one.
(function () {
  "use strict";

  var UNSAFE = { POST: true, PUT: true, PATCH: true, DELETE: true };
  var tokens = {};

  function browserPrefix(url) {
    var parsed;
    try {
      parsed = new URL(url, window.location.href);
    } catch (e) {
      return null;
    }
    if (parsed.origin !== window.location.origin) {
      return null;
    }
    var match = /^\/browser\/[^/]+\/[^/]+(?=\/)/.exec(parsed.pathname);
    return match ? match[0] : null;
  }

  function csrfToken(prefix) {
    if (!tokens[prefix]) {
      tokens[prefix] = fetch(prefix + "/csrf-token", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("GET " + prefix + "/csrf-token: HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (body) {
          return body.csrf_token;
        })
        .catch(function (error) {
          delete tokens[prefix];
          throw error;
        });
    }
    return tokens[prefix];
  }

  function requestInterceptor(request) {
    var method = (request.method || "GET").toUpperCase();
    var prefix = browserPrefix(request.url);
    if (!UNSAFE[method] || prefix === null) {
      return request;
    }
    request.credentials = "same-origin";
    return csrfToken(prefix).then(function (token) {
      request.headers = request.headers || {};
      request.headers["X-CSRF-Token"] = token;
      return request;
    });
  }

  function responseInterceptor(response) {
    if (response.status === 403) {
      tokens = {};
    }
    return response;
  }

  window.addEventListener("load", function () {
    window.ui = SwaggerUIBundle({
      url: "./doc.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      requestInterceptor: requestInterceptor,
      responseInterceptor: responseInterceptor,
    });
  });
})();
