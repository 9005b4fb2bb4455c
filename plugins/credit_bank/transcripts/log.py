"""The two Merkle logs in the database: appending leaves, signing checkpoints, replay checks.

The journal log gains one leaf per journal row when :func:`sync_journal` runs (before each
transcript is issued, and by ``flask lms credit checkpoint``), so posting credit never waits
on the log. Leaves are appended under a per-log lock (an advisory lock on PostgreSQL; SQLite
serialises writers anyway) and a unique index on (log, idx) backs it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import exists, func, select, text

from lms_core.extensions import db
from plugins.credit_bank.models import Transfer
from plugins.credit_bank.proofs import credential as cr
from plugins.credit_bank.proofs import keys, merkle
from plugins.credit_bank.proofs.canonical import CanonicalError, parse
from plugins.credit_bank.transcripts.issuer_key import issuer_key
from plugins.credit_bank.transcripts.models import Checkpoint, Credential, LogLeaf

Echo = Callable[[str], None]
_LOCK_IDS = {cr.JOURNAL_LOG: 0x43524A4C, cr.CREDENTIAL_LOG: 0x43524352}


def _lock(log: str) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_IDS[log]})


def size(log: str) -> int:
    return int(db.session.scalar(select(func.count()).select_from(LogLeaf).where(LogLeaf.log == log)) or 0)


def append(log: str, leaves: Iterable[tuple[bytes, dict[str, Any]]]) -> list[int]:
    """Append leaves (hash, extra columns) to ``log`` in this transaction; returns their indexes."""
    _lock(log)
    n = size(log)
    out = []
    for leaf, extra in leaves:
        db.session.add(LogLeaf(log=log, idx=n, leaf_hash=leaf.hex(), **extra))
        out.append(n)
        n += 1
    db.session.flush()
    return out


def journal_row(t: Transfer, accounts: dict[int, str]) -> dict[str, Any]:
    """The canonical journal row (credit-ledger's stable dict) that a journal leaf hashes."""
    from plugins.credit_bank.ledger import transfer_as_dict

    return transfer_as_dict(t, accounts)


def account_keys(ids: set[int]) -> dict[int, str]:
    from plugins.credit_bank.ledger import _account_keys

    return _account_keys(ids)


def _rows_with_keys(transfers: list[Transfer]) -> list[dict[str, Any]]:
    ids = {t.debit_account_id for t in transfers} | {t.credit_account_id for t in transfers}
    keys_ = account_keys(ids)
    return [journal_row(t, keys_) for t in transfers]


def sync_journal(*, batch: int = 2000, progress: Echo | None = None) -> int:
    """Log every journal row not yet in the journal log; commits per batch; returns how many."""
    total = 0
    while True:
        _lock(cr.JOURNAL_LOG)
        logged = exists().where(LogLeaf.log == cr.JOURNAL_LOG, LogLeaf.seq == Transfer.seq)
        rows = list(db.session.scalars(select(Transfer).where(~logged).order_by(Transfer.seq).limit(batch)))
        if not rows:
            db.session.commit()
            return total
        append(
            cr.JOURNAL_LOG,
            [(cr.journal_leaf(r), {"seq": t.seq}) for t, r in zip(rows, _rows_with_keys(rows), strict=True)],
        )
        db.session.commit()
        total += len(rows)
        if progress:
            progress(f"logged {total:,} journal rows")


def leaf_hashes(log: str, upto: int | None = None) -> list[bytes]:
    q = select(LogLeaf.leaf_hash).where(LogLeaf.log == log).order_by(LogLeaf.idx)
    if upto is not None:
        q = q.where(LogLeaf.idx < upto)
    return [bytes.fromhex(h) for h in db.session.scalars(q)]


def sign_checkpoint(log: str, leaves: list[bytes], now: dt.datetime | None = None) -> Checkpoint:
    """Sign and store the tree head of ``leaves`` (the whole log as read in this transaction)."""
    signed = cr.sign_checkpoint(issuer_key(), log, len(leaves), merkle.root(leaves), now or dt.datetime.now(dt.UTC))
    cp = Checkpoint(**signed)
    db.session.add(cp)
    db.session.flush()
    return cp


def latest_checkpoint(log: str) -> Checkpoint | None:
    return db.session.scalars(
        select(Checkpoint).where(Checkpoint.log == log).order_by(Checkpoint.size.desc(), Checkpoint.id.desc()).limit(1)
    ).first()


def checkpoint_now(progress: Echo | None = None) -> tuple[Checkpoint, Checkpoint]:
    """Log the journal's new rows, then sign both logs' current heads (``flask lms credit checkpoint``)."""
    sync_journal(progress=progress)
    _lock(cr.JOURNAL_LOG)
    jcp = sign_checkpoint(cr.JOURNAL_LOG, leaf_hashes(cr.JOURNAL_LOG))
    _lock(cr.CREDENTIAL_LOG)
    ccp = sign_checkpoint(cr.CREDENTIAL_LOG, leaf_hashes(cr.CREDENTIAL_LOG))
    db.session.commit()
    return jcp, ccp


# -- replay ------------------------------------------------------------------------------------


def check_logs(echo: Echo) -> int:
    """``credit replay``: recompute both logs from the journal and the credentials.

    Every journal leaf must be the hash of its row as it reads today, every credential leaf
    the hash of its stored payload; every stored checkpoint must carry the issuer's valid
    signature over the root recomputed from the first ``size`` leaves (which also proves any
    two checkpoints consistent). Journal rows not yet logged are reported, not counted as
    mismatches: they are logged at the next checkpoint.
    """
    problems = 0
    journal: list[bytes] = []
    chunk = 20_000
    last = -1
    while True:
        leaves = list(
            db.session.execute(
                select(LogLeaf.idx, LogLeaf.leaf_hash, LogLeaf.seq)
                .where(LogLeaf.log == cr.JOURNAL_LOG, LogLeaf.idx > last)
                .order_by(LogLeaf.idx)
                .limit(chunk)
            )
        )
        if not leaves:
            break
        seqs = [x.seq for x in leaves]
        transfers = {t.seq: t for t in db.session.scalars(select(Transfer).where(Transfer.seq.in_(seqs)))}
        rows = dict(zip(transfers, _rows_with_keys(list(transfers.values())), strict=True))
        for x in leaves:
            if x.idx != len(journal):
                echo(f"MISMATCH journal log: leaf {len(journal)} is missing")
                problems += 1
            row = rows.get(x.seq)
            if row is None:
                echo(f"MISMATCH journal log: leaf {x.idx} names journal row {x.seq}, which is gone")
                problems += 1
                journal.append(bytes.fromhex(x.leaf_hash))
                continue
            leaf = cr.journal_leaf(row)
            if leaf.hex() != x.leaf_hash:
                echo(f"MISMATCH journal row {x.seq} (leaf {x.idx}) no longer matches its logged hash")
                problems += 1
            journal.append(leaf)
        last = leaves[-1].idx
        echo(f"hashed {len(journal):,} journal rows")
    logged = exists().where(LogLeaf.log == cr.JOURNAL_LOG, LogLeaf.seq == Transfer.seq)
    unlogged = db.session.scalar(select(func.count()).select_from(Transfer).where(~logged)) or 0
    echo(f"journal log: {len(journal)} leaves, root {merkle.root(journal).hex()}; {unlogged} newer rows not yet logged")

    creds: list[bytes] = []
    for c in db.session.execute(
        select(LogLeaf.idx, LogLeaf.leaf_hash, LogLeaf.credential_id)
        .where(LogLeaf.log == cr.CREDENTIAL_LOG)
        .order_by(LogLeaf.idx)
    ):
        stored = db.session.get(Credential, c.credential_id)
        leaf = bytes.fromhex(c.leaf_hash)
        try:
            payload = parse(stored.bundle.encode())["credential"]["payload"] if stored else None
            ok = payload is not None and cr.credential_leaf(payload) == leaf
        except (CanonicalError, KeyError, TypeError):
            ok = False
        if not ok:
            echo(f"MISMATCH credential {c.credential_id} (leaf {c.idx}) no longer matches its logged hash")
            problems += 1
            leaf = bytes.fromhex(c.leaf_hash)
        creds.append(leaf)
    echo(f"credential log: {len(creds)} leaves, root {merkle.root(creds).hex()}")

    checkpoints = list(db.session.scalars(select(Checkpoint).order_by(Checkpoint.id)))
    if not checkpoints:
        echo("no checkpoint signed yet")
        return problems
    pub = issuer_key().public_key()
    logs = {cr.JOURNAL_LOG: journal, cr.CREDENTIAL_LOG: creds}
    roots = {
        name: merkle.roots_at(leaves, [c.size for c in checkpoints if c.log == name]) for name, leaves in logs.items()
    }
    for cp in checkpoints:
        if not cr.verify_checkpoint(pub, cp.as_dict(), cp.log):
            echo(f"MISMATCH checkpoint {cp.id} ({cp.log}, size {cp.size}): signature does not verify")
            problems += 1
        elif cp.log not in roots or roots[cp.log].get(cp.size, b"").hex() != cp.root:
            echo(f"MISMATCH checkpoint {cp.id} ({cp.log}, size {cp.size}): root differs from the recomputed log")
            problems += 1
    echo(f"checked {len(checkpoints)} checkpoints against key {keys.key_id(pub)}")
    return problems


def consistency_with_latest(cp: dict[str, Any]) -> tuple[bool, int] | None:
    """Whether the log named in a (signed, already checked) checkpoint still extends it.

    Proves with an RFC 6962 consistency proof that the tree the checkpoint signed is a prefix
    of the latest signed checkpoint's tree: nothing logged by then was changed or removed
    since. Returns (ok, latest size), or None when there is nothing newer to compare with.
    """
    latest = latest_checkpoint(str(cp.get("log")))
    size_ = cp.get("size")
    if latest is None or not isinstance(size_, int) or isinstance(size_, bool) or size_ < 1:
        return None
    if latest.size < size_:
        return False, latest.size
    leaves = leaf_hashes(latest.log, upto=latest.size)
    proof = merkle.consistency_proof(size_, leaves)
    old_root, new_root = bytes.fromhex(str(cp["root"])), bytes.fromhex(latest.root)
    ok = merkle.verify_consistency(size_, latest.size, proof, old_root, new_root)
    return ok, latest.size


def consistency_proof_between(log_name: str, first: int, second: int) -> dict[str, Any] | None:
    """An RFC 6962 consistency proof between two stored checkpoints' sizes, for auditors."""
    cps = {
        c.size: c
        for c in db.session.scalars(
            select(Checkpoint).where(Checkpoint.log == log_name, Checkpoint.size.in_([first, second]))
        )
    }
    if first not in cps or second not in cps or not 0 < first <= second:
        return None
    leaves = leaf_hashes(log_name, upto=second)
    return {
        "log": log_name,
        "first": cps[first].as_dict(),
        "second": cps[second].as_dict(),
        "proof": [p.hex() for p in merkle.consistency_proof(first, leaves)],
    }
