"""``flask lms report``: reports written to files from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from lms_core.extensions import db


@click.group("report")
def report() -> None:
    """Write reports to files."""


@report.command("annual")
@click.option("--org", "org_code", required=True, help="Code of the org unit whose subtree the report covers.")
@click.option("--year", type=click.IntRange(2000, 2100), required=True, help="Calendar year (Beijing time).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True)
@click.option(
    "--as-user",
    "username",
    default=None,
    help="Build the report within this user's reporting scope (default: a site administrator's).",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Rebuild the report rollups first even when they are younger than LMS_REPORT_ROLLUP_MAX_AGE.",
)
@with_appcontext
def annual(org_code: str, year: int, output: Path, username: str | None, refresh: bool) -> None:
    """The annual quality report (干部教育培训质量报告) of a subtree and year, as a PDF."""
    from lms_core.accounts.models import User
    from lms_core.authz import can
    from lms_core.orgs.models import OrgUnit
    from lms_core.reports import annual as annual_report
    from lms_core.reports.annual_pdf import render
    from lms_core.reports.charts import CAPABILITY, ChartScope

    unit = db.session.execute(select(OrgUnit).where(OrgUnit.code == org_code)).scalar_one_or_none()
    if unit is None:
        raise click.ClickException(f"no org unit has the code {org_code!r}")
    if username:
        viewer = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    else:
        viewer = _first_site_admin()
    if viewer is None:
        raise click.ClickException("no such user (or no site administrator): pass --as-user")
    if not can(viewer, CAPABILITY, unit):
        raise click.ClickException(f"{viewer.username} may not view reports of {org_code}")
    stamp = _fresh_rollups(force=refresh)
    steps = [*annual_report.STEPS, "pdf"]
    with click.progressbar(length=len(steps), label=f"{unit.name} {year}", show_pos=True) as bar:

        def progress(name: str) -> None:
            bar.label = f"{unit.name} {year}: {name}"
            bar.update(1)

        report_obj = annual_report.build(ChartScope(viewer, year, unit, as_of=stamp), progress)
        data = render(report_obj)
        progress("pdf")
    output.write_bytes(data)
    click.echo(f"wrote {output} ({len(data) // 1024} KiB, {len(report_obj.charts)} charts)")


def _fresh_rollups(*, force: bool) -> Any:
    """The rollups' stamp, rebuilt first when forced, missing or older than ``LMS_REPORT_ROLLUP_MAX_AGE``.

    As on the report pages: rollups a worker rebuilt minutes ago are what the page and
    its PDF show, under their stamp. Rebuilding them was most of the command's time
    (22 s of about 60 for a city of 100,000 cadres).
    """
    from flask import current_app

    from lms_core.db import utcnow
    from lms_core.reports import monthly

    stamp = monthly.refreshed_at()
    max_age = float(current_app.config["LMS_REPORT_ROLLUP_MAX_AGE"])
    if force or stamp is None or (utcnow() - stamp).total_seconds() > max_age:
        stamp = monthly.refresh().refreshed_at
        db.session.commit()
        click.echo(f"rebuilt the report rollups (as of {stamp:%Y-%m-%d %H:%M:%S} UTC)")
    else:
        click.echo(f"report rollups as of {stamp:%Y-%m-%d %H:%M:%S} UTC (--refresh rebuilds them first)")
    return stamp


@report.command("refresh")
@with_appcontext
def refresh() -> None:
    """Rebuild the rollups the dashboards read (e.g. from cron; pages queue it when they are old)."""
    from lms_core.reports import monthly
    from lms_core.reports.models import Rollup

    state = monthly.refresh()
    db.session.commit()
    for name in monthly.names():
        row = db.session.get(Rollup, name)
        click.echo(f"rebuilt {name}: {row.rows if row else 0} rows")
    click.echo(f"in {state.duration_ms / 1000:.1f}s")


def _first_site_admin() -> Any:
    from lms_core.accounts.models import Role, RoleAssignment, User, UserStatus

    return db.session.execute(
        select(User)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role == Role.SITE_ADMIN, User.status == UserStatus.ACTIVE)
        .order_by(User.id)
        .limit(1)
    ).scalar_one_or_none()
