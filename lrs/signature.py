"""Signed statements (xAPI-Data 2.6): check that a JWS attachment is well formed.

The payload must be the statement as it was before the signature attachment was
added (compared with the statement comparison rules), the algorithm RS256/384/512,
and when the header carries an X.509 chain (``x5c``) the signature must verify
against its first certificate. As the spec says, this catches mistakes; it is not
authentication of the signer.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from lms_core import jsonsafe
from lrs.comparison import same_statement
from lrs.errors import bad_request

_HASHES = {"RS256": "SHA256", "RS384": "SHA384", "RS512": "SHA512"}
SIGNATURE_USAGE = "http://adlnet.gov/expapi/attachments/signature"


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify(jws: bytes, statement: dict[str, Any]) -> None:
    """Raise a 400 :class:`~lrs.errors.XapiError` unless ``jws`` is a valid signature of ``statement``."""
    try:
        text = jws.decode("ascii").strip()
        header_b64, payload_b64, sig_b64 = text.split(".")
        header = jsonsafe.loads(_b64(header_b64), max_depth=10)
        payload = jsonsafe.loads(_b64(payload_b64))
        sig = _b64(sig_b64)
    except (UnicodeDecodeError, ValueError, binascii.Error) as exc:  # JSONRefused is a ValueError
        raise bad_request("the signature is not a JWS compact serialization") from exc
    if not isinstance(header, dict) or header.get("alg") not in _HASHES:
        raise bad_request("the signature algorithm must be RS256, RS384 or RS512")
    if not isinstance(payload, dict):
        raise bad_request("the signature payload is not a statement")
    # The payload is the client's JSON, unvalidated: ``attachments: {}`` or ``[1]``
    # must be a 400, not an AttributeError while comparing.
    if "attachments" in payload and (
        not isinstance(payload["attachments"], list) or not all(isinstance(a, dict) for a in payload["attachments"])
    ):
        raise bad_request("the signed statement's attachments must be an array of objects")
    unsigned = dict(statement)
    rest = [a for a in statement.get("attachments") or [] if a.get("usageType") != SIGNATURE_USAGE]
    if rest:
        unsigned["attachments"] = rest
    else:
        unsigned.pop("attachments", None)
    payload_rest = [a for a in payload.get("attachments") or [] if a.get("usageType") != SIGNATURE_USAGE]
    if payload_rest:
        payload["attachments"] = payload_rest
    else:
        payload.pop("attachments", None)
    if "id" in payload and str(payload["id"]).lower() != str(statement.get("id", "")).lower():
        raise bad_request("the signed statement has a different id")
    if not same_statement(payload, unsigned):
        raise bad_request("the signed statement differs from the statement received")
    if "x5c" in header:
        _check_x5c(header, f"{header_b64}.{payload_b64}".encode("ascii"), sig)


def _check_x5c(header: dict[str, Any], signed: bytes, sig: bytes) -> None:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        chain = header["x5c"]
        cert = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
        key = cert.public_key()
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error) as exc:
        raise bad_request("the signature's x5c certificate cannot be read") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise bad_request("the signature's certificate does not hold an RSA key")
    algorithm = getattr(hashes, _HASHES[header["alg"]])()
    try:
        key.verify(sig, signed, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise bad_request("the signature does not verify against its x5c certificate") from None
