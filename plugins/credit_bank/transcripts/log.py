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

from sqlalchemy import exists, func, insert, select, text

from lms_core.extensions import db
from plugins.credit_bank.models import JOURNAL_COLUMNS, Transfer
from plugins.credit_bank.proofs import credential as cr
from plugins.credit_bank.proofs import keys, merkle
from plugins.credit_bank.proofs.canonical import CanonicalError, parse
from plugins.credit_bank.transcripts.issuer_key import issuer_key
from plugins.credit_bank.transcripts.models import Checkpoint, Credential, LogLeaf, LogNode

Echo = Callable[[str], None]
_LOCK_IDS = {cr.JOURNAL_LOG: 0x43524A4C, cr.CREDENTIAL_LOG: 0x43524352}


def _lock(log: str) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_IDS[log]})


def size(log: str) -> int:
    """Leaves in ``log`` (dense indexes from 0: the last index + 1, read from the index)."""
    last = db.session.scalar(select(func.max(LogLeaf.idx)).where(LogLeaf.log == log))
    return 0 if last is None else int(last) + 1


def fetch_nodes(log: str) -> merkle.Fetch:
    """A reader of ``log``'s stored nodes for :class:`merkle.StoredTree` (level 0: the leaves)."""

    def fetch(need: set[merkle.Node]) -> dict[merkle.Node, bytes]:
        by_level: dict[int, list[int]] = {}
        for level, idx in need:
            by_level.setdefault(level, []).append(idx)
        out: dict[merkle.Node, bytes] = {}
        for level, idxs in by_level.items():
            for k in range(0, len(idxs), 1000):
                part = idxs[k : k + 1000]
                if level == 0:
                    q = select(LogLeaf.idx, LogLeaf.leaf_hash).where(LogLeaf.log == log, LogLeaf.idx.in_(part))
                else:
                    q = select(LogNode.idx, LogNode.hash).where(
                        LogNode.log == log, LogNode.level == level, LogNode.idx.in_(part)
                    )
                for idx, h in db.session.execute(q):
                    out[(level, idx)] = bytes.fromhex(h)
        missing = need - out.keys()
        if missing:
            raise LookupError(f"{log} log: stored nodes missing: {sorted(missing)[:5]}")
        return out

    return fetch


def stored_tree(log: str, size_: int | None = None) -> merkle.StoredTree:
    """``log``'s tree (at ``size_`` leaves, by default all) for roots and proofs from stored nodes."""
    return merkle.StoredTree(size(log) if size_ is None else size_, fetch_nodes(log))


def append(log: str, leaves: Iterable[tuple[bytes, dict[str, Any]]]) -> list[int]:
    """Append leaves (hash, extra columns) to ``log`` in this transaction; returns their indexes.

    Also stores the interior nodes the new leaves complete (O(log n) nodes read, amortised one
    hash per leaf), so tree heads and proofs never need the leaves again.
    """
    _lock(log)
    n = size(log)
    items = list(leaves)
    nodes = merkle.completed_nodes(n, [leaf for leaf, _ in items], fetch_nodes(log))
    rows = [{"log": log, "idx": n + i, "leaf_hash": leaf.hex(), **extra} for i, (leaf, extra) in enumerate(items)]
    if rows:
        now = dt.datetime.now(dt.UTC)
        db.session.execute(insert(LogLeaf), [{**r, "created_at": now} for r in rows])
    if nodes:
        db.session.execute(
            insert(LogNode), [{"log": log, "level": lv, "idx": i, "hash": h.hex()} for (lv, i), h in nodes.items()]
        )
    db.session.flush()
    return [n + i for i in range(len(items))]


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
        t = Transfer.__table__
        # Core rows (no ORM objects): logging is per journal row.
        rows = db.session.execute(
            select(*[t.c[name] for name in _ROW_COLUMNS]).where(~logged).order_by(t.c.seq).limit(batch)
        ).all()
        if not rows:
            db.session.commit()
            return total
        keys_ = account_keys({r.debit_account_id for r in rows} | {r.credit_account_id for r in rows})
        append(cr.JOURNAL_LOG, [(cr.journal_leaf(journal_row(r, keys_)), {"seq": r.seq}) for r in rows])  # type: ignore[arg-type]
        db.session.commit()
        total += len(rows)
        if progress:
            progress(f"logged {total:,} journal rows")


def leaf_hashes(log: str, upto: int | None = None) -> list[bytes]:
    q = select(LogLeaf.leaf_hash).where(LogLeaf.log == log).order_by(LogLeaf.idx)
    if upto is not None:
        q = q.where(LogLeaf.idx < upto)
    return [bytes.fromhex(h) for h in db.session.scalars(q)]


def sign_checkpoint(log: str, size_: int, now: dt.datetime | None = None) -> Checkpoint:
    """Sign and store the tree head of ``log``'s first ``size_`` leaves (root from stored nodes)."""
    root = stored_tree(log, size_).root()
    signed = cr.sign_checkpoint(issuer_key(), log, size_, root, now or dt.datetime.now(dt.UTC))
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
    jcp = sign_checkpoint(cr.JOURNAL_LOG, size(cr.JOURNAL_LOG))
    _lock(cr.CREDENTIAL_LOG)
    ccp = sign_checkpoint(cr.CREDENTIAL_LOG, size(cr.CREDENTIAL_LOG))
    db.session.commit()
    return jcp, ccp


# -- replay ------------------------------------------------------------------------------------


_ROW_COLUMNS = ("seq", *JOURNAL_COLUMNS)


def _all_account_keys() -> dict[int, str]:
    from plugins.credit_bank.ledger import ledger_code
    from plugins.credit_bank.models import Account

    return {
        r.id: f"{ledger_code(r.ledger_id)}/{r.kind.value}/{r.owner_id}/{r.period}"
        for r in db.session.execute(
            select(Account.id, Account.ledger_id, Account.kind, Account.owner_id, Account.period)
        )
    }


def _logged_hashes(log: str) -> list[str]:
    return list(db.session.scalars(select(LogLeaf.leaf_hash).where(LogLeaf.log == log).order_by(LogLeaf.idx)))


def _check_nodes(log: str, leaves: list[bytes], echo: Echo) -> int:
    """Every stored interior node equals the one recomputed from the logged leaves, and every
    complete subtree has its node (level by level: memory stays at two levels)."""
    problems = 0
    level, depth = leaves, 0
    while len(level) > 1:
        level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        depth += 1
        stored = dict(
            db.session.execute(
                select(LogNode.idx, LogNode.hash).where(LogNode.log == log, LogNode.level == depth)
            ).all()
        )
        bad = [i for i, h in enumerate(level) if stored.get(i) != h.hex()]
        extra = len(stored.keys() - set(range(len(level))))
        if bad or extra:
            echo(
                f"MISMATCH {log} log: {len(bad)} stored node(s) of level {depth} differ from the leaves"
                f" (first at index {bad[0] if bad else '-'}), {extra} beyond the tree"
            )
            problems += 1
    return problems


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
    chunk = 50_000
    last = -1
    accounts = _all_account_keys()
    t = Transfer.__table__
    leaf_t = LogLeaf.__table__
    # One query per chunk: the leaves joined to their journal rows (Core rows, no ORM objects),
    # accounts named from one dictionary read up front.
    cols = [t.c[name] for name in _ROW_COLUMNS]
    while True:
        batch = db.session.execute(
            select(leaf_t.c.idx, leaf_t.c.leaf_hash, leaf_t.c.seq.label("leaf_seq"), *cols)
            .select_from(leaf_t.outerjoin(t, t.c.seq == leaf_t.c.seq))
            .where(leaf_t.c.log == cr.JOURNAL_LOG, leaf_t.c.idx > last)
            .order_by(leaf_t.c.idx)
            .limit(chunk)
        ).all()
        if not batch:
            break
        for x in batch:
            if x.idx != len(journal):
                echo(f"MISMATCH journal log: leaf {len(journal)} is missing")
                problems += 1
            if x.seq is None:
                echo(f"MISMATCH journal log: leaf {x.idx} names journal row {x.leaf_seq}, which is gone")
                problems += 1
                journal.append(bytes.fromhex(x.leaf_hash))
                continue
            leaf = cr.journal_leaf(journal_row(x, accounts))  # type: ignore[arg-type]
            if leaf.hex() != x.leaf_hash:
                echo(f"MISMATCH journal row {x.seq} (leaf {x.idx}) no longer matches its logged hash")
                problems += 1
            journal.append(leaf)
        last = batch[-1].idx
        echo(f"hashed {len(journal):,} journal rows")
    problems += _check_nodes(cr.JOURNAL_LOG, [bytes.fromhex(h) for h in _logged_hashes(cr.JOURNAL_LOG)], echo)
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
    problems += _check_nodes(cr.CREDENTIAL_LOG, [bytes.fromhex(h) for h in _logged_hashes(cr.CREDENTIAL_LOG)], echo)

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
    proof = stored_tree(latest.log, latest.size).consistency_proof(size_)
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
    return {
        "log": log_name,
        "first": cps[first].as_dict(),
        "second": cps[second].as_dict(),
        "proof": [p.hex() for p in stored_tree(log_name, second).consistency_proof(first)],
    }
