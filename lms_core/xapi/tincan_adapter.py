"""The one place where the platform talks to an LRS through ``tincan`` 1.0.0.

``tincan.RemoteLRS`` is the reference Python client, but 1.0.0 has defects that
break it against a strict xAPI 1.0.3 LRS. :class:`PlatformLRS` subclasses it and
fixes each one where it lives (``tincan/remote_lrs.py`` unless noted):

* ``about()`` builds ``About`` from the raw answer; ``About.version``'s setter
  raises ``ValueError`` for any version it does not know (e.g. ``2.0.0``), so
  the call crashes. Here unknown versions are dropped (and kept in
  ``PlatformLRS.last_about_versions``).
* ``_send_request`` passes ``request.content`` to ``http.client`` as ``str``
  (``HTTPRequest``'s setter even decodes bytes back to text), and http.client
  encodes ``str`` bodies as Latin-1: document text such as ``学习进度`` raises
  ``UnicodeEncodeError``. Here bodies always go out as UTF-8 bytes (binary
  documents are sent unchanged).
* ``save_state`` never sends ``registration`` (and sends the PUT twice); the
  same for ``delete_state``. Fixed: one request, with ``registration``.
* No ``If-None-Match`` anywhere, so a strict LRS answers 409/412 when a client
  creates a profile document without a precondition. ``save_*_profile`` and
  ``save_state`` accept ``if_none_match=True`` (sends ``If-None-Match: *``).
* Query parameters are ``str(value)``: datetimes go out as
  ``2026-03-01 08:00:00+00:00`` (a space, not ``T``) and booleans as ``True``.
  Here datetimes are ISO 8601 (``2026-03-01T08:00:00Z``; naive ones are refused)
  and booleans ``true``/``false``.
* The document getters look for ``etag``/``lastModified`` keys in the list
  that ``HTTPResponse.getheaders()`` returns, so ``doc.etag`` is never set and
  ``If-Match`` cannot be used on the next write. Fixed from the real headers.
* No timeout: a hung LRS would block a worker for ever. Connection failures are
  raised as :class:`LRSUnavailable` so callers can tell "LRS down" from
  "statement rejected".

It also adds :meth:`PlatformLRS.post_statements`, which posts stored statement
JSON unchanged (UTF-8, no re-serialisation), so that a retry sends exactly the
bytes of the first attempt and the LRS's same-id-same-content rule makes it a
no-op.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from tincan import About, RemoteLRS
from tincan.http_request import HTTPRequest
from tincan.lrs_response import LRSResponse
from tincan.version import Version

#: The xAPI version the platform speaks.
XAPI_VERSION = "1.0.3"


class LRSUnavailable(Exception):
    """The LRS could not be reached (refused, reset, timed out, bad answer framing)."""


def format_param(value: Any) -> str:
    """A query parameter as the xAPI spec wants it (tincan uses ``str()``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in an xAPI query: give it a time zone")
        text = value.astimezone(dt.UTC).isoformat()
        return text.removesuffix("+00:00") + "Z"
    return str(value)


class PlatformLRS(RemoteLRS):
    """``tincan.RemoteLRS`` with the 1.0.0 defects fixed (see the module docstring)."""

    # tincan's Base refuses attributes that are not declared in _props.
    _props = [*RemoteLRS._props, "timeout", "last_about_versions"]

    def __init__(
        self,
        endpoint: str,
        *,
        key: str | None = None,
        secret: str | None = None,
        timeout: float = 10.0,
        version: str = XAPI_VERSION,
    ) -> None:
        auth = None
        if key:
            # tincan encodes credentials as ASCII and crashes on anything else.
            token = base64.b64encode(f"{key}:{secret or ''}".encode()).decode("ascii")
            auth = f"Basic {token}"
        super().__init__(endpoint=endpoint, version=version, auth=auth)
        self.timeout = timeout
        #: Every version the last ``about()`` listed, including those tincan cannot represent.
        self.last_about_versions: list[str] | None = None

    # transport ---------------------------------------------------------------

    def _send_request(self, request: Any) -> LRSResponse:
        headers = {"X-Experience-API-Version": self.version}
        if self.auth is not None:
            headers["Authorization"] = self.auth
        headers.update(request.headers or {})

        url = request.resource if request.resource.startswith("http") else self.endpoint + request.resource
        parts = urlsplit(url)
        params = urlencode({k: format_param(v) for k, v in (request.query_params or {}).items()})
        query = "&".join(q for q in (parts.query, params) if q)
        path = (parts.path or "/") + (f"?{query}" if query else "")

        body = request._content  # noqa: SLF001 - the raw value, before tincan's str() setter
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif isinstance(body, bytearray):
            body = bytes(body)

        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            conn.request(request.method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise LRSUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()

        success = 200 <= response.status < 300 or (response.status == 404 and bool(request.ignore404))
        return LRSResponse(success=success, request=request, response=response, data=data)

    @staticmethod
    def _raw_request(
        method: str, resource: str, *, content: bytes | bytearray | None = None, ignore404: bool = False
    ) -> Any:
        request = HTTPRequest(method=method, resource=resource, ignore404=ignore404)
        request._content = content  # noqa: SLF001 - bypass the setter that decodes to str
        return request

    # about -------------------------------------------------------------------

    def about(self) -> LRSResponse:
        request = HTTPRequest(method="GET", resource="about")
        response = self._send_request(request)
        if response.success:
            raw = json.loads(response.data)
            versions = list(raw.get("version") or [])
            self.last_about_versions = versions
            known = [v for v in versions if v in Version.supported]
            response.content = About(version=known, extensions=raw.get("extensions"))
        return response

    # statements --------------------------------------------------------------

    def post_statements(self, statements: Sequence[Mapping[str, Any]]) -> LRSResponse:
        """POST statement JSON objects as one array, unchanged; ``content`` = stored ids."""
        body = json.dumps(list(statements), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        request = self._raw_request("POST", "statements", content=body)
        request.headers["Content-Type"] = "application/json"
        response = self._send_request(request)
        if response.success:
            response.content = json.loads(response.data)
        return response

    def put_statement(self, statement: Mapping[str, Any]) -> LRSResponse:
        """PUT one statement JSON object under its own ``id`` (204 when stored)."""
        body = json.dumps(statement, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        request = self._raw_request("PUT", "statements", content=body)
        request.headers["Content-Type"] = "application/json"
        request.query_params = {"statementId": statement["id"]}
        return self._send_request(request)

    # documents ---------------------------------------------------------------

    @staticmethod
    def _write_headers(request: Any, doc: Any, if_none_match: bool) -> None:
        request.headers["Content-Type"] = doc.content_type or "application/octet-stream"
        if doc.etag is not None:
            request.headers["If-Match"] = doc.etag
        elif if_none_match:
            request.headers["If-None-Match"] = "*"

    @staticmethod
    def _read_headers(response: LRSResponse) -> None:
        """Fill a retrieved document's etag, type and time from the real headers."""
        doc = response.content
        if doc is None:
            return
        if response.response.status == 404:
            response.content = None
            return
        etag = response.response.getheader("ETag")
        if etag:
            doc.etag = etag
        content_type = response.response.getheader("Content-Type")
        if content_type:
            doc.content_type = content_type
        modified = response.response.getheader("Last-Modified")
        if modified:
            try:
                doc.timestamp = dt.datetime.strptime(modified, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC)
            except ValueError:
                doc.timestamp = modified

    def save_state(self, state: Any, *, if_none_match: bool = False) -> LRSResponse:
        request = self._raw_request("PUT", "activities/state", content=state.content)
        self._write_headers(request, state, if_none_match)
        request.query_params = {
            "stateId": state.id,
            "activityId": state.activity.id,
            "agent": state.agent.to_json(self.version),
        }
        if state.registration is not None:
            request.query_params["registration"] = state.registration
        response = self._send_request(request)
        response.content = state
        return response

    def delete_state(self, state: Any) -> LRSResponse:
        return self._delete_state(
            activity=state.activity,
            agent=state.agent,
            state_id=state.id,
            registration=state.registration,
            etag=state.etag,
        )

    def retrieve_state(self, activity: Any, agent: Any, state_id: str, registration: str | None = None) -> LRSResponse:
        response = super().retrieve_state(activity, agent, state_id, registration)
        if response.success:
            self._read_headers(response)
        return response

    def save_activity_profile(self, profile: Any, *, if_none_match: bool = False) -> LRSResponse:
        request = self._raw_request("PUT", "activities/profile", content=profile.content)
        self._write_headers(request, profile, if_none_match)
        request.query_params = {"profileId": profile.id, "activityId": profile.activity.id}
        response = self._send_request(request)
        response.content = profile
        return response

    def retrieve_activity_profile(self, activity: Any, profile_id: str) -> LRSResponse:
        response = super().retrieve_activity_profile(activity, profile_id)
        if response.success:
            self._read_headers(response)
        return response

    def save_agent_profile(self, profile: Any, *, if_none_match: bool = False) -> LRSResponse:
        request = self._raw_request("PUT", "agents/profile", content=profile.content)
        self._write_headers(request, profile, if_none_match)
        request.query_params = {"profileId": profile.id, "agent": profile.agent.to_json(self.version)}
        response = self._send_request(request)
        response.content = profile
        return response

    def retrieve_agent_profile(self, agent: Any, profile_id: str) -> LRSResponse:
        response = super().retrieve_agent_profile(agent, profile_id)
        if response.success:
            self._read_headers(response)
        return response
