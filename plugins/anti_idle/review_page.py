"""What the review queue's page shows of each waiting day, prepared once per page.

Written here rather than in the template: inside a Jinja loop every ``_()`` derives a
new template context (a copy of every global) and every call goes through the
context's dispatch; with a dozen such calls per day, rendering 50 days took most of the
page's CPU (26 ms of 44). Here the fixed words are translated once per page, the
sentences with figures are formatted from one translated pattern, and the template
only prints the prepared values (escaping them as before).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def cards(items: Sequence[ReviewItem], args: Mapping[str, Any]) -> list[Card]:
    """The page's items, in their order; ``args`` are the filters the decision forms return to."""
    verdicts = {code: str(name) for code, name in VERDICT_NAMES.items()}
    statuses = {code: str(name) for code, name in APPEAL_NAMES.items()}
    # Patterns translated once; their placeholders are filled per day (gettext with no
    # variables returns the pattern as is).
    counted = _("Counted %(c)s min of %(t)s min reported")
    held_pattern = _("held %(m)s min")
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
                day_url=url_for("audit.person_day", user_id=item.person.id, day=day_iso),
                decide_url=url_for("anti_idle.review_decide", day_verdict_id=d.id, **args),
                extra=template_hook("anti_idle_review_item", person=item.person, day=d),
                lines=tuple((line.id, render(line)) for line in item.lines),
                held_open=d.verdict == HELD and d.review_state not in ("posted", "voided"),
                appeal_status=statuses.get(item.appeal.status, item.appeal.status) if item.appeal else "",
                appeal_reason=item.appeal.reason if item.appeal else "",
            )
        )
    return out
