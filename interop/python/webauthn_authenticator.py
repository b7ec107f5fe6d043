"""An independent software authenticator for cryptoutil's WebAuthn relying-party checks.

It builds registration and assertion responses with the PyPI `fido2` package (Yubico's
`fido2.webauthn` data structures, `fido2.cose` keys, `fido2.cbor`) and `cryptography` keys and
certificates, none of it sharing code with the Rust verifier
(`crates/identity/src/mfa/webauthn/`), and writes one JSON fixture per case. The Rust test
`mfa::webauthn::vectors::fido2_fixtures` verifies every one and compares what it extracts
(credential id, algorithm, AAGUID, flags, counters) with what this script recorded.

Cases: ES256, ES384, RS256, PS256 and EdDSA (Ed25519) credentials, each with `none`, `packed`
self attestation and `packed` full attestation (a self-made root CA and a leaf meeting WebAuthn
§8.2.1, with the AAGUID extension); plus x5c leaves that violate §8.2.1 and must be refused.
Keys are random, so every run writes different bytes.

Regenerate the committed fixtures (CPython 3.11; the pins are in requirements.txt):

    python3.11 -m venv /tmp/venv
    /tmp/venv/bin/pip install --require-hashes --no-deps --only-binary :all: \
        -r interop/python/requirements.txt
    /tmp/venv/bin/python interop/python/webauthn_authenticator.py \
        crates/identity/tests/fixtures/webauthn/fido2
    cargo test -p cryptoutil-identity --lib webauthn::vectors
"""

import datetime
import hashlib
import json
import os
import sys
from importlib.metadata import version

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from fido2 import cbor, cose
from fido2.utils import websafe_encode
from fido2.webauthn import (
    Aaguid,
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

RP_ID = "id.example"
ORIGIN = "https://id.example"
AAGUID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
FLAG = AuthenticatorData.FLAG


class Credential:
    """A credential key pair of one COSE algorithm."""

    def __init__(self, name):
        self.name = name
        if name == "es256":
            self.key = ec.generate_private_key(ec.SECP256R1())
            self.cose = cose.ES256.from_cryptography_key(self.key.public_key())
        elif name == "es384":
            self.key = ec.generate_private_key(ec.SECP384R1())
            self.cose = cose.ES384.from_cryptography_key(self.key.public_key())
        elif name in ("rs256", "ps256"):
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            cls = cose.RS256 if name == "rs256" else cose.PS256
            self.cose = cls.from_cryptography_key(self.key.public_key())
        elif name == "eddsa":
            self.key = ed25519.Ed25519PrivateKey.generate()
            self.cose = cose.EdDSA.from_cryptography_key(self.key.public_key())
        else:
            raise ValueError(name)
        self.algorithm = self.cose.ALGORITHM

    def sign(self, message):
        return sign(self.name, self.key, message)


def sign(name, key, message):
    if name == "es256":
        return key.sign(message, ec.ECDSA(hashes.SHA256()))
    if name == "es384":
        return key.sign(message, ec.ECDSA(hashes.SHA384()))
    if name == "rs256":
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    if name == "ps256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return key.sign(message, pss, hashes.SHA256())
    if name == "eddsa":
        return key.sign(message)
    raise ValueError(name)


def name_of(**parts):
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "CN": NameOID.COMMON_NAME,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in parts.items()])


def certificate(subject, issuer, public_key, signer, ca, aaguid=None, critical=False):
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if aaguid is not None:
        value = b"\x04\x10" + aaguid
        builder = builder.add_extension(x509.UnrecognizedExtension(AAGUID_OID, value), critical)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT_NAME = name_of(C="AA", O="cryptoutil interop", OU="Test Attestation CA", CN="fido2 test root")
ROOT = certificate(ROOT_NAME, ROOT_NAME, ROOT_KEY.public_key(), ROOT_KEY, ca=True)


def x5c_statement(signed, aaguid, leaf_alg="es256", **violation):
    """A packed full attestation: a leaf of the test root (by default meeting §8.2.1)."""
    subject = dict(C="AA", O="cryptoutil interop", OU="Authenticator Attestation", CN="leaf")
    subject.update(violation.get("subject", {}))
    subject = {k: v for k, v in subject.items() if v is not None}
    leaf_key = Credential(leaf_alg)
    leaf = certificate(
        name_of(**subject),
        ROOT_NAME,
        leaf_key.key.public_key(),
        ROOT_KEY,
        ca=violation.get("ca", False),
        aaguid=violation.get("leaf_aaguid", aaguid),
        critical=violation.get("critical", False),
    )
    return {"alg": leaf_key.algorithm, "sig": leaf_key.sign(signed), "x5c": [leaf, ROOT]}


def b64(data):
    return websafe_encode(bytes(data))


def case(name, alg, fmt, flags, counter, expect="ok", **violation):
    credential = Credential(alg)
    aaguid = Aaguid(os.urandom(16))
    credential_id = os.urandom(32)
    rp_id_hash = hashlib.sha256(RP_ID.encode()).digest()

    challenge = os.urandom(32)
    client_data = CollectedClientData.create(
        CollectedClientData.TYPE.CREATE, challenge, ORIGIN
    )
    attested = AttestedCredentialData.create(aaguid, credential_id, credential.cose)
    auth_data = AuthenticatorData.create(rp_id_hash, flags | FLAG.AT, counter, attested)
    signed = bytes(auth_data) + client_data.hash
    if fmt == "none":
        statement = {}
    elif fmt == "packed-self":
        statement = {"alg": credential.algorithm, "sig": credential.sign(signed)}
    else:
        statement = x5c_statement(signed, aaguid, **violation)
    packed = "none" if fmt == "none" else "packed"
    attestation = AttestationObject.create(packed, auth_data, statement)

    get_challenge = os.urandom(32)
    get_client_data = CollectedClientData.create(
        CollectedClientData.TYPE.GET, get_challenge, ORIGIN
    )
    get_flags = flags & (FLAG.UP | FLAG.UV | FLAG.BE | FLAG.BS)
    get_counter = counter + 1 if counter else 0
    get_auth_data = AuthenticatorData.create(rp_id_hash, get_flags, get_counter)
    signature = credential.sign(bytes(get_auth_data) + get_client_data.hash)

    return name, {
        "source": (
            f"interop/python/webauthn_authenticator.py with fido2 {version('fido2')}, "
            f"cryptography {version('cryptography')}"
        ),
        "name": name,
        "rp_id": RP_ID,
        "origin": ORIGIN,
        "expect": expect,
        "registration": {
            "challenge": b64(challenge),
            "client_data_json": b64(client_data),
            "attestation_object": b64(attestation),
        },
        "authentication": {
            "challenge": b64(get_challenge),
            "client_data_json": b64(get_client_data),
            "authenticator_data": b64(get_auth_data),
            "signature": b64(signature),
        },
        "expected": {
            "credential_id": b64(credential_id),
            "public_key": b64(cbor.encode(credential.cose)),
            "algorithm": credential.algorithm,
            "aaguid": b64(aaguid),
            "attestation_format": packed,
            "sign_count": counter,
            "assertion_sign_count": get_counter,
            "user_verified": bool(flags & FLAG.UV),
            "backup_eligible": bool(flags & FLAG.BE),
            "backed_up": bool(flags & FLAG.BS),
        },
    }


def cases():
    flag_sets = [
        FLAG.UP | FLAG.UV | FLAG.BE | FLAG.BS,  # a synced passkey
        FLAG.UP | FLAG.UV,  # a device-bound key with a PIN
        FLAG.UP,  # a security key touched, no PIN
    ]
    n = 0
    for alg in ("es256", "es384", "rs256", "ps256", "eddsa"):
        for fmt in ("none", "packed-self", "packed-x5c"):
            flags = flag_sets[n % len(flag_sets)]
            counter = 0 if flags & FLAG.BE else 7 + n
            n += 1
            yield case(f"{alg}-{fmt}", alg, fmt, flags, counter)
    yield case("es256-packed-x5c-rsa-leaf", "es256", "packed-x5c", FLAG.UP, 1, leaf_alg="rs256")
    invalid = "InvalidAttestation"
    yield case("x5c-leaf-is-ca", "es256", "packed-x5c", FLAG.UP, 1, invalid, ca=True)
    yield case(
        "x5c-leaf-wrong-ou", "es256", "packed-x5c", FLAG.UP, 1, invalid,
        subject={"OU": "Authenticator"},
    )
    yield case(
        "x5c-leaf-no-country", "es256", "packed-x5c", FLAG.UP, 1, invalid,
        subject={"C": None},
    )
    yield case(
        "x5c-leaf-other-aaguid", "es256", "packed-x5c", FLAG.UP, 1, invalid,
        leaf_aaguid=bytes(16),
    )
    yield case(
        "x5c-leaf-critical-aaguid", "es256", "packed-x5c", FLAG.UP, 1, invalid,
        critical=True,
    )


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: webauthn_authenticator.py <output directory>")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    count = 0
    for name, fixture in cases():
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(fixture, f, indent=1)
            f.write("\n")
        count += 1
    print(f"wrote {count} WebAuthn fixtures to {out}")


if __name__ == "__main__":
    main()
