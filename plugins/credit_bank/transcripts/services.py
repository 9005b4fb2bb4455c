"""Issuing, finding and revoking transcripts.

Issuing a transcript for a cadre and a year:

1. log the journal's new rows and sign a journal checkpoint (``log.sync_journal``);
2. gather the cadre's counted and overflow accounts of that year and every journal row on
   them up to that checkpoint, each with its audit path;
3. compute the balances from those rows (the verifier recomputes them the same way);
4. sign the payload, log it in the credential log, sign that log's checkpoint, attach the
   inclusion proof, draw and seal the PDF;
5. store it, and mark the cadre's previous transcript for that year as superseded.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext
from sqlalchemy import or_, select

from lms_core.accounts.models import User
from lms_core.events.services import emit
from lms_core.extensions import db
from plugins.credit_bank import labels
from plugins.credit_bank.models import LEDGERS, Account, AccountKind, Transfer
from plugins.credit_bank.proofs import credential as cr
from plugins.credit_bank.proofs import keys, pdf
from plugins.credit_bank.transcripts import log
from plugins.credit_bank.transcripts.issuer_key import issuer_key
from plugins.credit_bank.transcripts.models import Credential, CredentialState, CredentialStatus, LogLeaf

_UUID_LEN = 36


class TranscriptError(ValueError):
    """The request cannot be honoured; the message is for the user (translated)."""


def verify_url(credential_id: str) -> str:
    base = str(current_app.config.get("LMS_PLATFORM_URL", "")).rstrip("/")
    return f"{base}/credit/verify/{credential_id}"


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(
    row: dict[str, Any], mine: dict[str, dict[str, Any]], resolved: dict[str, int], memos: dict[str, str]
) -> dict[str, Any]:
    """How one journal row reads on the cadre's transcript (signed amount, plain title)."""
    credit_side = row["credit_account"] in mine
    acct = mine[row["credit_account"] if credit_side else row["debit_account"]]
    amount = row["amount"] if credit_side else -row["amount"]
    # A post or void of a claim reads with the claim's title.
    title = row["memo"] or memos.get(row["pending_id"] or "") or labels.code_name(row["code"])
    flags = row["flags"]
    if flags & cr.T_PENDING:
        state = resolved.get(row["id"])
        note = (
            gettext("under review")
            if state is None
            else gettext("review finished, see the next line")
            if state & cr.T_POST_PENDING
            else gettext("not approved")
        )
    elif flags & cr.T_POST_PENDING:
        note = gettext("approved")
    elif flags & cr.T_VOID_PENDING:
        note, amount = gettext("withdrawn, nothing counted"), 0
    elif row["reverses_id"]:
        note = gettext("reversal")
    elif acct["kind"] == "overflow":
        note = gettext("recorded, not counted (over a cap)")
    else:
        note = ""
    return {
        "seq": row["seq"],
        "date": row["effective_date"],
        "ledger": acct["ledger"],
        "amount": amount,
        "title": f"{title}（{note}）" if note else title,
    }


def issue_transcript(
    user: User, year: int, *, actor: User | None = None, now: dt.datetime | None = None, reason: str | None = None
) -> Credential:
    """Issue (and commit) a transcript of ``user``'s credit for ``year``.

    ``reason``: why an administrator re-issued it (kept in the audited event).
    """
    if not 2000 <= year <= 2100:
        raise TranscriptError(gettext("The year must be between 2000 and 2100."))
    now = now or dt.datetime.now(dt.UTC)
    log.sync_journal()
    key = issuer_key()

    log._lock(cr.JOURNAL_LOG)
    journal = log.stored_tree(cr.JOURNAL_LOG)  # proofs from stored nodes: no rebuild
    jcp = log.sign_checkpoint(cr.JOURNAL_LOG, journal.size, now)

    accounts = list(
        db.session.scalars(
            select(Account)
            .where(
                Account.owner_id == user.id,
                Account.period == year,
                Account.kind.in_([AccountKind.COUNTED, AccountKind.OVERFLOW]),
            )
            .order_by(Account.id)
        )
    )
    acct_keys = log.account_keys({a.id for a in accounts})
    mine = {
        acct_keys[a.id]: {"key": acct_keys[a.id], "ledger": acct_keys[a.id].split("/")[0], "kind": str(a.kind)}
        for a in accounts
    }
    ids = [a.id for a in accounts]
    transfers = (
        list(
            db.session.scalars(
                select(Transfer)
                .where(or_(Transfer.debit_account_id.in_(ids), Transfer.credit_account_id.in_(ids)))
                .order_by(Transfer.seq)
            )
        )
        if ids
        else []
    )
    index = dict(
        db.session.execute(
            select(LogLeaf.seq, LogLeaf.idx).where(
                LogLeaf.log == cr.JOURNAL_LOG, LogLeaf.seq.in_([t.seq for t in transfers])
            )
        ).all()
    )
    # Rows committed after the checkpoint are left for the next transcript.
    transfers = [t for t in transfers if index.get(t.seq, journal.size) < journal.size]
    rows = log._rows_with_keys(transfers)
    paths = journal.inclusion_proofs([index[t.seq] for t in transfers])
    entries = [cr.proof_entry(r, index[t.seq], path) for t, r, path in zip(transfers, rows, paths, strict=True)]
    resolved = {r["pending_id"]: r["flags"] for r in rows if r["flags"] & (cr.T_POST_PENDING | cr.T_VOID_PENDING)}
    memos = {r["id"]: r["memo"] for r in rows if r["memo"]}
    balances = cr.recompute_balances(mine.values(), rows)
    used = {m["ledger"] for m in mine.values()}

    previous = current(user.id, year)
    cid = str(uuid.uuid4())
    org = getattr(user, "org_unit", None)
    payload: dict[str, Any] = {
        "type": cr.PAYLOAD_TYPE,
        "id": cid,
        "issuer": {"name": gettext("Cadre Online Academy"), "key": keys.public_text(key.public_key())},
        "subject": {
            "user_id": user.id,
            "username": user.username,
            "full_name": user.full_name,
            "org_unit": org.name if org is not None else None,
        },
        "year": year,
        "issued_at": _iso(now),
        "supersedes": previous.id if previous else None,
        "ledgers": [{"code": code, "name": labels.ledger_name(code)} for _, code, _name in LEDGERS if code in used],
        "accounts": sorted(mine.values(), key=lambda a: a["key"]),
        "balances": [{"ledger": code, **balances[code]} for code in sorted(balances)],
        "policy_versions": sorted({r["policy_version"] for r in rows if r["policy_version"] is not None}),
        "lines": [_line(r, mine, resolved, memos) for r in rows],
        "verify_url": verify_url(cid),
        "journal": {"checkpoint": jcp.as_dict(), "entries": entries},
    }
    signed = cr.sign_credential(key, payload)
    (idx,) = log.append(cr.CREDENTIAL_LOG, [(cr.credential_leaf(payload), {"credential_id": cid})])
    ctree = log.stored_tree(cr.CREDENTIAL_LOG)
    ccp = log.sign_checkpoint(cr.CREDENTIAL_LOG, ctree.size, now)
    bundle = {
        "format": cr.BUNDLE_FORMAT,
        "credential": signed,
        "credential_log": {
            "index": idx,
            "size": ctree.size,
            "path": [p.hex() for p in ctree.inclusion_proof(idx)],
            "checkpoint": ccp.as_dict(),
        },
    }
    raw = pdf.bundle_bytes(bundle)
    sealed = pdf.seal(pdf.render(payload, raw, gettext), key)
    cred = Credential(
        id=cid,
        user_id=user.id,
        year=year,
        digest=cr.digest(payload),
        bundle=raw.decode("utf-8"),
        pdf=sealed,
        kid=keys.key_id(key.public_key()),
        log_idx=idx,
        supersedes_id=previous.id if previous else None,
        issued_by=actor.id if actor else None,
        issued_at=now,
    )
    db.session.add(cred)
    db.session.flush()
    if previous is not None:
        db.session.add(
            CredentialStatus(
                credential_id=previous.id,
                state=CredentialState.SUPERSEDED,
                replaced_by=cid,
                actor_id=actor.id if actor else None,
                created_at=now,
            )
        )
    emit(
        "credit.transcript_issued",
        actor=actor,
        obj=cred,
        org_unit_id=user.org_unit_id,
        payload={
            "user_id": user.id,
            "year": year,
            "digest": cred.digest,
            "supersedes": cred.supersedes_id,
            **({"reason": reason} if reason else {}),
        },
    )
    db.session.commit()
    return cred


@dataclass
class Status:
    """A credential's standing as the server knows it now."""

    state: str  #: "valid", "superseded" or "revoked"
    record: CredentialStatus | None
    #: The transcript that replaced this one (a re-issue), also when it was then revoked.
    replaced_by: str | None = None


def status_of(cred: Credential) -> Status:
    rows = list(
        db.session.scalars(
            select(CredentialStatus).where(CredentialStatus.credential_id == cred.id).order_by(CredentialStatus.id)
        )
    )
    revoked = [r for r in rows if r.state == CredentialState.REVOKED]
    replaced = next((r.replaced_by for r in reversed(rows) if r.replaced_by), None)
    if revoked:
        return Status("revoked", revoked[-1], replaced)
    if rows:
        return Status("superseded", rows[-1], replaced)
    return Status("valid", None)


def current(user_id: int, year: int) -> Credential | None:
    """The cadre's latest transcript for ``year`` that is neither superseded nor revoked."""
    for cred in db.session.scalars(
        select(Credential)
        .where(Credential.user_id == user_id, Credential.year == year)
        .order_by(Credential.issued_at.desc())
    ):
        if status_of(cred).state == "valid":
            return cred
    return None


def for_user(user_id: int) -> list[tuple[Credential, Status]]:
    creds = db.session.scalars(
        select(Credential)
        .where(Credential.user_id == user_id)
        .order_by(Credential.year.desc(), Credential.issued_at.desc())
    )
    return [(c, status_of(c)) for c in creds]


def find(credential_id: str) -> Credential | None:
    try:
        canonical_id = str(uuid.UUID(credential_id))
    except ValueError:
        return None
    if len(credential_id) != _UUID_LEN or canonical_id != credential_id:
        return None
    return db.session.get(Credential, canonical_id)


def revoke(cred: Credential, reason: str, *, actor: User | None = None) -> CredentialStatus:
    """Withdraw a transcript (the verification page then says so, with the reason)."""
    reason = reason.replace("\x00", "").strip()[:1000]
    if not reason:
        raise TranscriptError(gettext("A reason is required to revoke a transcript."))
    if status_of(cred).state == "revoked":
        raise TranscriptError(gettext("This transcript is already revoked."))
    row = CredentialStatus(
        credential_id=cred.id, state=CredentialState.REVOKED, reason=reason, actor_id=actor.id if actor else None
    )
    db.session.add(row)
    owner = db.session.get(User, cred.user_id)
    emit(
        "credit.transcript_revoked",
        actor=actor,
        obj=cred,
        org_unit_id=owner.org_unit_id if owner else None,
        payload={"user_id": cred.user_id, "year": cred.year, "reason": reason},
    )
    db.session.commit()
    return row


def status_list(now: dt.datetime | None = None) -> dict[str, Any]:
    """The signed status list (``proofs.status_list``): every revoked or superseded transcript.

    Read in one transaction: the credentials logged so far (``credential_log_size``) and
    every status row, so a transcript the list covers and does not name was neither revoked
    nor re-issued when the list was signed.
    """
    from sqlalchemy import func

    from lms_core.db import utcnow
    from plugins.credit_bank.proofs import status_list as sl

    top = db.session.execute(select(func.max(Credential.log_idx))).scalar_one_or_none()
    by_credential: dict[str, list[CredentialStatus]] = {}
    for row in db.session.scalars(select(CredentialStatus).order_by(CredentialStatus.id)):
        by_credential.setdefault(row.credential_id, []).append(row)
    entries = []
    for cid, rows in by_credential.items():
        revoked = [r for r in rows if r.state == CredentialState.REVOKED]
        replaced = next((r.replaced_by for r in reversed(rows) if r.replaced_by), None)
        last = revoked[-1] if revoked else rows[-1]
        entries.append(
            {
                "id": cid,
                "state": "revoked" if revoked else "superseded",
                "since": _iso(last.created_at),
                "reason": last.reason if revoked else None,
                "replaced_by": replaced,
            }
        )
    return sl.build(issuer_key(), entries, 0 if top is None else int(top) + 1, now or utcnow())
