"""``flask lms anti-idle ...``: recompute person-day verdicts from the raw beats."""

from __future__ import annotations

import datetime as dt
import time

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from lms_core.extensions import db


@click.group("anti-idle")
def anti_idle_group() -> None:
    """Anti-idle: recompute study-day verdicts."""


def _day(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date like 2026-05-10") from exc


@anti_idle_group.command("recompute")
@click.option("--user", "user_ref", help="User id or username.")
@click.option("--day", "day_s", help="Beijing calendar day (YYYY-MM-DD), with --user.")
@click.option("--all", "all_users", is_flag=True, help="Every person-day with beats since --since.")
@click.option("--since", "since_s", help="First Beijing day to recompute, with --all.")
@click.option(
    "--policy-version",
    type=int,
    default=None,
    help="Judge with this policy version instead of the one each beat recorded.",
)
@with_appcontext
def recompute(
    user_ref: str | None, day_s: str | None, all_users: bool, since_s: str | None, policy_version: int | None
) -> None:
    """Recompute verdicts from the raw beats (same inputs and policy version: same result).

    Either ``--user U --day D`` or ``--all --since D``. Changed days publish
    ``anti_idle.day_assessed`` again; unchanged days publish nothing.
    """
    from lms_core.accounts.models import User
    from lms_core.jobs.services import commit
    from lms_core.settings import services as settings
    from plugins.anti_idle.verdicts import assess_day

    day, since = _day(day_s), _day(since_s)
    batch = max(1, int(settings.get("anti_idle", "recompute_batch")))
    if all_users:
        if since is None or user_ref or day:
            raise click.UsageError("use --all --since D (without --user/--day)")
        from plugins.anti_idle.recompute import recompute_since

        # People in chunks: their beats, prior state and checks read in a few statements,
        # their days written together, one transaction per chunk.
        started = time.monotonic()
        total_people = [0]

        def report(people: int, days: int) -> None:
            total_people[0] += people
            click.echo(f"  {total_people[0]} people, {days} person-days, {time.monotonic() - started:.1f}s", err=True)

        counts = recompute_since(since, policy_version, chunk=batch, on_chunk=report, commit=commit)
        days = sum(counts.values())
        click.echo(f"{days} person-days: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return
    if not user_ref or day is None or since:
        raise click.UsageError("use --user U --day D, or --all --since D")
    user = db.session.get(User, int(user_ref)) if user_ref.isdigit() else None
    user = user or db.session.execute(select(User).where(User.username == user_ref)).scalar_one_or_none()
    if user is None:
        raise click.BadParameter(f"no user {user_ref!r}")
    counts = {"credited": 0, "deducted": 0, "held": 0, "void": 0, "empty": 0}
    v = assess_day(user.id, day, policy_version)
    counts[v.verdict if v else "empty"] += 1
    commit()
    click.echo("1 person-days: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
