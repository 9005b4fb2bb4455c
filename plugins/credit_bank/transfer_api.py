"""``POST /api/v1/credit/transfers``: post one transfer or a batch (issuers' systems, admins).

Who may call it: a site admin (capability ``credit.transfer``), either with the session
cookie (and the CSRF token in ``X-CSRFToken``, like every cookie write) or with a Bearer
token that a site admin granted the ``credit:transfers`` scope (``flask lms credit
grant-token``). Only a token that actually authenticated the request skips CSRF.

The body is one transfer object, or ``{"transfers": [ ... ]}`` with up to
``LMS_CREDIT_API_MAX_BATCH`` of them. A transfer object::

    {"id": "<uuid>", "code": "course_complete", "effective_date": "2026-05-01",
     "amount": 200, "debit_account": "WL_XS/issuer/1/0", "credit_account": "WL_XS/counted/42/2026",
     "user_id": 42, "flags": 0, "pending_id": null, "timeout_seconds": null,
     "reverses_id": null, "policy_version": null, "evidence_ref": null, "memo": null}

Accounts are named by their natural key ``LEDGER/kind/owner/period`` (as in the journal's
canonical rows). ``flags`` are the ledger's (1 pending, 2 post pending, 4 void pending,
8 linked to the next item). Answers:

* a single object: ``201`` created, ``200`` already created with the same body, ``409``
  refused (``{"result": "refused", "reason": ...}``: nothing was written);
* a batch: ``200`` with one result per item, in order (``ok`` / ``exists`` / ``refused``);
* ``400`` for a malformed body (the first problem, with the item index), ``403``, ``413``.

An answer other than ``503`` means the outcome is final and, for ``ok``, committed. On ``503``
the outcome is unknown: retry with the same ids (idempotent).
"""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, cast

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from wtforms import ValidationError

from lms_core.accounts.lean_tokens import TokenCache
from lms_core.accounts.request_auth import authenticated_token
from lms_core.authz import can
from lms_core.extensions import csrf, db
from plugins.credit_bank import group_commit
from plugins.credit_bank import ledger as L
from plugins.credit_bank.models import LEDGERS, SCOPE_TRANSFERS, AccountKind, TokenScopeGrant, TransferCode

bp = Blueprint("credit_bank_transfers", __name__, url_prefix="/api/v1/credit")

_FIELDS = frozenset(
    {
        "id",
        "code",
        "effective_date",
        "amount",
        "debit_account",
        "credit_account",
        "user_id",
        "flags",
        "pending_id",
        "timeout_seconds",
        "reverses_id",
        "policy_version",
        "evidence_ref",
        "memo",
    }
)
_CODES = frozenset(c.value for c in TransferCode)
_LEDGER_CODES = frozenset(c for _, c, _n in LEDGERS)
_INT_MAX = 2**53  #: JSON integers beyond this are not exact in most clients
_FLAGS_ALL = 1 | 2 | 4 | 8


class BadItem(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _int(obj: dict[str, Any], name: str, *, low: int, high: int, required: bool = False) -> int | None:
    v = obj.get(name)
    if v is None:
        if required:
            raise BadItem(name, _("This field is required."))
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise BadItem(name, _("Give a whole number from %(low)s to %(high)s.", low=low, high=high))
    return v


def _str(obj: dict[str, Any], name: str, *, max_len: int) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > max_len or "\x00" in v:
        raise BadItem(name, _("Give a text of at most %(n)s characters.", n=max_len))
    return v


def _uuid(obj: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    v = obj.get(name)
    if v is None:
        if required:
            raise BadItem(name, _("This field is required."))
        return None
    try:
        if not isinstance(v, str) or len(v) != 36:
            raise ValueError
        return str(uuid.UUID(v))
    except ValueError:
        raise BadItem(name, _("Give a UUID such as 3f2b6c1e-6d4a-4f0e-9a55-2f0f6c1e6b7a.")) from None


def _account(obj: dict[str, Any], name: str) -> L.AccountRef | None:
    v = _str(obj, name, max_len=80)
    if v is None:
        return None
    parts = v.split("/")
    ok = len(parts) == 4 and parts[0] in _LEDGER_CODES and parts[1] in {k.value for k in AccountKind}
    ok = ok and all(p.isascii() and p.isdigit() and len(p) <= 15 for p in parts[2:])
    if not ok:
        raise BadItem(name, _("Name the account as LEDGER/kind/owner/period, e.g. WL_XS/counted/42/2026."))
    return L.AccountRef(parts[0], AccountKind(parts[1]), int(parts[2]), int(parts[3]))


def parse_item(obj: Any, *, actor_id: int) -> L.TransferSpec:
    """One transfer object to a spec (posted by ``actor_id``), or :class:`BadItem` naming the
    first bad field."""
    if not isinstance(obj, dict):
        raise BadItem("", _("Each transfer must be a JSON object."))
    unknown = sorted(k for k in obj if k not in _FIELDS)
    if unknown:
        raise BadItem(str(unknown[0])[:40], _("Unknown field."))
    code = _str(obj, "code", max_len=32)
    if code is None or code not in _CODES:
        raise BadItem("code", _("Give one of the transfer codes of the credit bank."))
    raw_date = _str(obj, "effective_date", max_len=10)
    try:
        day = dt.date.fromisoformat(raw_date or "")
    except ValueError:
        raise BadItem("effective_date", _("The date must look like 2025-06-30.")) from None
    if not dt.date(2000, 1, 1) <= day <= dt.date(2100, 12, 31):
        raise BadItem("effective_date", _("The date must be between 2000 and 2100."))
    flags = _int(obj, "flags", low=0, high=_FLAGS_ALL) or 0
    if flags & ~_FLAGS_ALL:
        raise BadItem("flags", _("Unknown flag."))
    return L.TransferSpec(
        id=_uuid(obj, "id", required=True) or "",
        code=code,
        effective_date=day,
        amount=_int(obj, "amount", low=1, high=_INT_MAX),
        debit=_account(obj, "debit_account"),
        credit=_account(obj, "credit_account"),
        flags=flags,
        pending_id=_uuid(obj, "pending_id"),
        timeout_seconds=_int(obj, "timeout_seconds", low=1, high=10 * 366 * 86400),
        reverses_id=_uuid(obj, "reverses_id"),
        policy_version=_int(obj, "policy_version", low=1, high=2**31 - 1),
        user_id=_int(obj, "user_id", low=1, high=2**31 - 1),
        actor_id=actor_id,
        evidence_ref=_str(obj, "evidence_ref", max_len=200),
        memo=_str(obj, "memo", max_len=2000),
    )


def _bad(message: str, **extra: Any) -> Any:
    return jsonify({"error": message, **extra}), 400


def client_cache(app: Flask) -> TokenCache:
    """The application's cache of the tokens found allowed to post (per app: two apps in one
    process share no grants), keyed by the token's digest.

    What is cached is the *grant*: the token holds the ``credit:transfers`` scope and its user
    the ``credit.transfer`` capability, trusted for ``LMS_CREDIT_CLIENT_CACHE_SECONDS`` (a
    role or scope taken away elsewhere takes effect within that time; 0 disables the cache
    and the lean path); ``forget`` drops a token at once. Whether the token is *live* is never
    cached: the view's core path re-reads the token on every request, and the lean path
    (``transfer_fast``) checks it in the posting transaction, so a revoked or expired token
    is refused at once by every process.
    """
    cache = app.extensions.get("credit_bank.clients")
    if cache is None:
        cache = app.extensions.setdefault("credit_bank.clients", TokenCache())
    return cast(TokenCache, cache)


def clients() -> TokenCache:
    """The current application's :func:`client_cache`."""
    return client_cache(current_app._get_current_object())  # type: ignore[attr-defined]


def _authorise() -> None:
    if not current_user.is_authenticated:
        abort(401)
    token = authenticated_token()
    if token is None:
        # A cookie: CSRF like every other cookie write (a third site cannot set this header).
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            try:
                validate_csrf(request.headers.get("X-CSRFToken"))
            except ValidationError as exc:
                raise CSRFError(str(exc)) from exc
    else:
        ttl = float(current_app.config.get("LMS_CREDIT_CLIENT_CACHE_SECONDS", 30))
        if ttl > 0 and clients().get(token.token_hash, ttl) is not None:
            return
        if not db.session.scalar(
            select(TokenScopeGrant.token_id).where(
                TokenScopeGrant.token_id == token.id, TokenScopeGrant.scope == SCOPE_TRANSFERS
            )
        ):
            abort(403, _("This API token has not been granted the scope to post credit transfers."))
    if not can(current_user, "credit.transfer"):
        abort(403)
    if token is not None:
        clients().remember(token.token_hash, current_user.id, current_user.locale)


def split_body(body: Any) -> tuple[bool, list[Any]] | None:
    """(single object?, the raw items) of a parsed body, or ``None`` when it is neither one
    transfer object nor ``{"transfers": [...]}`` with at least one."""
    single = isinstance(body, dict) and "transfers" not in body
    raw = [body] if single else (body.get("transfers") if isinstance(body, dict) else None)
    if not isinstance(raw, list) or not raw:
        return None
    return single, raw


def answer(results: list[L.ItemResult], single: bool) -> tuple[Any, int]:
    """The JSON and status of posted results: one object (201 created, 200 exists, 409
    refused) or ``{"results": [...]}`` (200)."""
    if single:
        r = results[0]
        return r.as_dict(), {L.OK: 201, L.EXISTS: 200}.get(r.result, 409)
    return {"results": [r.as_dict() for r in results]}, 200


def busy_answer() -> tuple[Any, int]:
    return {"error": _("The ledger is busy; retry with the same ids.")}, 503


@bp.route("/transfers", methods=["POST"])
@csrf.exempt  # checked in _authorise for cookies; a Bearer token that authenticated needs none
def create_transfers() -> Any:
    _authorise()
    body = request.get_json(silent=True)
    if body is None:
        return _bad(_("Send a JSON body (Content-Type: application/json)."))
    split = split_body(body)
    if split is None:
        return _bad(_('Send one transfer object or {"transfers": [...]} with at least one.'))
    single, raw = split
    limit = int(current_app.config.get("LMS_CREDIT_API_MAX_BATCH", 1000))
    if len(raw) > limit:
        return jsonify({"error": _("At most %(n)s transfers per request.", n=limit)}), 413
    items = []
    for i, obj in enumerate(raw):
        try:
            items.append(parse_item(obj, actor_id=current_user.id))
        except BadItem as exc:
            return _bad(exc.message, index=i, field=exc.field)
    # The request's own transaction is done with (auth read): the writer commits the posting.
    db.session.commit()
    try:
        results = group_commit.post(items)
    except FutureTimeout:
        payload, status = busy_answer()
        return jsonify(payload), status
    payload, status = answer(results, single)
    return jsonify(payload), status
