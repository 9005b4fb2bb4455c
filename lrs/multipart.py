"""``multipart/mixed`` for statements with attachments (xAPI-Communication 1.5.2)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from lrs.errors import bad_request
from lrs.statements import Attachment

_DIGESTS = {56: hashlib.sha224, 64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512}


def boundary_of(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if value:
                # RFC 2046 5.1.1: 1 to 70 ASCII characters. A non-ASCII one (possible in
                # the alternate syntax's form field) cannot delimit a byte stream.
                if len(value) > 70 or not value.isascii() or not value.isprintable():
                    raise bad_request("the multipart boundary must be 1 to 70 printable ASCII characters")
                return value
    raise bad_request("multipart/mixed without a boundary")


def _split_parts(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    delim = b"--" + boundary.encode("latin-1")
    chunks = body.split(delim)
    if len(chunks) < 3:
        raise bad_request("malformed multipart body")
    parts = []
    closed = False
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            closed = True
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        elif chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        elif chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = chunk.partition(b"\n\n")
            if not sep:
                if chunk.startswith(b"\r\n") or chunk == b"":
                    head, content = b"", chunk[2:]
                else:
                    raise bad_request("malformed multipart part")
        headers = {}
        for line in head.decode("latin-1").splitlines():
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon:
                raise bad_request("malformed multipart part header")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    if not closed:
        raise bad_request("multipart body has no closing boundary")
    return parts


def parse(body: bytes, content_type: str) -> tuple[bytes, dict[str, Attachment]]:
    """The statement JSON (first part) and the attachments keyed by their declared SHA-2."""
    parts = _split_parts(body, boundary_of(content_type))
    if not parts:
        raise bad_request("multipart body has no parts")
    first_headers, first = parts[0]
    if first_headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise bad_request("the first part must be application/json")
    attachments: dict[str, Attachment] = {}
    for headers, content in parts[1:]:
        declared = headers.get("x-experience-api-hash", "").strip().lower()
        if not declared:
            raise bad_request("an attachment part lacks the X-Experience-API-Hash header")
        cte = headers.get("content-transfer-encoding")
        if cte is not None and cte.strip().lower() != "binary":
            raise bad_request("attachment parts must use Content-Transfer-Encoding: binary")
        digest = _DIGESTS.get(len(declared))
        if digest is None or digest(content).hexdigest() != declared:
            raise bad_request(f"attachment content does not match its hash {declared}")
        attachments[declared] = Attachment(headers.get("content-type", "application/octet-stream"), content)
    return first, attachments


def build(first: bytes, attachments: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/mixed response body and its Content-Type."""
    boundary = secrets.token_hex(16)
    out: list[Any] = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(), first, b"\r\n"]
    for sha2, ctype, content in attachments:
        out.append(
            f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {sha2}\r\n\r\n".encode("latin-1", "replace")
        )
        out.append(content)
        out.append(b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f'multipart/mixed; boundary="{boundary}"'
