"""Evidence lines: every deduction and flag as a sentence a cadre understands.

A line is stored as an English msgid with parameters and rendered through the
plugin's catalogue when shown (Chinese by default): the span in Beijing time, the
rule, the threshold and the amount, e.g. ``14:02–14:31 同时播放 2 个课程，按 1 路计入，
扣减 29 分钟``. ``beat_ids`` links the line to the raw beats it relied on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flask_babel import gettext as _

from plugins.anti_idle import els
from plugins.anti_idle.models import Beat, DayVerdict, Evidence

if TYPE_CHECKING:
    from plugins.anti_idle.policy import PolicyVersion


def N_(message: str) -> str:  # noqa: N802 - the conventional no-op marker Babel extracts
    """Mark a msgid for extraction; it is stored as is and translated when shown."""
    return message


class DayFigures(Protocol):
    """What the lines read of a day's derived verdict (``verdicts.Derived``): typed by shape,
    because ``verdicts`` builds the lines and this module must not import it back."""

    @property
    def verdict(self) -> str: ...
    @property
    def score(self) -> int: ...
    @property
    def held_ms(self) -> int: ...
    @property
    def scores(self) -> dict[str, int]: ...


#: Beats further apart than this start a new line for the same rule.
JOIN_GAP = dt.timedelta(seconds=60)
#: At most this many beat ids are kept on one line (the span names the rest).
MAX_BEAT_IDS = 500


@dataclass(frozen=True)
class Rule:
    """Everything a line needs about one rule: what it does, how bad it is, the sentence
    shown to the learner and the policy parameters that sentence names."""

    action: str
    severity: str
    #: English msgid with %(start)s, %(end)s, %(amount)s and the threshold's names. The
    #: English text ends with the rule code for auditors; the Chinese text never names it.
    message: str
    #: The policy parameters behind the rule, as they appear in the message.
    threshold: Callable[[Mapping[str, Any]], dict[str, Any]] = lambda p: {}
    #: Other sentences of the same rule, chosen by a day rule's finding (``variant``).
    variants: Mapping[str, str] = field(default_factory=dict)


#: One entry per rule and flag. Rules with action "score" remove no time; their
#: score comes from the day's verdict (``verdicts.scores_of``).
RULES: dict[str, Rule] = {
    "R01": Rule(
        "deduct",
        "medium",
        N_("%(start)s–%(end)s played faster than the allowed %(rate)s×, %(amount)s not counted (R01)"),
        lambda p: {"rate": max(p["allowed_rates"])},
    ),
    "R03": Rule(
        "void",
        "critical",
        N_(
            "%(start)s–%(end)s progress reported beyond the time that really passed "
            "(forged or replayed), %(amount)s void (R03)"
        ),
    ),
    "R04": Rule(
        "deduct",
        "medium",
        N_("%(start)s–%(end)s %(streams)s lessons playing at once, counted as one, %(amount)s deducted (R04)"),
        lambda p: {"handoff_s": p["handoff_seconds"]},
    ),
    "R05": Rule(
        "deduct",
        "low",
        N_(
            "%(start)s–%(end)s the lesson played in a hidden or minimised window beyond "
            "the %(grace)s-second grace, %(amount)s deducted (R05)"
        ),
        lambda p: {"grace": p["hidden_grace_seconds"]},
    ),
    "R07": Rule(
        "deduct",
        "info",
        N_(
            "%(start)s–%(end)s an attention check was not answered within %(window)s "
            "seconds; not counted until answered, %(amount)s deducted (R07)"
        ),
        lambda p: {"window": p["check_window_seconds"]},
    ),
    "R07b": Rule(
        "void",
        "high",
        N_(
            "%(start)s–%(end)s an attention check was answered by a script (not a real "
            "click, or faster than %(floor)s ms), %(amount)s void (R07)"
        ),
        lambda p: {"floor": p["human_latency_floor_ms"]},
    ),
    "R10": Rule(
        "deduct",
        "low",
        N_("%(start)s–%(end)s beyond %(ratio)s times the lesson's length, %(amount)s not counted (R10)"),
        lambda p: {"ratio": p["lesson_cap_ratio"]},
    ),
    "R10a": Rule(
        "hold",
        "medium",
        N_("%(start)s–%(end)s beyond the daily limit of %(hours)s hours, %(amount)s held for audit (R10)"),
        lambda p: {"hours": round(int(p["day_cap_seconds"]) / 3600, 1)},
    ),
    "R14": Rule(
        "void",
        "critical",
        N_("%(start)s–%(end)s the server did not send the video for this viewing, %(amount)s void (R14)"),
    ),
    "R16": Rule(
        "deduct",
        "medium",
        N_(
            "%(start)s–%(end)s the same part of the video was reported again without "
            "going back to it, %(amount)s not counted (R16)"
        ),
    ),
    "R08": Rule(
        "deduct",
        "low",
        N_(
            "%(start)s–%(end)s the document was open without any reading activity for more than "
            "%(idle_min)s minutes, %(amount)s not counted (R08)"
        ),
        lambda p: {"idle_min": round(int(p["idle_seconds"]) / 60)},
    ),
    "R08b": Rule(
        "score", "medium", N_("%(start)s–%(end)s page input was generated by a script, not by the learner (R08)")
    ),
    # --- day rules (day_rules.py): they add to the review score and remove no time ---
    "R02": Rule(
        "score",
        "low",
        N_(
            "%(start)s–%(end)s skipped forward past %(amount)s of video not watched in %(lessons)s lesson(s) "
            "(more than %(share)s%% of a lesson); skipped parts do not count towards completion (R02)"
        ),
    ),
    "R07h": Rule(
        "hold",
        "medium",
        N_(
            "%(start)s–%(end)s nobody answered the first attention check of this study; the %(amount)s "
            "before it is held until an auditor confirms it (R07)"
        ),
    ),
    "R07o": Rule(
        "deduct",
        "medium",
        N_(
            "%(start)s–%(end)s an attention check fell due while the connection was lost and was not "
            "answered within %(window)s seconds of its return; the %(amount)s credited meanwhile is "
            "deducted (R07)"
        ),
        lambda p: {"window": p["check_window_seconds"]},
    ),
    "R09": Rule(
        "score",
        "medium",
        N_(
            "%(start)s–%(end)s %(count)s lessons were started at almost exactly equal intervals "
            "(varying by %(cv)s%%), as a program would (R09)"
        ),
        variants={
            "answers": N_(
                "%(start)s–%(end)s %(count)s attention checks were answered with almost exactly the same delay "
                "(varying by %(cv)s%%), as a program would (R09)"
            ),
            "starts_fit": N_(
                "%(start)s–%(end)s the gaps between %(count)s lesson starts are spread evenly between a "
                "shortest and a longest value, as a program waiting a random time would, not as people "
                "do (fit difference %(dbic)s) (R09)"
            ),
            "answers_fit": N_(
                "%(start)s–%(end)s the delays of %(count)s attention-check answers are spread evenly between "
                "a shortest and a longest value, as a program waiting a random time would, not as people "
                "do (fit difference %(dbic)s) (R09)"
            ),
        },
    ),
    "R10c": Rule(
        "score",
        "low",
        N_(
            "%(start)s–%(end)s studied %(amount)s without a break of %(break_min)s minutes "
            "(more than %(hours)s hours) (R10)"
        ),
    ),
    "R10d": Rule(
        "score",
        "medium",
        N_(
            "%(start)s–%(end)s studied %(amount)s between midnight and 5 a.m.; %(nights)s nights like this "
            "in the last 14 days (R10)"
        ),
    ),
    "R12": Rule(
        "score",
        "high",
        N_(
            "%(start)s–%(end)s the same device (network address, browser and screen) was studying for "
            "%(accounts)s other account(s) at the same time, overlapping %(amount)s (R12)"
        ),
        variants={
            "sequential": N_(
                "%(start)s–%(end)s the same device was also used by %(accounts)s other account(s) today, "
                "one after the other (R12)"
            )
        },
    ),
    "R12d": Rule(
        "score",
        "high",
        N_(
            "%(start)s–%(end)s studied from a data-centre (cloud server) address range %(range)s "
            "that %(accounts)s accounts used today (%(need)s or more is how auto-study services work) (R12)"
        ),
        variants={
            "alone": N_(
                "%(start)s–%(end)s studied from a data-centre (cloud server) address range %(range)s; "
                "for information only (R12)"
            )
        },
    ),
    "R15": Rule(
        "score",
        "medium",
        N_(
            "%(start)s–%(end)s %(answers)s attention-check answers within %(seconds)s seconds, "
            "as if trying every option (R15)"
        ),
    ),
    "R17": Rule(
        "info",
        "info",
        N_(
            "%(start)s–%(end)s %(short)s of the %(items)s lessons studied in 14 days are among the shortest "
            "of their courses (%(share)s%%); for information only (R17)"
        ),
    ),
    "R03e": Rule(
        "void",
        "critical",
        N_(
            "%(start)s–%(end)s progress reports without the lesson page's signature (sent by a program, "
            "not by the player), %(amount)s void (R03)"
        ),
    ),
    "R03b": Rule(
        "score", "critical", N_("%(start)s–%(end)s progress reports with a forged or altered signature (R03)")
    ),
    "R03q": Rule(
        "info",
        "info",
        N_(
            "%(start)s–%(end)s some progress reports never arrived (network); "
            "the time in between was judged by the server's clock (R03)"
        ),
    ),
    "R13d": Rule(
        "score",
        "medium",
        N_("%(start)s–%(end)s the page's clock ran faster than real time, as a speed-up tool does (R13)"),
        lambda p: {"drift_s": p["drift_seconds"]},
    ),
    "R11": Rule("score", "high", N_("%(start)s–%(end)s the browser reported that it is driven by automation (R11)")),
    "R04f": Rule(
        "info",
        "info",
        N_(
            "%(start)s–%(end)s another lesson played at the same time in a hidden or background "
            "window; only the one in front was counted (R04)"
        ),
    ),
    "R13": Rule("score", "high", N_("%(start)s–%(end)s the page claimed to be visible but drew nothing (R13)")),
}
#: Beats the core kept as evidence without counting them (``learning_refused_beats``), by
#: its reason: information lines (nothing is deducted, nothing scores), one per session
#: and run of refusals, so an auditor sees retries, replays and late queues.
REFUSALS: dict[str, tuple[str, str]] = {
    "repeat": (
        "R03r",
        N_(
            "%(start)s–%(end)s %(count)s progress reports arrived again after they had been counted "
            "(network retries); kept as evidence, counted once (R03)"
        ),
    ),
    "replay": (
        "R03p",
        N_(
            "%(start)s–%(end)s %(count)s earlier progress reports were sent again (replayed); "
            "kept as evidence, nothing counted (R03)"
        ),
    ),
    "late": (
        "R03l",
        N_(
            "%(start)s–%(end)s %(count)s progress reports made more than %(hours)s hours earlier arrived "
            "after the late window; kept as evidence, not counted (R03)"
        ),
    ),
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


class Line(Protocol):
    """What :func:`render` reads of a line (an ``Evidence`` row, or the columns a list read)."""

    @property
    def message(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def span_start(self) -> dt.datetime: ...
    @property
    def span_end(self) -> dt.datetime: ...
    @property
    def amount_ms(self) -> int: ...


def render(line: Line) -> str:
    """The line in the current locale."""
    params = dict(line.params)
    # (Beijing wall-clock time, as fmt_time; without its round trip through ISO text.)
    start, end = line.span_start.astimezone(els.SHANGHAI), line.span_end.astimezone(els.SHANGHAI)
    # A span within one minute read "09:05–09:05", as if it had lasted nothing: with seconds.
    shape = "%H:%M:%S" if (start.hour, start.minute) == (end.hour, end.minute) else "%H:%M"
    params["start"], params["end"] = start.strftime(shape), end.strftime(shape)
    params["amount"] = fmt_amount(line.amount_ms)
    return _(line.message, **params)


def _threshold(rule: str, policy: Mapping[str, Any]) -> dict[str, Any]:
    entry = RULES.get(rule)
    return entry.threshold(policy) if entry is not None else {}


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
    v: DayVerdict, outcomes: Sequence[tuple[Beat, els.Outcome]], policy: PolicyVersion, derived: DayFigures
) -> list[Evidence]:
    """The evidence lines of one day, in time order."""
    open_groups: dict[tuple[str, str], _Group] = {}
    done: list[_Group] = []
    playing: list[tuple[dt.datetime, dt.datetime, str]] = [
        (b.wall_start, b.received_at, b.session_id) for b, _o in outcomes if b.claimed
    ]
    for b, o in outcomes:
        items = [(rule, amount) for rule, amount in o.cuts.items() if amount > 0]
        items += [(flag, 0) for flag in o.flags if flag in RULES and RULES[flag].action in ("score", "info")]
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
        if g.rule == "R04" and g.amount <= int(policy["handoff_seconds"]) * 1000:
            action, severity, message, score = "info", "info", HANDOFF, 0
        else:
            entry = RULES[g.rule]
            action, severity, message = entry.action, entry.severity, entry.message
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
    for rule, finding in sorted((v.tally or {}).get("day_rules", {}).items()):
        entry = RULES[rule]
        score = int(finding.get("score", 0))
        lines.append(
            Evidence(
                day_verdict_id=v.id,
                user_id=v.user_id,
                day=v.day,
                lesson_id=finding.get("lesson_id"),
                rule=rule,
                action=entry.action if score or finding.get("hold_ms") or finding.get("deduct_ms") else "info",
                severity=entry.severity if score or finding.get("hold_ms") or finding.get("deduct_ms") else "info",
                span_start=dt.datetime.fromisoformat(finding["start"]),
                span_end=dt.datetime.fromisoformat(finding["end"]),
                amount_ms=int(finding.get("amount_ms", 0)),
                score=score,
                threshold=entry.threshold(policy.params),
                message=entry.variants.get(finding.get("variant", ""), entry.message),
                params=dict(finding.get("params") or {}),
                beat_ids=list(finding.get("beat_ids") or []),
                policy_version=policy.version,
            )
        )
    lines.sort(key=lambda line: (line.span_start, line.rule))
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


def refusal_lines(v: DayVerdict, refused: Sequence[Any], late_window_hours: int) -> list[Evidence]:
    """Information lines for the day's refused beats (rows of ``learning_refused_beats`` in time order)."""
    groups: dict[tuple[str, str], list[Any]] = {}
    runs: list[list[Any]] = []
    for row in refused:
        key = (row.reason, row.session_id)
        run = groups.get(key)
        if run is None or row.received_at - run[-1].received_at > JOIN_GAP:
            run = groups[key] = []
            runs.append(run)
        run.append(row)
    lines = []
    for run in runs:
        first, last = run[0], run[-1]
        if first.reason not in REFUSALS:
            continue
        rule, message = REFUSALS[first.reason]
        # The refused beats are no raw telemetry rows: the line names their ids in the core's table.
        params: dict[str, Any] = {"count": len(run), "refused_ids": [r.id for r in run][:MAX_BEAT_IDS]}
        if first.reason == "late":
            params["hours"] = late_window_hours
        lines.append(
            Evidence(
                day_verdict_id=v.id,
                user_id=v.user_id,
                day=v.day,
                lesson_id=first.lesson_id,
                rule=rule,
                action="info",
                severity="info",
                span_start=first.received_at,
                span_end=last.received_at,
                amount_ms=0,
                score=0,
                threshold={"late_window_hours": late_window_hours} if first.reason == "late" else {},
                message=message,
                params=params,
                beat_ids=[],
            )
        )
    return lines
