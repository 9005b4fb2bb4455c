"""The xAPI HTTP resources, mounted at ``/xapi``.

Every route accepts every method and dispatches on the *effective* method, because
the alternate request syntax (xAPI-Communication 1.3) turns ``POST ?method=PUT``
with form fields into a PUT with headers and parameters. ``g.xapi`` holds the
effective request; views parse it, call a service and build the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Response, current_app, g, request, url_for
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import http_date

from lms_core import jsonsafe
from lms_core.bounded import MAX_INT32, parse_int
from lms_core.db import utcnow
from lrs import clients, documents, formats, multipart, validation
from lrs import keys as K
from lrs import statements as st
from lrs.errors import XapiError, bad_request

bp = Blueprint("lrs", __name__, url_prefix="/xapi")

VERSION = "1.0.3"
ABOUT_VERSIONS = ["1.0.3", "1.0.2", "1.0.1", "1.0.0"]
_VERSION_OK = re.compile(r"^1\.0(\.\d+)?$")
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]
#: What a 503 (database unavailable) tells clients to wait before retrying.
RETRY_AFTER_SECONDS = 5
#: Headers the alternate syntax may carry as form fields (1.3.s3.b6).
_FORM_HEADERS = {
    "authorization",
    "x-experience-api-version",
    "content-type",
    "content-length",
    "if-match",
    "if-none-match",
}
CORS_ALLOW_HEADERS = (
    "Authorization, Content-Type, X-Experience-API-Version, If-Match, If-None-Match, "
    "X-Requested-With, Accept, Accept-Language"
)
CORS_EXPOSE_HEADERS = (
    "ETag, Last-Modified, Content-Type, Content-Length, X-Experience-API-Version, X-Experience-API-Consistent-Through"
)


@dataclass
class XRequest:
    method: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    alternate: bool = False
    caller: st.Caller | None = field(default=None)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type") or ""

    @property
    def media_type(self) -> str:
        return self.content_type.split(";")[0].strip().lower()


def _x() -> XRequest:
    xr: XRequest = g.xapi
    return xr


def _single_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in out:
            raise bad_request(f"parameter {k!r} given more than once")
        out[k] = v
    return out


def _request_body() -> bytes:
    """The body; 413 when a streamed (chunked) body is over ``MAX_CONTENT_LENGTH``.

    With a Content-Length Werkzeug answers 413 itself. Without one, its limited
    stream just stops at the limit, so the truncated body used to fail as bad JSON
    (400), or worse, be stored truncated as a document. One byte more from the
    server's stream tells whether there was more.
    """
    data = request.get_data()
    limit = request.max_content_length
    if (
        limit is not None
        and request.content_length is None
        and len(data) >= limit
        and request.environ["wsgi.input"].read(1)
    ):
        raise RequestEntityTooLarge()
    return data


def _build_request() -> XRequest:
    headers = {k.lower(): v for k, v in request.headers.items()}
    params = _single_params(list(request.args.items(multi=True)))
    method = request.method
    if method == "POST" and "method" in params:
        if set(params) != {"method"}:
            raise bad_request("with the alternate request syntax, 'method' is the only query parameter")
        if request.mimetype != "application/x-www-form-urlencoded":
            raise bad_request("the alternate request syntax needs an application/x-www-form-urlencoded body")
        method = params["method"].upper()
        if method not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
            raise bad_request("unsupported method in the alternate request syntax")
        try:
            form = parse_qsl(_request_body().decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise bad_request("the form is not UTF-8") from None
        fields = _single_params(form)
        body = b""
        new_params: dict[str, str] = {}
        headers.pop("content-type", None)
        for name, value in fields.items():
            low = name.lower()
            if name == "content":
                body = value.encode("utf-8")
            elif low in _FORM_HEADERS:
                headers[low] = value
            else:
                new_params[name] = value
        if body and "content-type" not in headers:
            headers["content-type"] = "application/json"
        return _storable(XRequest(method, new_params, headers, body, alternate=True))
    return _storable(XRequest(method, params, headers, _request_body() if method in ("PUT", "POST") else b""))


def _storable(xr: XRequest) -> XRequest:
    """Refuse parameters and headers that no database column can hold.

    ``%00`` in a ``stateId`` or ``activityId`` (or a form field of the alternate
    syntax) reached PostgreSQL, which refuses NUL in text: a 500 instead of a 400.
    """
    for kind, values in (("parameter", xr.params), ("header", xr.headers)):
        for name, value in values.items():
            problem = jsonsafe.find_problem([name, value])
            if problem:
                raise bad_request(f"the {kind} {name[:40]!r} " + problem.split(" ", 1)[1])
    return xr


@bp.before_request
def _prepare() -> Any:
    if request.method == "OPTIONS":
        return None
    xr = _build_request()
    g.xapi = xr
    if request.endpoint == "lrs.about":
        return None
    version = xr.header("x-experience-api-version")
    if version is None:
        raise bad_request("the X-Experience-API-Version header is required")
    if not _VERSION_OK.match(version.strip()):
        raise bad_request(f"unsupported xAPI version {version!r}; this LRS speaks 1.0.x")
    xr.caller = _authenticate(xr.header("authorization"))
    return None


def _authenticate(header: str | None) -> st.Caller:
    if not header or not header.lower().startswith("basic "):
        raise XapiError(401, "HTTP Basic credentials are required")
    try:
        key, _, secret = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise XapiError(401, "malformed Basic credentials") from None
    if jsonsafe.find_problem([key, secret]) or len(key) > 64:
        raise XapiError(401, "malformed Basic credentials")  # never a query with NUL in it
    caller = clients.authenticate(key, secret)
    if caller is None:
        raise XapiError(401, "the credentials were refused")
    return caller


def _cors(response: Response) -> None:
    origin = request.headers.get("Origin")
    response.headers["Access-Control-Allow-Origin"] = origin or "*"
    if origin:
        response.vary.add("Origin")
    response.headers["Access-Control-Allow-Methods"] = "HEAD, GET, POST, PUT, DELETE, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    response.headers["Access-Control-Max-Age"] = "86400"


@bp.after_request
def _finish(response: Response) -> Response:
    response.headers["X-Experience-API-Version"] = VERSION
    if request.path.rstrip("/").endswith("/statements"):
        response.headers["X-Experience-API-Consistent-Through"] = st.iso(utcnow())
    _cors(response)
    return response


def error_response(status: int, message: str) -> Response:
    response = Response(
        json.dumps({"error": message, "status": status}, ensure_ascii=False), status=status, mimetype="application/json"
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="xAPI"'
    return response


@bp.errorhandler(XapiError)
def _xapi_error(exc: XapiError) -> Response:
    return error_response(exc.status, exc.message)


@bp.errorhandler(OperationalError)
@bp.errorhandler(InterfaceError)
def _database_unavailable(exc: Exception) -> Response:
    # The database is down or restarting (or SQLite is locked): a client should retry,
    # not read a traceback. Nothing was acknowledged, so nothing is lost.
    # No rollback here: the request's session is removed (rolled back) when the app
    # context ends, and the pool replaces the broken connection then.
    current_app.logger.warning("LRS database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
    response = error_response(503, "the LRS database is unavailable; retry shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> Response:
    return error_response(413, "the request is larger than this LRS accepts")


# Helpers ------------------------------------------------------------------------------


def _check_params(allowed: set[str], required: set[str] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    params = _x().params
    unknown = set(params) - allowed
    if unknown:
        raise bad_request(f"unexpected parameters {sorted(unknown)}")
    missing = required - set(params)
    if missing:
        raise bad_request(f"missing parameters {sorted(missing)}")
    return params


def _require_scope(*scopes: str) -> st.Caller:
    caller = _x().caller
    assert caller is not None  # noqa: S101 - _prepare authenticated every non-about request
    if not caller.scopes & ({"all", *scopes}):
        raise XapiError(403, "this credential lacks the scope for this request")
    return caller


def _bool_param(params: dict[str, str], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    # Case-insensitive: the tincan client (and Python's str(True)) sends "True"; ADL's LRS accepts it.
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise bad_request(f"{name} must be true or false")
    return lowered == "true"


def _agent_param(raw: str, name: str = "agent", *, allow_group: bool = True) -> tuple[dict[str, Any], str]:
    try:
        value = jsonsafe.loads(raw, max_depth=10)
    except jsonsafe.JSONRefused as exc:
        raise bad_request(f"{name} is not valid JSON: {exc}") from None
    try:
        if allow_group:
            validation.actor(value, name)
        else:
            validation.agent(value, name)
    except validation.ValidationError as exc:
        raise bad_request(str(exc)) from None
    ifi = K.ifi(value)
    if ifi is None:
        raise bad_request(f"{name} must be identified (anonymous groups cannot be used)")
    return value, ifi


def _json_response(value: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(value, ensure_ascii=False, separators=(",", ":")), status=status, mimetype="application/json"
    )


def _no_content() -> Response:
    return Response(status=204)


def _method_not_allowed() -> XapiError:
    return XapiError(405, "method not allowed on this resource")


# About ----------------------------------------------------------------------------------


@bp.route("/about", methods=METHODS)
def about() -> Response:
    if _x().method not in ("GET", "HEAD"):
        raise _method_not_allowed()
    _check_params(set())
    return _json_response({"version": ABOUT_VERSIONS, "extensions": {}})


# Statements -----------------------------------------------------------------------------

GET_PARAMS = {
    "statementId",
    "voidedStatementId",
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
}


@bp.route("/statements", methods=METHODS)
def statements() -> Response:
    xr = _x()
    if xr.method in ("GET", "HEAD"):
        return _get_statements(xr)
    if xr.method == "PUT":
        return _put_statement(xr)
    if xr.method == "POST":
        return _post_statements(xr)
    raise _method_not_allowed()


def _statement_body(xr: XRequest) -> tuple[Any, dict[str, st.Attachment]]:
    if xr.media_type == "application/json":
        raw, parts = xr.body, dict[str, st.Attachment]()
    elif xr.media_type == "multipart/mixed":
        raw, parts = multipart.parse(xr.body, xr.content_type)
    else:
        raise bad_request("statements must be sent as application/json or multipart/mixed")
    try:
        return jsonsafe.loads(raw), parts
    except jsonsafe.JSONRefused as exc:  # NaN, 1e400, \u0000, lone surrogates, deep nesting
        raise bad_request(f"the body is not acceptable JSON: {exc}") from None


def _put_statement(xr: XRequest) -> Response:
    params = _check_params({"statementId"}, {"statementId"})
    caller = _require_scope("statements/write")
    sid = params["statementId"]
    if not validation.is_uuid(sid):
        raise bad_request("statementId must be a UUID")
    body, parts = _statement_body(xr)
    if not isinstance(body, dict):
        raise bad_request("PUT takes a single statement object")
    st.store([body], caller, parts, put_id=sid)
    return _no_content()


def _post_statements(xr: XRequest) -> Response:
    _check_params(set())
    caller = _require_scope("statements/write")
    body, parts = _statement_body(xr)
    batch = body if isinstance(body, list) else [body]
    max_batch = int(current_app.config.get("LRS_MAX_BATCH", 5000))
    if len(batch) > max_batch:
        raise XapiError(413, f"at most {max_batch} statements per request")
    ids = st.store(batch, caller, parts)
    return _json_response(ids)


def _read_caller() -> tuple[st.Caller, bool]:
    """The caller and whether it may read only its own statements."""
    caller = _require_scope("statements/read", "all/read", "statements/read/mine")
    mine_only = not caller.scopes & {"all", "all/read", "statements/read"}
    return caller, mine_only


def _get_statements(xr: XRequest) -> Response:
    caller, mine_only = _read_caller()
    params = xr.params
    if "more" in params:
        if set(params) != {"more"}:
            raise bad_request("'more' cannot be combined with other parameters")
        q, cursor = st.Query.from_token(params["more"])
        if mine_only and q.mine != caller.authority_ifi:
            raise XapiError(403, "this 'more' link belongs to another credential")
        return _statement_result(q, cursor, xr)
    _check_params(GET_PARAMS)
    fmt = params.get("format", "exact")
    if fmt not in ("ids", "exact", "canonical"):
        raise bad_request("format must be ids, exact or canonical")
    want_attachments = _bool_param(params, "attachments")
    if "statementId" in params or "voidedStatementId" in params:
        if "statementId" in params and "voidedStatementId" in params:
            raise bad_request("give statementId or voidedStatementId, not both")
        extra = set(params) - {"statementId", "voidedStatementId", "format", "attachments"}
        if extra:
            raise bad_request(f"{sorted(extra)} cannot be used with a statement id")
        voided = "voidedStatementId" in params
        sid = params["voidedStatementId" if voided else "statementId"]
        if not validation.is_uuid(sid):
            raise bad_request("the statement id must be a UUID")
        data = st.get_one(sid, voided)
        if data is None or (mine_only and K.ifi(data.get("authority") or {}) != caller.authority_ifi):
            raise XapiError(404, "no such statement")
        response = _statements_response(
            formats.render(data, fmt, xr.header("accept-language")), [data], want_attachments
        )
        stored = validation.parse_timestamp(data["stored"])
        response.headers["Last-Modified"] = http_date(stored)
        return response
    q = st.Query()
    try:
        if "agent" in params:
            q.agent = _agent_param(params["agent"])[1]
        if "verb" in params:
            q.verb = validation.iri(params["verb"], "verb")
        if "activity" in params:
            q.activity = validation.iri(params["activity"], "activity")
        if "registration" in params:
            q.registration = validation.uuid(params["registration"], "registration").lower()
        if "since" in params:
            q.since = validation.parse_timestamp(params["since"], "since")
        if "until" in params:
            q.until = validation.parse_timestamp(params["until"], "until")
    except validation.ValidationError as exc:
        raise bad_request(str(exc)) from None
    q.related_activities = _bool_param(params, "related_activities")
    q.related_agents = _bool_param(params, "related_agents")
    q.ascending = _bool_param(params, "ascending")
    if "limit" in params:
        raw = params["limit"]
        if not (raw.isascii() and raw.isdigit()):  # isdigit alone accepts "²", which int() refuses
            raise bad_request("limit must be a non-negative integer")
        q.limit = parse_int(raw, maximum=MAX_INT32) or 0  # 10**30 is "as many as allowed"
    if mine_only:
        q.mine = caller.authority_ifi
    q.format, q.attachments = fmt, want_attachments
    return _statement_result(q, None, xr)


def _statement_result(q: st.Query, cursor: int | None, xr: XRequest) -> Response:
    max_limit = int(current_app.config.get("LRS_MAX_LIMIT", 100))
    if q.format == "exact" and not q.attachments:
        # The common case: stored JSON texts joined as they are, never parsed in Python.
        texts, nxt = st.find_text(q, max_limit, cursor)
        more = url_for("lrs.statements", more=q.to_token(nxt)) if nxt is not None else ""
        body = '{"statements":[' + ",".join(texts) + '],"more":' + json.dumps(more) + "}"
        return Response(body, status=200, mimetype="application/json")
    found, nxt = st.find(q, max_limit, cursor)
    lang = xr.header("accept-language")
    result: dict[str, Any] = {"statements": [formats.render(s, q.format, lang) for s in found], "more": ""}
    if nxt is not None:
        # The token carries the filters, format and cursor, so the next page matches this one.
        result["more"] = url_for("lrs.statements", more=q.to_token(nxt))
    return _statements_response(result, found, q.attachments)


def _statements_response(body: Any, raw: list[dict[str, Any]], want_attachments: bool) -> Response:
    if not want_attachments:
        return _json_response(body)
    first = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    payload, ctype = multipart.build(first, st.attachments_for(raw))
    return Response(payload, status=200, content_type=ctype)


# Documents ------------------------------------------------------------------------------


def _doc_response(doc: Any) -> Response:
    response = Response(doc.content, status=200, content_type=doc.content_type)
    response.headers["ETag"] = f'"{doc.etag}"'
    response.headers["Last-Modified"] = http_date(doc.updated)
    return response


def _ids_response(ids: list[str], last: Any) -> Response:
    response = _json_response(ids)
    if last is not None:
        response.headers["Last-Modified"] = http_date(last)
    return response


def _since(params: dict[str, str]) -> Any:
    if "since" not in params:
        return None
    try:
        return validation.parse_timestamp(params["since"], "since")
    except validation.ValidationError as exc:
        raise bad_request(str(exc)) from None


def _iri_param(params: dict[str, str], name: str) -> str:
    try:
        return validation.iri(params[name], name)
    except validation.ValidationError as exc:
        raise bad_request(str(exc)) from None


def _document_write(xr: XRequest, scope: documents.Scope, doc_id: str) -> Response:
    if_match, if_none_match = xr.header("if-match"), xr.header("if-none-match")
    ctype = xr.content_type or "application/octet-stream"
    if xr.method == "PUT":
        documents.put(scope, doc_id, xr.body, ctype, if_match, if_none_match)
    else:
        documents.post(scope, doc_id, xr.body, ctype, if_match, if_none_match)
    return _no_content()


def _document_resource(
    xr: XRequest, scope: documents.Scope, id_name: str, params: dict[str, str], any_registration: bool
) -> Response:
    doc_id = params.get(id_name)
    if xr.method in ("GET", "HEAD"):
        if doc_id is None:
            ids, last = documents.list_ids(scope, _since(params), any_registration)
            return _ids_response(ids, last)
        if "since" in params:
            raise bad_request("since cannot be used with a document id")
        doc = documents.get(scope, doc_id)
        if doc is None:
            raise XapiError(404, "no such document")
        return _doc_response(doc)
    if "since" in params:
        raise bad_request("since is only allowed on GET")
    if xr.method in ("PUT", "POST"):
        if doc_id is None:
            raise bad_request(f"{id_name} is required")
        return _document_write(xr, scope, doc_id)
    if xr.method == "DELETE":
        if doc_id is None:
            if scope.kind != documents.STATE:
                raise bad_request(f"{id_name} is required")
            documents.delete_all(scope, any_registration)
        else:
            documents.delete_one(scope, doc_id, xr.header("if-match"), xr.header("if-none-match"))
        return _no_content()
    raise _method_not_allowed()


def _read_or_write_scope(xr: XRequest, scope_name: str) -> None:
    if xr.method in ("GET", "HEAD"):
        _require_scope(scope_name, "all/read")
    else:
        _require_scope(scope_name)


@bp.route("/activities/state", methods=METHODS)
def state() -> Response:
    xr = _x()
    params = _check_params({"activityId", "agent", "registration", "stateId", "since"}, {"activityId", "agent"})
    _read_or_write_scope(xr, "state")
    activity_id = _iri_param(params, "activityId")
    agent_ifi = _agent_param(params["agent"], allow_group=False)[1]
    registration = params.get("registration")
    if registration is not None and not validation.is_uuid(registration):
        raise bad_request("registration must be a UUID")
    scope = documents.Scope(documents.STATE, activity_id, agent_ifi, registration.lower() if registration else None)
    any_registration = registration is None and (xr.method in ("GET", "HEAD", "DELETE") and "stateId" not in params)
    return _document_resource(xr, scope, "stateId", params, any_registration)


@bp.route("/activities/profile", methods=METHODS)
def activity_profile() -> Response:
    xr = _x()
    params = _check_params({"activityId", "profileId", "since"}, {"activityId"})
    _read_or_write_scope(xr, "profile")
    scope = documents.Scope(documents.ACTIVITY_PROFILE, _iri_param(params, "activityId"), None)
    return _document_resource(xr, scope, "profileId", params, False)


@bp.route("/agents/profile", methods=METHODS)
def agent_profile() -> Response:
    xr = _x()
    params = _check_params({"agent", "profileId", "since"}, {"agent"})
    _read_or_write_scope(xr, "profile")
    scope = documents.Scope(documents.AGENT_PROFILE, None, _agent_param(params["agent"])[1])
    return _document_resource(xr, scope, "profileId", params, False)


# Activities and agents -------------------------------------------------------------------


@bp.route("/activities", methods=METHODS)
def activities() -> Response:
    xr = _x()
    if xr.method not in ("GET", "HEAD"):
        raise _method_not_allowed()
    params = _check_params({"activityId"}, {"activityId"})
    _require_scope("all/read", "define", "profile", "statements/read", "state")
    activity_id = _iri_param(params, "activityId")
    return _json_response(st.activity_definition(activity_id))


@bp.route("/agents", methods=METHODS)
def agents() -> Response:
    xr = _x()
    if xr.method not in ("GET", "HEAD"):
        raise _method_not_allowed()
    params = _check_params({"agent"}, {"agent"})
    _require_scope("all/read", "define", "profile", "statements/read", "state")
    agent, _ifi = _agent_param(params["agent"], allow_group=False)
    person: dict[str, Any] = {"objectType": "Person"}
    if "name" in agent:
        person["name"] = [agent["name"]]
    for key in ("mbox", "mbox_sha1sum", "openid", "account"):
        if key in agent:
            person[key] = [agent[key]]
    return _json_response(person)
