"""Post-quantum JOSE interop of `cargo xtask interop`: the Python side.

An implementation independent of aws-lc: ML-DSA and ML-KEM from PyPI `cryptography` (OpenSSL),
KMAC256 from `pycryptodome`, and the JOSE layer (compact JWS/JWE, base64url, AES-GCM,
AES-CBC-HMAC, AES key wrap) written here from RFC 7515/7516/7518, RFC 9964 (AKP keys, ML-DSA)
and draft-ietf-jose-pqc-kem-05 (ML-KEM: KMAC256 key derivation, the "ek" header).

    python pq_interop.py keys K.json            ML-KEM key pairs of ours (public JWKs + seeds)
    python pq_interop.py check K.json R.json    verify/decrypt Rust's vectors
    python pq_interop.py produce R.json P.json  sign, and encrypt to Rust's recipients

The vector format is described in crates/jose/examples/pq_interop.rs. Exit code 1 on any failure.
"""

import base64
import hashlib
import hmac
import json
import os
import struct
import sys

from Crypto.Hash import KMAC256
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

DSA = {
    "ML-DSA-44": (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey),
    "ML-DSA-65": (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey),
    "ML-DSA-87": (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey),
}
# alg -> (private class, public class, KEK length for key wrapping or None for direct)
KEM = {
    "ML-KEM-768": (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, None),
    "ML-KEM-1024": (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey, None),
    "ML-KEM-768+A192KW": (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, 24),
    "ML-KEM-1024+A256KW": (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey, 32),
}
# enc -> CEK length
ENC = {"A128GCM": 16, "A192GCM": 24, "A256GCM": 32, "A128CBC-HS256": 32, "A192CBC-HS384": 48, "A256CBC-HS512": 64}
ENCS = ["A256GCM", "A128GCM", "A128CBC-HS256"]
PAYLOADS = [b"", b'{"sub":"bob","iss":"pyca"}', bytes((i * 131 + 7) & 0xFF for i in range(3000))]


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64d(s):
    if "=" in s:
        raise ValueError("padding")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def kdf(shared_secret, alg_id, key_len):
    """draft-ietf-jose-pqc-kem-05 §5.1: KMAC256(K=ss, X=AlgorithmID||SuppPubInfo, L, S="")."""
    x = struct.pack(">I", len(alg_id)) + alg_id.encode() + struct.pack(">I", key_len * 8)
    return KMAC256.new(key=shared_secret, data=x, mac_len=key_len, custom=b"").digest()


def cbc_hs(enc):
    return {"A128CBC-HS256": hashlib.sha256, "A192CBC-HS384": hashlib.sha384, "A256CBC-HS512": hashlib.sha512}[enc]


def content_encrypt(enc, cek, aad, plaintext):
    if enc.endswith("GCM"):
        iv = os.urandom(12)
        out = AESGCM(cek).encrypt(iv, plaintext, aad)
        return iv, out[:-16], out[-16:]
    half = len(cek) // 2
    mac_key, enc_key = cek[:half], cek[half:]
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    e = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    ct = e.update(data) + e.finalize()
    al = struct.pack(">Q", len(aad) * 8)
    tag = hmac.new(mac_key, aad + iv + ct + al, cbc_hs(enc)).digest()[:half]
    return iv, ct, tag


def content_decrypt(enc, cek, aad, iv, ct, tag):
    if enc.endswith("GCM"):
        return AESGCM(cek).decrypt(iv, ct + tag, aad)
    half = len(cek) // 2
    mac_key, enc_key = cek[:half], cek[half:]
    al = struct.pack(">Q", len(aad) * 8)
    want = hmac.new(mac_key, aad + iv + ct + al, cbc_hs(enc)).digest()[:half]
    if not hmac.compare_digest(want, tag):
        raise InvalidTag()
    d = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).decryptor()
    data = d.update(ct) + d.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(data) + unpadder.finalize()


def jwe_encrypt(public_jwk, alg, enc, plaintext, kid):
    _, pub_cls, kek_len = KEM[alg]
    if public_jwk["kty"] != "AKP" or public_jwk["alg"] != alg or "priv" in public_jwk or "dk" in public_jwk:
        raise ValueError("not a public AKP key for " + alg)
    pub = pub_cls.from_public_bytes(b64d(public_jwk["pub"]))
    ss, ct = pub.encapsulate()
    if kek_len is None:
        cek = kdf(ss, enc, ENC[enc])
        encrypted_key = b""
    else:
        cek = os.urandom(ENC[enc])
        encrypted_key = aes_key_wrap(kdf(ss, alg, kek_len), cek)
    header = {"alg": alg, "enc": enc, "ek": b64e(ct), "kid": kid}
    h = b64e(json.dumps(header, separators=(",", ":")).encode())
    iv, c, tag = content_encrypt(enc, cek, h.encode(), plaintext)
    return ".".join([h, b64e(encrypted_key), b64e(iv), b64e(c), b64e(tag)])


def jwe_decrypt(private, alg, enc, token):
    _, _, kek_len = KEM[alg]
    h, ek, iv, c, tag = token.split(".")
    header = json.loads(b64d(h))
    if header.get("alg") != alg or header.get("enc") != enc:
        raise ValueError("alg/enc")
    ss = private.decapsulate(b64d(header["ek"]))
    if kek_len is None:
        if ek:
            raise ValueError("direct mode has no encrypted key")
        cek = kdf(ss, enc, ENC[enc])
    else:
        cek = aes_key_unwrap(kdf(ss, alg, kek_len), b64d(ek))
    return header, content_decrypt(enc, cek, h.encode(), b64d(iv), b64d(c), b64d(tag))


def jws_sign(private, alg, payload, kid):
    header = {"alg": alg, "kid": kid, "typ": "JWT"}
    signing_input = b64e(json.dumps(header, separators=(",", ":")).encode()) + "." + b64e(payload)
    return signing_input + "." + b64e(private.sign(signing_input.encode()))


def jws_verify(public, alg, token):
    h, p, sig = token.split(".")
    header = json.loads(b64d(h))
    if header.get("alg") != alg:
        raise ValueError("alg")
    public.verify(b64d(sig), (h + "." + p).encode())
    return header, b64d(p)


def tamper(token, part, at):
    parts = token.split(".")
    b = bytearray(b64d(parts[part]))
    if not b:
        return None
    b[at % len(b)] ^= 1
    parts[part] = b64e(bytes(b))
    return ".".join(parts)


def akp_public(private, alg):
    return {"kty": "AKP", "alg": alg, "pub": b64e(private.public_key().public_bytes_raw())}


def cmd_keys(out):
    keys = []
    for alg, (priv_cls, _, _) in KEM.items():
        key = priv_cls.generate()
        keys.append({"alg": alg, "kid": "py-" + alg, "public": akp_public(key, alg), "seed": b64e(key.private_bytes_raw())})
    json.dump({"producer": "pyca-cryptography", "keys": keys}, open(out, "w"), indent=1)


def cmd_check(keys_file, theirs_file):
    mine = json.load(open(keys_file))
    theirs = json.load(open(theirs_file))
    failures, ok_jws, ok_jwe, rejected = [], 0, 0, 0
    for v in theirs["jws"]:
        try:
            alg = v["alg"]
            priv_cls, pub_cls = DSA[alg]
            public = pub_cls.from_public_bytes(b64d(v["jwk"]["pub"]))
            if v["jwk"]["kty"] != "AKP" or v["jwk"]["alg"] != alg or "priv" in v["jwk"]:
                raise ValueError("public JWK is not a public AKP key")
            # RFC 9964: priv is the 32-byte seed; it must expand to the same public key.
            seed = b64d(v["jwk_private"]["priv"])
            if len(seed) != 32 or priv_cls.from_seed_bytes(seed).public_key().public_bytes_raw() != b64d(v["jwk"]["pub"]):
                raise ValueError("seed does not give pub")
            header, payload = jws_verify(public, alg, v["token"])
            if payload != b64d(v["payload"]) or header.get("kid") != v["kid"]:
                raise ValueError("payload or kid differs")
            for part, at in ((2, 5), (1, 0), (0, 2)):
                bad = tamper(v["token"], part, at)
                if bad is None:
                    continue
                try:
                    jws_verify(public, alg, bad)
                    raise ValueError("tampered JWS verified")
                except (InvalidSignature, ValueError, UnicodeDecodeError, json.JSONDecodeError) as e:
                    if str(e) == "tampered JWS verified":
                        raise
                    rejected += 1
            ok_jws += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(f"{v.get('id')}: {type(e).__name__} {e}")
    privates = {k["kid"]: KEM[k["alg"]][0].from_seed_bytes(b64d(k["seed"])) for k in mine["keys"]}
    for v in theirs["jwe"]:
        try:
            key = privates[v["kid"]]
            header, plaintext = jwe_decrypt(key, v["alg"], v["enc"], v["token"])
            if plaintext != b64d(v["plaintext"]) or header.get("kid") != v["kid"]:
                raise ValueError("plaintext or kid differs")
            for part, at in ((4, 0), (3, 1), (1, 9)):
                bad = tamper(v["token"], part, at)
                if bad is None:
                    continue
                try:
                    jwe_decrypt(key, v["alg"], v["enc"], bad)
                    raise ValueError("tampered JWE decrypted")
                except (InvalidTag, InvalidUnwrap, ValueError) as e:
                    if str(e) == "tampered JWE decrypted":
                        raise
                    rejected += 1
            ok_jwe += 1
        except Exception as e:  # noqa: BLE001
            failures.append(f"{v.get('id')}: {type(e).__name__} {e}")
    print(
        f"python checked {theirs.get('producer')}: ML-DSA JWS {ok_jws}/{len(theirs['jws'])} verified, "
        f"ML-KEM JWE {ok_jwe}/{len(theirs['jwe'])} decrypted, {rejected} tampered tokens rejected, "
        f"{len(failures)} failure(s)"
    )
    for f in failures:
        print("  FAIL", f)
    return not failures and theirs["jws"] and theirs["jwe"]


def cmd_produce(ours_file, out):
    ours = json.load(open(ours_file))
    jws_out, jwe_out = [], []
    for alg, (priv_cls, _) in DSA.items():
        seed = os.urandom(32)
        key = priv_cls.from_seed_bytes(seed)
        kid = "py-" + alg
        jwk = dict(akp_public(key, alg), priv=b64e(seed), kid=kid)
        for i, payload in enumerate(PAYLOADS):
            jws_out.append({"id": f"jws/{alg}/p{i}", "alg": alg, "kid": kid, "jwk": jwk,
                            "token": jws_sign(key, alg, payload, kid), "payload": b64e(payload)})
    for r in ours["recipients"]:
        for enc in ENCS:
            for i, plaintext in enumerate(PAYLOADS):
                token = jwe_encrypt(r["public"], r["alg"], enc, plaintext, r["kid"])
                jwe_out.append({"id": f"jwe/{enc}/{r['alg']}/p{i}", "alg": r["alg"], "enc": enc,
                                "kid": r["kid"], "token": token, "plaintext": b64e(plaintext)})
    json.dump({"producer": "pyca-cryptography", "jws": jws_out, "jwe": jwe_out}, open(out, "w"), indent=1)
    print(f"python produced {len(jws_out)} ML-DSA JWS, {len(jwe_out)} ML-KEM JWE")


def main(argv):
    if len(argv) == 3 and argv[1] == "keys":
        cmd_keys(argv[2])
        return 0
    if len(argv) == 4 and argv[1] == "check":
        return 0 if cmd_check(argv[2], argv[3]) else 1
    if len(argv) == 4 and argv[1] == "produce":
        cmd_produce(argv[2], argv[3])
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
