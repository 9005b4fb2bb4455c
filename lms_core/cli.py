"""The ``flask lms`` command group (also installed as the ``lms`` console script)."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from lms_core.extensions import db


def build_group() -> click.Group:
    """A fresh ``lms`` group per application, so plugin commands never leak between apps."""

    @click.group("lms")
    def lms() -> None:
        """Platform administration: users, demo data, events, workers."""

    for command in (users, demo, events, worker, jobs):
        lms.add_command(command)
    from lms_core.media.cli import media

    lms.add_command(media)
    from lms_core.reports.cli import report

    lms.add_command(report)
    return lms


# users -----------------------------------------------------------------------


@click.group()
def users() -> None:
    """Create users and manage their passwords and roles."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--full-name", required=True)
@click.option("--org", "org_code", required=True, help="Org unit code.")
@click.option("--role", "roles", multiple=True, help="Role over the user's own org unit (repeatable).")
@click.password_option()
@with_appcontext
def users_create(username: str, full_name: str, org_code: str, roles: tuple[str, ...], password: str) -> None:
    """Create a user, optionally with roles over their org unit."""
    from lms_core.accounts import services
    from lms_core.accounts.models import Role
    from lms_core.jobs.services import commit
    from lms_core.orgs.services import by_code

    unit = by_code(org_code)
    if unit is None:
        raise click.ClickException(f"unknown org code {org_code!r}")
    try:
        user = services.create_user(username=username, full_name=full_name, org_unit=unit, password=password)
        for role in roles:
            services.grant_role(None, user, Role(role), unit)
    except (services.AccountError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    commit()
    click.echo(f"created user {username} (id {user.id})")


@users.command("set-password")
@click.argument("username")
@click.password_option()
@with_appcontext
def users_set_password(username: str, password: str) -> None:
    """Set a user's password (ends their sessions)."""
    from lms_core.accounts import services
    from lms_core.jobs.services import commit

    user = services.by_username(username)
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    try:
        services.set_password(user, password, actor=None)
    except services.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    commit()
    click.echo("password set")


@users.command("grant")
@click.argument("username")
@click.argument("role")
@click.argument("org_code")
@with_appcontext
def users_grant(username: str, role: str, org_code: str) -> None:
    """Grant ROLE over the subtree of ORG_CODE to USERNAME."""
    from lms_core.accounts import services
    from lms_core.accounts.models import Role
    from lms_core.jobs.services import commit
    from lms_core.orgs.services import by_code

    user, unit = services.by_username(username), by_code(org_code)
    if user is None or unit is None:
        raise click.ClickException("unknown user or org code")
    try:
        services.grant_role(None, user, Role(role), unit)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    commit()
    click.echo(f"granted {role} over {org_code} to {username}")


@users.command("token")
@click.argument("username")
@click.option("--name", default="cli")
@click.option(
    "--scope",
    type=click.Choice(["read", "read_write"]),
    required=True,
    help="read: GET only; read_write: writes too (e.g. uploads).",
)
@with_appcontext
def users_token(username: str, name: str, scope: str) -> None:
    """Create an API token for USERNAME and print it (shown only once)."""
    from lms_core.accounts import services
    from lms_core.accounts.models import TokenScope
    from lms_core.jobs.services import commit

    user = services.by_username(username)
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    _, plain = services.create_token(user, name, scope=TokenScope(scope))
    commit()
    click.echo(plain)


# demo ------------------------------------------------------------------------


@click.command()
@click.option("--cadres", default=300, show_default=True, help="Number of demo cadres.")
@with_appcontext
def demo(cadres: int) -> None:
    """Load the demo city, people and accounts (idempotent)."""
    from lms_core.demo.loader import load_demo

    summary = load_demo(cadres=cadres, echo=click.echo)
    for line in summary:
        click.echo(line)


# events ----------------------------------------------------------------------


@click.group()
def events() -> None:
    """Inspect the event log and replay failed handlers."""


@events.command("tail")
@click.option("-n", "count", default=20, show_default=True)
@with_appcontext
def events_tail(count: int) -> None:
    """Show the newest events."""
    from lms_core.events.models import Event

    rows = db.session.execute(select(Event).order_by(Event.id.desc()).limit(count)).scalars().all()
    for ev in reversed(rows):
        click.echo(
            f"{ev.id}\t{ev.created_at:%Y-%m-%d %H:%M:%S}Z\t{ev.name}\tactor={ev.actor_id}\t"
            f"{ev.object_type}:{ev.object_id}"
        )


@events.command("failures")
@with_appcontext
def events_failures() -> None:
    """List handler failures that are not resolved yet."""
    from lms_core.events.services import open_failures

    failures = open_failures()
    for f in failures:
        first_line = f.error.strip().splitlines()[-1] if f.error.strip() else ""
        click.echo(f"event {f.event_id}\t{f.plugin_name}\tattempts={f.attempts}\t{first_line}")
    click.echo(f"{len(failures)} open failure(s)")


@events.command("replay")
@click.option("--plugin", default=None, help="Only this plugin's failures.")
@with_appcontext
def events_replay(plugin: str | None) -> None:
    """Re-dispatch events whose handlers failed."""
    from lms_core.events.services import open_failures, replay_failures

    total = len([f for f in open_failures() if plugin is None or f.plugin_name == plugin])
    with click.progressbar(length=total, label="replaying", file=sys.stderr) as bar:
        fixed, failing = replay_failures(plugin, progress=bar.update)
    click.echo(f"replayed: {fixed} fixed, {failing} still failing")
    if failing:
        sys.exit(1)


# worker and jobs --------------------------------------------------------------


@click.command()
@click.option("--once", is_flag=True, help="Run the queued jobs, then exit.")
@click.option("--sleep", "idle_sleep", default=1.0, show_default=True, help="Seconds to wait when idle.")
@with_appcontext
def worker(once: bool, idle_sleep: float) -> None:
    """Claim and run background jobs (event dispatch, deliveries, recomputes)."""
    from lms_core.jobs.services import work

    def report(job: object, ok: bool) -> None:
        click.echo(f"job {job.id} {job.kind}: {'done' if ok else 'failed'}")  # type: ignore[attr-defined]

    count = work(once=once, idle_sleep=idle_sleep, on_job=report)
    click.echo(f"{count} job(s) run")


@click.group()
def jobs() -> None:
    """Inspect and retry background jobs."""


@jobs.command("status")
@with_appcontext
def jobs_status() -> None:
    """Count jobs by kind and status."""
    from lms_core.jobs.models import Job

    rows = db.session.execute(
        select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status).order_by(Job.kind)
    ).all()
    for kind, status, count in rows:
        click.echo(f"{kind}\t{status.value}\t{count}")


@jobs.command("retry")
@with_appcontext
def jobs_retry() -> None:
    """Requeue jobs that gave up after their maximum attempts."""
    from lms_core.db import utcnow
    from lms_core.jobs.models import Job, JobStatus

    failed = db.session.execute(select(Job).filter_by(status=JobStatus.FAILED)).scalars().all()
    for job in failed:
        job.status, job.attempts, job.run_after = JobStatus.QUEUED, 0, utcnow()
    db.session.commit()
    click.echo(f"requeued {len(failed)} job(s); max attempts {current_app.config['LMS_JOB_MAX_ATTEMPTS']}")
