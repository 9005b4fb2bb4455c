"""What a tracking plugin sees of a heartbeat, and what it answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any

from lms_core.learning.segments import Segment

CREDIT, REDUCE, VOID = "credit", "reduce", "void"
_SEVERITY = {CREDIT: 0, REDUCE: 1, VOID: 2}


def span_ms(delta: dt.timedelta) -> int:
    """Whole milliseconds of ``delta``, truncated toward zero, counted in integers.

    Through float seconds (``int(delta.total_seconds() * 1000)``) 1.001 s reads as 1,000 ms
    (1.001 * 1000 < 1001): 741 of the first 100,000 whole-millisecond spans come out 1 ms
    short. The anti-idle plugin's ``els.ms`` counts the same way, so the core's budget for a
    beat and the plugin's agree to the millisecond.
    """
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return us // 1000 if us >= 0 else -(-us // 1000)


@dataclass(frozen=True)
class IntervalClaim:
    """One heartbeat's claim, with the server's own observations."""

    user_id: int
    lesson_id: int
    session_id: str
    seq: int
    lesson_kind: str
    event: str
    #: Server receive time of the previous beat (or session start) and of this one.
    wall_start: dt.datetime
    wall_end: dt.datetime
    #: Media ranges in ms as claimed (already clipped to the media's duration). For a
    #: reading lesson (document) it is one range ``(0, visible_ms)``: the reading time
    #: claimed, so a verdict reduces reading exactly as it reduces viewing.
    claimed: tuple[Segment, ...]
    position_ms: int
    media_duration_ms: int | None
    #: Bytes served so far under this session's signed media URL (None: not a media lesson).
    bytes_served: int | None
    #: Raw client signals (visibility, input counts, playback rate ...): corroborating only.
    client: dict[str, Any] = field(default_factory=dict)
    #: Time the page reported visible during the interval (client-reported).
    visible_ms: int = 0
    #: Where the person's credited time reached before this beat (the core's person
    #: clock): the core credits only time after it, so plugins can place this
    #: interval's credit on the person's timeline at ``[credit_from, wall_end]``.
    credit_from: dt.datetime | None = None
    #: Server launch time of the session, and the media file's size in bytes.
    session_started_at: dt.datetime | None = None
    media_size: int | None = None
    course_id: int | None = None
    #: The session's last ``seq`` the core took before this beat. Beats that claim nothing
    #: (paused, hidden) reach no plugin, so a plugin's own last ``seq`` has gaps that are
    #: not missing beats; this one has a gap only when a beat never arrived.
    previous_seq: int | None = None

    @property
    def wall_ms(self) -> int:
        return max(0, span_ms(self.wall_end - self.wall_start))

    @classmethod
    def of(cls, **values: Any) -> IntervalClaim:
        """The claim ``IntervalClaim(**values)`` builds, when ``values`` names every field.

        A frozen dataclass's ``__init__`` sets each field by ``object.__setattr__`` (nineteen
        calls and the defaults: about a tenth of ``record_beat``'s own Python per beat); this
        fills the instance's ``__dict__`` at once. Any other set of names (one missing, one
        unknown) goes through ``__init__``, which says what is wrong."""
        if values.keys() != _CLAIM_FIELDS:
            return cls(**values)
        claim = object.__new__(cls)
        claim.__dict__.update(values)
        return claim


_CLAIM_FIELDS = frozenset(f.name for f in fields(IntervalClaim))


@dataclass(frozen=True)
class Verdict:
    """A judgement: the ranges to credit (a subset of the claim) and why."""

    verdict: str  # credit | reduce | void
    credited: tuple[Segment, ...]
    reason: str = ""
    code: str = ""
    #: Study time to credit when it is more than the ranges measure (playback slower
    #: than 1x takes longer than the media it covers); None: the ranges' measure. The
    #: core never credits more than its own wall-clock budget for the beat.
    credited_ms: int | None = None
    #: Fields the plugin adds to the beat's JSON answer (e.g. anti-idle's ``check``: that
    #: an attention check waits, so the player asks for it). Sent to the learner's page:
    #: never a secret. The core's own fields win a name clash; among plugins, the first.
    answer: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.verdict not in _SEVERITY:
            raise ValueError(f"unknown verdict {self.verdict!r}")


def worst(verdicts: list[str]) -> str:
    return max(verdicts, key=lambda v: _SEVERITY[v]) if verdicts else CREDIT
