"""Judging a person-day again when an attention check's window ends.

The day rules R07h and R07o count a check once its window is over without a valid
answer (``day_rules.judgement_time``). A window can end with no beat of the person
to re-judge the day (a script that stops beating when a check shows, a player that
pauses when a window runs out): the online verdict would then keep the day credited
while a recompute holds it. So the window's end gets a job of its own:
* when a check is issued (``checks._create``), at its due time;
* when the first beat after a check that fell due offline arrives (``inputs.with_reach``),
  at the end of the new window that beat starts (R07o).

The row is added as a plain job with ``run_after`` (not through ``jobs.enqueue``, whose
inline runner in development and tests would run it at once, before the window ends):
``flask lms worker`` (beside ``make run`` too) runs it when due: ``verdicts.rejudge_day``
re-judges the day from the raw beats, so running it twice, late, or after a beat already
did changes nothing. This module is a leaf (the beat path's ``inputs`` imports it).
"""

from __future__ import annotations

import datetime as dt

from lms_core.extensions import db
from lms_core.jobs.models import Job

#: The job kind (``lms_job_handlers``).
JOB = "anti_idle.rejudge_day"


def schedule(user_id: int, day: dt.date, at: dt.datetime, check_id: int | None = None) -> None:
    """Judge the person-day again at ``at`` (in the caller's transaction; no commit).

    ``check_id``: the check whose due time ``at`` is; the job does nothing if it was validly
    answered by then (most checks: an honest learner's), so the worker does not replay
    every learner's day at every check."""
    payload: dict[str, object] = {"user_id": int(user_id), "day": day.isoformat()}
    if check_id is not None:
        payload["check_id"] = int(check_id)
    db.session.add(Job(kind=JOB, payload=payload, run_after=at))
