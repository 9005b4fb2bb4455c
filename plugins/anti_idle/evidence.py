"""Evidence lines: every deduction and flag as a sentence a cadre understands.

A line is stored as an English msgid with parameters and rendered through the
plugin's catalogue when shown (Chinese by default): the span in Beijing time, the
rule, the threshold and the amount, e.g. ``14:02–14:31 同时播放 2 个课程，按 1 路计入，
扣减 29 分钟``. ``beat_ids`` links the line to the raw beats it relied on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from plugins.anti_idle import els
from plugins.anti_idle.models import Beat, DayVerdict, Evidence

if TYPE_CHECKING:
    from plugins.anti_idle.policy import PolicyVersion
    from plugins.anti_idle.verdicts import Derived


def N_(message: str) -> str:  # noqa: N802 - the conventional no-op marker Babel extracts
    """Mark a msgid for extraction; it is stored as is and translated when shown."""
    return message


#: Beats further apart than this start a new line for the same rule.
JOIN_GAP = dt.timedelta(seconds=60)
#: At most this many beat ids are kept on one line (the span names the rest).
MAX_BEAT_IDS = 500

#: rule -> (action, severity, message). Messages take %(start)s, %(end)s, %(amount)s and
#: the rule's threshold parameters.
RULES: dict[str, tuple[str, str, str]] = {
    "R01": (
        "deduct",
        "medium",
        N_("%(start)s–%(end)s played faster than the allowed %(rate)s×, %(amount)s not counted (R01)"),
    ),
    "R03": (
        "void",
        "critical",
        N_(
            "%(start)s–%(end)s progress reported beyond the time that really passed "
            "(forged or replayed), %(amount)s void (R03)"
        ),
    ),
    "R04": (
        "deduct",
        "medium",
        N_("%(start)s–%(end)s %(streams)s lessons playing at once, counted as one, %(amount)s deducted (R04)"),
    ),
    "R05": (
        "deduct",
        "low",
        N_(
            "%(start)s–%(end)s the lesson played in a hidden or minimised window beyond "
            "the %(grace)s-second grace, %(amount)s deducted (R05)"
        ),
    ),
    "R07": (
        "deduct",
        "info",
        N_(
            "%(start)s–%(end)s an attention check was not answered within %(window)s "
            "seconds; not counted until answered, %(amount)s deducted (R07)"
        ),
    ),
    "R07b": (
        "void",
        "high",
        N_(
            "%(start)s–%(end)s an attention check was answered by a script (not a real "
            "click, or faster than %(floor)s ms), %(amount)s void (R07)"
        ),
    ),
    "R10": (
        "deduct",
        "low",
        N_("%(start)s–%(end)s beyond %(ratio)s times the lesson's length, %(amount)s not counted (R10)"),
    ),
    "R10a": (
        "hold",
        "medium",
        N_("%(start)s–%(end)s beyond the daily limit of %(hours)s hours, %(amount)s held for audit (R10)"),
    ),
    "R14": (
        "void",
        "critical",
        N_("%(start)s–%(end)s the server did not send the video for this viewing, %(amount)s void (R14)"),
    ),
    "R16": (
        "deduct",
        "medium",
        N_(
            "%(start)s–%(end)s the same part of the video was reported again without "
            "going back to it, %(amount)s not counted (R16)"
        ),
    ),
}
FLAGS: dict[str, str] = {
    "R11": N_("%(start)s–%(end)s the browser reported that it is driven by automation (R11)"),
    "R13": N_("%(start)s–%(end)s the page claimed to be visible but drew nothing (R13)"),
}
HANDOFF = N_("%(start)s–%(end)s a short overlap while switching devices, counted once (R04)")
HELD = N_("Review score %(score)s reached %(threshold)s: the day's study is held for audit")


def fmt_amount(ms: int) -> str:
    minutes, seconds = divmod(round(ms / 1000), 60)
    if minutes and seconds:
        return _("%(minutes)s min %(seconds)s s", minutes=minutes, seconds=seconds)
    if minutes:
        return _("%(minutes)s min", minutes=minutes)
    return _("%(seconds)s s", seconds=seconds)


def fmt_time(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).astimezone(els.SHANGHAI).strftime("%H:%M")


def render(line: Evidence) -> str:
    """The line in the current locale."""
    params = dict(line.params)
    params["start"], params["end"] = fmt_time(line.span_start.isoformat()), fmt_time(line.span_end.isoformat())
    params["amount"] = fmt_amount(line.amount_ms)
    return _(line.message, **params)


def _threshold(rule: str, policy: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "R01": {"rate": max(policy["allowed_rates"])},
        "R04": {"handoff_s": policy["handoff_seconds"]},
        "R05": {"grace": policy["hidden_grace_seconds"]},
        "R07": {"window": policy["check_window_seconds"]},
        "R07b": {"floor": policy["human_latency_floor_ms"]},
        "R10": {"ratio": policy["lesson_cap_ratio"]},
        "R10a": {"hours": round(int(policy["day_cap_seconds"]) / 3600, 1)},
    }.get(rule, {})


@dataclass
class _Group:
    rule: str
    session_id: str
    lesson_id: int
    start: dt.datetime
    end: dt.datetime
    amount: int = 0
    beat_ids: list[int] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)


def build_lines(
    v: DayVerdict, outcomes: Sequence[tuple[Beat, els.Outcome]], policy: PolicyVersion, derived: Derived
) -> list[Evidence]:
    """The evidence lines of one day, in time order."""
    open_groups: dict[tuple[str, str], _Group] = {}
    done: list[_Group] = []
    playing: list[tuple[dt.datetime, dt.datetime, str]] = [
        (b.wall_start, b.received_at, b.session_id) for b, _o in outcomes if b.claimed
    ]
    for b, o in outcomes:
        items = [(rule, amount) for rule, amount in o.cuts.items() if amount > 0]
        items += [(flag, 0) for flag in o.flags if flag in FLAGS]
        for rule, amount in items:
            # Parallel streams are one line per person (the streams are named in it).
            key = (rule, "*" if rule == "R04" else b.session_id)
            g = open_groups.get(key)
            if g is None or b.wall_start - g.end > JOIN_GAP:
                if g is not None:
                    done.append(g)
                g = _Group(rule, b.session_id, b.lesson_id, b.wall_start, b.received_at)
                open_groups[key] = g
            g.end = b.received_at
            g.amount += amount
            if len(g.beat_ids) < MAX_BEAT_IDS:
                g.beat_ids.append(b.id)
    done.extend(open_groups.values())
    lines = []
    for g in sorted(done, key=lambda g: (g.start, g.rule)):
        threshold = _threshold(g.rule, policy.params)
        params: dict[str, Any] = dict(threshold)
        if g.rule in FLAGS:
            action, severity, message, score = "score", "high", FLAGS[g.rule], derived.scores.get(g.rule, 0)
        elif g.rule == "R04" and g.amount <= int(policy["handoff_seconds"]) * 1000:
            action, severity, message, score = "info", "info", HANDOFF, 0
        else:
            action, severity, message = RULES[g.rule]
            score = derived.scores.get(g.rule, 0)
        if g.rule == "R04":
            params["streams"] = max(2, len({s for s0, s1, s in playing if s0 < g.end and s1 > g.start}))
        lines.append(
            Evidence(
                day_verdict_id=v.id,
                user_id=v.user_id,
                day=v.day,
                lesson_id=g.lesson_id,
                rule=g.rule,
                action=action,
                severity=severity,
                span_start=g.start,
                span_end=g.end,
                amount_ms=g.amount,
                score=score,
                threshold=threshold,
                message=message,
                params=params,
                beat_ids=g.beat_ids,
                policy_version=policy.version,
            )
        )
    if derived.verdict == "held" and derived.score >= int(policy["hold_score"]):
        first = outcomes[0][0].wall_start
        last = outcomes[-1][0].received_at
        lines.append(
            Evidence(
                day_verdict_id=v.id,
                user_id=v.user_id,
                day=v.day,
                lesson_id=None,
                rule="HOLD",
                action="hold",
                severity="high",
                span_start=first,
                span_end=last,
                amount_ms=derived.held_ms,
                score=derived.score,
                threshold={"hold_score": policy["hold_score"]},
                message=HELD,
                params={"score": derived.score, "threshold": policy["hold_score"]},
                beat_ids=[],
            )
        )
    return lines
