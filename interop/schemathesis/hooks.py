"""Schemathesis hooks of `cargo xtask api-fuzz`: authentication on both KMS API surfaces.

Loaded through SCHEMATHESIS_HOOKS. The xtask sets these environment variables:

- KMS_URL         https://127.0.0.1:PORT of the KMS public listener
- KMS_CA_CERT     the demo CA certificate (PEM) that every request verifies the server against
- KMS_USERNAME    the user the run authenticates as (`api-fuzz` of realms.yml beside this file) ...
- KMS_PASSWORD    ... and its password

Service surface (/service/api/v1): HTTP Basic, as a service would send it.

Browser surface (/browser/api/v1): what a page such as Swagger UI does. It fetches
GET /browser/api/v1/csrf-token once with the browser's fetch metadata, keeps the __Host-csrf cookie
the server set (the browser's cookie jar) and sends the token from the body back as X-CSRF-Token,
with HTTP Basic credentials, on every request. The token is reused for the whole run, as a page
reuses it; a refused token would show up as 403 csrf_token_invalid failures.

Only the TLS verification the run asks for is used: requests trusts exactly KMS_CA_CERT.

Real identifiers: random UUIDs only ever find nothing (404), so path parameters are drawn from
the generated ones and, as often, from what exists: the demo tenant's elastic keys with their
material keys, plus keys this file creates once with imports allowed (one per key family, so the
JWK import parser is reached), and the demo realm users. Fuzzing may disable, delete or rotate
them; every answer must still be one the document declares.

Compact JWS/JWE bodies (application/jose) are sent and read as the ASCII text they are, raw
octets (application/octet-stream) as bytes, so schemathesis can send the crypto operations'
bodies and check their responses against the document.
"""

import base64
import os
import uuid

import requests
import schemathesis
from hypothesis import strategies as st

CSRF_PATH = "/browser/api/v1/csrf-token"
CSRF_COOKIE = "__Host-csrf"
CSRF_HEADER = "X-CSRF-Token"


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set (run through `cargo xtask api-fuzz`)")
    return value


def _basic():
    pair = f"{_env('KMS_USERNAME')}:{_env('KMS_PASSWORD')}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


# Algorithms of the keys created for imports: symmetric, RSA, EC and OKP JWKs.
IMPORT_ALGORITHMS = ["A256GCM/A256KW", "RS256", "ES256", "EdDSA", "A128GCM/ECDH-ES"]


def _service(method, path, **kwargs):
    response = requests.request(
        method,
        _env("KMS_URL") + "/service/api/v1" + path,
        headers={"Authorization": _basic()},
        verify=_env("KMS_CA_CERT"),
        timeout=60,
        **kwargs,
    )
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()


_existing = None


def _existing_ids():
    """(elastic key id, material key id) pairs and usernames that exist, fetched once."""
    global _existing
    if _existing is None:
        for algorithm in IMPORT_ALGORITHMS:
            _service(
                "POST",
                "/elastickey",
                json={
                    "name": f"api-fuzz-import-{uuid.uuid4()}",
                    "description": "imports allowed (cargo xtask api-fuzz)",
                    "algorithm": algorithm,
                    "import_allowed": True,
                },
            )
        pairs = []
        for key in _service("GET", "/elastickeys?size=1000")["items"]:
            key_id = key["elastic_key_id"]
            for material in _service("GET", f"/elastickey/{key_id}/materialkeys?size=1000")["items"]:
                pairs.append((key_id, material["material_key_id"]))
        users = [u["username"] for u in _service("GET", "/admin/realm-users?size=1000")["items"]]
        _existing = (sorted(pairs), sorted(users))
    return _existing


@schemathesis.hook
def before_generate_path_parameters(context, strategy):
    """Existing identifiers as often as generated ones."""
    path = context.operation.path
    pairs, users = _existing_ids()
    if "{id}" in path and pairs:
        with_mid = "{mid}" in path
        real = st.sampled_from(pairs).map(
            lambda p: {"id": p[0], "mid": p[1]} if with_mid else {"id": p[0]}
        )
        return st.one_of(real, strategy)
    if "{username}" in path and users:
        return st.one_of(st.sampled_from(users).map(lambda u: {"username": u}), strategy)
    return strategy


@schemathesis.auth().apply_to(path_regex=r"^/service/api/v1/")
class ServiceAuth:
    """HTTP Basic with a demo user."""

    def get(self, case, context):
        return _basic()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = data


@schemathesis.auth().apply_to(path_regex=r"^/browser/api/v1/").skip_for(path=CSRF_PATH)
class BrowserAuth:
    """HTTP Basic plus the double-submit CSRF pair, fetched once like a page does."""

    def get(self, case, context):
        with requests.Session() as session:
            response = session.get(
                _env("KMS_URL") + CSRF_PATH,
                verify=_env("KMS_CA_CERT"),
                headers={
                    "Accept": "application/json",
                    "Sec-Fetch-Mode": "cors",
                    "Sec-Fetch-Site": "same-origin",
                    "Sec-Fetch-Dest": "empty",
                },
                timeout=30,
            )
            response.raise_for_status()
            token = response.json()["csrf_token"]
            cookie = session.cookies.get(CSRF_COOKIE)
        if cookie != token:
            raise RuntimeError(
                f"GET {CSRF_PATH} set no {CSRF_COOKIE} cookie matching its body "
                f"(Set-Cookie: {response.headers.get('set-cookie')!r})"
            )
        return {"authorization": _basic(), "token": token}

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = data["authorization"]
        case.headers[CSRF_HEADER] = data["token"]
        case.headers["Sec-Fetch-Mode"] = "cors"
        case.headers["Sec-Fetch-Site"] = "same-origin"
        case.cookies = case.cookies or {}
        case.cookies[CSRF_COOKIE] = data["token"]


@schemathesis.serializer("application/jose")
def jose_serializer(ctx, value):
    """A compact serialization is text; bytes (negative cases) go as they are."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


@schemathesis.deserializer("application/jose")
def jose_deserializer(ctx, response):
    """The compact serialization as a string, for the document's pattern to check."""
    return response.content.decode("ascii")


@schemathesis.deserializer("application/octet-stream")
def octets_deserializer(ctx, response):
    """Raw octets as a string (one character per octet): the document says `string`, binary."""
    return response.content.decode("latin-1")
