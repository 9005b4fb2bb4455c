"""What the review queue's page shows of each waiting day, prepared once per page.

Written here rather than in the template: inside a Jinja loop every ``_()`` derives a
new template context (a copy of every global) and every call goes through the
context's dispatch; with a dozen such calls per day, rendering 50 days took most of the
page's CPU (26 ms of 44). Here the fixed words are translated once per page, the
sentences with figures are formatted from one translated pattern, and the template
only prints the prepared values (escaping them as before).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from markupsafe import Markup

from lms_core.templating import template_hook
from plugins.anti_idle.appeals import APPEAL_NAMES, ReviewItem
from plugins.anti_idle.events import VERDICT_NAMES
from plugins.anti_idle.evidence import render
from plugins.anti_idle.models import HELD


@dataclass(frozen=True, slots=True)
class Card:
    """One waiting day on the page (the person, the figures, the evidence, the links)."""

    id: int
    person: str
    unit: str
    day: str
    held: bool
    verdict: str
    score: int
    figures: str
    day_url: str
    decide_url: str
    #: What plugins add beside the day link (``lms_template_hook`` slot ``anti_idle_review_item``).
    extra: Markup
    #: (evidence line id, sentence), newest first.
    lines: tuple[tuple[int, str], ...]
    #: Post or void the held time (else: uphold or reject the appeal).
    held_open: bool
    appeal_status: str
    appeal_reason: str


#: Stand for ids and a day in a URL built once per page (no row id comes near them; a
#: day is always ISO).
_ID, _DAY = 987_654_321_987_000, "0001-01-01"


def url_pattern(endpoint: str, *, ids: Sequence[str] = (), day: str = "", **values: Any) -> str:
    """``url_for(endpoint, **values)`` with ``{name}`` fields for the ``ids`` (ints) and
    the ``day`` (an ISO date) that change per item: ``str.format`` fills them.

    For a link every item of a page repeats: werkzeug's building, with the query's
    encoding, was a third of the review queue's Python per day. Built with a mark in
    each field's place, then the marks replaced; a URL in which a mark is not found
    exactly once (or with braces of its own) raises ``ValueError``.
    """
    marks: dict[str, Any] = {name: _ID + n for n, name in enumerate(ids)}
    if day:
        marks[day] = _DAY
    built = url_for(endpoint, **values, **marks)
    if "{" in built or "}" in built:
        raise ValueError(f"{endpoint}: braces in {built}")
    for name, mark in marks.items():
        if built.count(str(mark)) != 1:
            raise ValueError(f"{endpoint}: the mark of {name} is not in {built} once")
        built = built.replace(str(mark), "{" + name + "}")
    return built


def links(endpoint: str, *, ids: Sequence[str] = (), day: str = "", **values: Any) -> Callable[..., str]:
    """Build one URL per item: ``url_pattern``'s ``format``, or ``url_for`` itself when a
    value of the page (an org code typed in the filter) gets in the way of the marks."""
    try:
        return url_pattern(endpoint, ids=ids, day=day, **values).format
    except ValueError:
        return lambda **per_item: url_for(endpoint, **values, **per_item)


def cards(items: Sequence[ReviewItem], args: Mapping[str, Any]) -> list[Card]:
    """The page's items, in their order; ``args`` are the filters the decision forms return to."""
    verdicts = {code: str(name) for code, name in VERDICT_NAMES.items()}
    statuses = {code: str(name) for code, name in APPEAL_NAMES.items()}
    # Patterns translated once; their placeholders are filled per day (gettext with no
    # variables returns the pattern as is).
    counted = _("Counted %(c)s min of %(t)s min reported")
    held_pattern = _("held %(m)s min")
    day_url = links("audit.person_day", ids=("user_id",), day="day")
    decide_url = links("anti_idle.review_decide", ids=("day_verdict_id",), **args)
    out = []
    for item in items:
        d = item.day
        figures = counted % {"c": round(d.credited_ms / 60000, 1), "t": round(d.claimed_ms / 60000, 1)}
        if d.held_ms:
            figures += " · " + held_pattern % {"m": round(d.held_ms / 60000, 1)}
        day_iso = d.day.isoformat()
        out.append(
            Card(
                id=d.id,
                person=item.person.full_name,
                unit=item.unit_name,
                day=day_iso,
                held=d.verdict == HELD,
                verdict=verdicts.get(d.verdict, d.verdict),
                score=d.review_score,
                figures=figures,
                day_url=day_url(user_id=item.person.id, day=day_iso),
                decide_url=decide_url(day_verdict_id=d.id),
                extra=template_hook("anti_idle_review_item", person=item.person, day=d),
                lines=tuple((line.id, render(line)) for line in item.lines),
                held_open=d.verdict == HELD and d.review_state not in ("posted", "voided"),
                appeal_status=statuses.get(item.appeal.status, item.appeal.status) if item.appeal else "",
                appeal_reason=item.appeal.reason if item.appeal else "",
            )
        )
    return out
