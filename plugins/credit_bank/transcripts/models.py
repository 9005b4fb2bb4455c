"""Tables of the transparency logs and the issued credentials. All append-only.

* ``credit_log_leaves``: one row per leaf of a log (``journal``: one per journal row, by
  ``seq``; ``credentials``: one per issued credential). Leaf ``idx`` is dense from 0.
* ``credit_checkpoints``: signed tree heads; the consistency of any two is checkable.
* ``credit_credentials``: issued transcripts with their signed payload and the sealed PDF.
* ``credit_credential_status``: later facts about a credential (superseded by a re-issue,
  revoked with a reason). A credential row itself never changes; its status is the latest
  status row.

The migration installs triggers that refuse UPDATE and DELETE on all four, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.db import Base, UTCDateTime, bigint_pk, str_enum, utcnow


class LogLeaf(Base):
    __tablename__ = "credit_log_leaves"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    #: ``journal`` or ``credentials`` (see proofs.credential).
    log: Mapped[str] = mapped_column(String(16))
    #: Leaf index, dense from 0 within the log.
    idx: Mapped[int] = mapped_column(BigInteger)
    #: RFC 6962 leaf hash, hex.
    leaf_hash: Mapped[str] = mapped_column(String(64))
    #: The journal row a ``journal`` leaf stands for (``credit_transfers.seq``). Leaves are in
    #: the order rows were logged, which may differ from ``seq`` order when transactions
    #: commit out of order; replay follows the leaves.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    #: The credential a ``credentials`` leaf stands for.
    credential_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_credit_log_leaves_log_idx", "log", "idx", unique=True),)


class LogNode(Base):
    """A stored interior node of a log's Merkle tree (``proofs.merkle.StoredTree``).

    Node (``level``, ``idx``) is the root of the complete subtree over leaves
    ``[idx << level, (idx + 1) << level)``; it is written once, in the transaction that appends
    its last leaf, and never changes (append-only like the leaves). Level 0 is the leaves
    themselves (``credit_log_leaves``), not repeated here. Tree heads and proofs read O(log n)
    of these instead of rebuilding the tree from every leaf.
    """

    __tablename__ = "credit_log_nodes"

    log: Mapped[str] = mapped_column(String(16), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: SHA-256 node hash, hex (as the leaves).
    hash: Mapped[str] = mapped_column(String(64))


class Checkpoint(Base):
    __tablename__ = "credit_checkpoints"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    log: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(64))
    #: The signed time, as in the signed body (``YYYY-MM-DDTHH:MM:SSZ``).
    time: Mapped[str] = mapped_column(String(20))
    kid: Mapped[str] = mapped_column(String(16))
    sig: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_credit_checkpoints_log_size", "log", "size"),)

    def as_dict(self) -> dict[str, object]:
        """The signed checkpoint exactly as carried in bundles."""
        return {
            "log": self.log,
            "size": self.size,
            "root": self.root,
            "time": self.time,
            "kid": self.kid,
            "sig": self.sig,
        }


class Credential(Base):
    __tablename__ = "credit_credentials"

    #: UUID, printed on the transcript and in the QR link.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    year: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="transcript")
    #: SHA-256 of the payload's canonical bytes (hex): the credential's fingerprint.
    digest: Mapped[str] = mapped_column(String(64))
    #: The bundle exactly as embedded in the PDF (JSON text).
    bundle: Mapped[str] = mapped_column(Text)
    #: The sealed PDF, so a download returns the very file that was issued.
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    kid: Mapped[str] = mapped_column(String(16))
    log_idx: Mapped[int] = mapped_column(BigInteger)
    supersedes_id: Mapped[str | None] = mapped_column(String(36))
    issued_by: Mapped[int | None] = mapped_column(Integer)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_credit_credentials_user_year", "user_id", "year"),)


class CredentialState(enum.StrEnum):
    SUPERSEDED = "superseded"  #: a newer transcript for the same cadre and year replaced it
    REVOKED = "revoked"  #: withdrawn by an administrator, with a reason


class CredentialStatus(Base):
    __tablename__ = "credit_credential_status"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    credential_id: Mapped[str] = mapped_column(ForeignKey("credit_credentials.id", ondelete="RESTRICT"), index=True)
    state: Mapped[CredentialState] = mapped_column(str_enum(CredentialState, 16))
    #: For a supersession, the credential that replaced it.
    replaced_by: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
