"""Attachments (multipart/mixed, SHA-2 checks, fileUrl) and signed statements (JWS)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

import pytest

from tests.lrs.conftest import statement

BOUNDARY = "abcABC0123'()+_,-./:=?"


def _attachment(content: bytes, usage: str = "http://example.com/usage/test", ctype: str = "text/plain", **extra):
    return {
        "usageType": usage,
        "display": {"zh-CN": "附件"},
        "contentType": ctype,
        "length": len(content),
        "sha2": hashlib.sha256(content).hexdigest(),
        **extra,
    }


def _multipart(first: object, parts: list[tuple[bytes, str | None]], ctype: str = "text/plain") -> bytes:
    out = [f"--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n".encode(), json.dumps(first).encode(), b"\r\n"]
    for content, declared in parts:
        head = f"--{BOUNDARY}\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: binary\r\n"
        if declared is not None:
            head += f"X-Experience-API-Hash: {declared}\r\n"
        out += [head.encode(), b"\r\n", content, b"\r\n"]
    out.append(f"--{BOUNDARY}--".encode())
    return b"".join(out)


def _post_multipart(xapi, body: bytes):
    return xapi.post("statements", data=body, headers={"Content-Type": f'multipart/mixed; boundary="{BOUNDARY}"'})


def test_attachment_round_trip(xapi):
    content = "学习心得：这是一份附件。".encode()
    s = statement(attachments=[_attachment(content)])
    r = _post_multipart(xapi, _multipart(s, [(content, hashlib.sha256(content).hexdigest())]))
    assert r.status_code == 200, r.get_data(as_text=True)
    sid = r.get_json()[0]
    plain = xapi.get("statements", statementId=sid)
    assert plain.mimetype == "application/json"
    multi = xapi.get("statements", statementId=sid, attachments="true")
    assert multi.mimetype == "multipart/mixed"
    raw = multi.get_data()
    assert content in raw and hashlib.sha256(content).hexdigest().encode() in raw


def test_file_url_attachment_needs_no_part(xapi):
    s = statement(attachments=[_attachment(b"remote", fileUrl="https://example.com/file.txt")])
    assert xapi.post("statements", json_body=s).status_code == 200


@pytest.mark.parametrize("case", ["missing_part", "wrong_hash", "extra_part", "no_hash_header", "json_without_part"])
def test_attachment_errors_are_400(xapi, case):
    content = b"here is a simple attachment"
    digest = hashlib.sha256(content).hexdigest()
    s = statement(attachments=[_attachment(content)])
    if case == "missing_part":
        body = _multipart(s, [])
    elif case == "wrong_hash":
        body = _multipart(s, [(b"other bytes", digest)])
    elif case == "extra_part":
        body = _multipart(s, [(content, digest), (b"unused", hashlib.sha256(b"unused").hexdigest())])
    elif case == "no_hash_header":
        body = _multipart(s, [(content, None)])
    else:
        assert xapi.post("statements", json_body=s).status_code == 400
        return
    assert _post_multipart(xapi, body).status_code == 400
    assert xapi.get("statements").get_json()["statements"] == []


def _signing_material():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LRS test signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jws(payload: dict, key, x5c: str, alg: str = "RS256") -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    header = _b64url(json.dumps({"alg": alg, "x5c": [x5c]}).encode())
    body = _b64url(json.dumps(payload).encode())
    sig = key.sign(f"{header}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{body}.{_b64url(sig)}".encode()


SIG_USAGE = "http://adlnet.gov/expapi/attachments/signature"


def _signed(xapi, payload: dict, jws: bytes):
    s = dict(payload)
    s["attachments"] = [_attachment(jws, usage=SIG_USAGE, ctype="application/octet-stream")]
    return _post_multipart(
        xapi, _multipart(s, [(jws, hashlib.sha256(jws).hexdigest())], ctype="application/octet-stream")
    )


def test_valid_signed_statement_is_stored(xapi):
    key, x5c = _signing_material()
    payload = statement(id="6690e6c9-3ef0-4ed3-8b37-7f3964730bee")
    r = _signed(xapi, payload, _jws(payload, key, x5c))
    assert r.status_code == 200, r.get_data(as_text=True)


@pytest.mark.parametrize("case", ["tampered", "bad_alg", "garbage", "wrong_key"])
def test_malformed_signatures_are_400(xapi, case):
    key, x5c = _signing_material()
    payload = statement(id="6690e6c9-3ef0-4ed3-8b37-7f3964730bef")
    if case == "tampered":
        jws = _jws(statement(id=payload["id"], verb="http://example.com/verbs/other"), key, x5c)
    elif case == "bad_alg":
        header = _b64url(json.dumps({"alg": "HS256"}).encode())
        jws = f"{header}.{_b64url(json.dumps(payload).encode())}.c2ln".encode()
    elif case == "garbage":
        jws = b"not a jws"
    else:
        other_key, _ = _signing_material()
        jws = _jws(payload, other_key, x5c)
    assert _signed(xapi, payload, jws).status_code == 400
    assert xapi.get("statements").get_json()["statements"] == []
