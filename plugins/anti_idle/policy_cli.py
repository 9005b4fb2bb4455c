"""``flask lms anti-idle policy show|set``: the versioned policy from the command line.

Values are parsed by the same code as the admin page, so the same input is accepted
or refused with the same message.
"""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from lms_core.extensions import db


def _course_id(ref: str | None) -> int | None:
    if not ref:
        return None
    from lms_core.courses.models import Course

    course = db.session.get(Course, int(ref)) if ref.isdigit() and len(ref) < 10 else None
    course = course or db.session.execute(select(Course).where(Course.code == ref)).scalar_one_or_none()
    if course is None:
        raise click.BadParameter(f"no course {ref!r}", param_hint="--course")
    return course.id


@click.group("policy")
def policy_group() -> None:
    """Show or change the anti-idle policy (site-wide, or one course's)."""


@policy_group.command("show")
@click.option("--course", "course_ref", help="Course code or id (default: the site-wide policy).")
@click.option("--json", "as_json", is_flag=True, help="Print the parameters as JSON.")
@with_appcontext
def show(course_ref: str | None, as_json: bool) -> None:
    """Print the policy in force and its version."""
    from plugins.anti_idle import policy, policy_forms

    current = policy.current_policy(_course_id(course_ref))
    if as_json:
        click.echo(
            json.dumps(
                {"version": current.version, "course_id": current.course_id, "params": dict(current.params)},
                ensure_ascii=False,
                sort_keys=True,
            )
        )
        return
    click.echo(f"version {current.version}" + (f" (course {current.course_id})" if current.course_id else ""))
    for name in policy_forms.editable():
        click.echo(f"{name} = {policy_forms.display(name, current[name])}")


@policy_group.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="NAME=VALUE...")
@click.option("--course", "course_ref", help="Course code or id (default: the site-wide policy).")
@click.option("--note", default="", help="Why it changed (shown in the version history).")
@with_appcontext
def set_(assignments: tuple[str, ...], course_ref: str | None, note: str) -> None:
    """Store a new version with the given changes, e.g. ``check_window_seconds=30``."""
    from lms_core.jobs.services import commit
    from plugins.anti_idle import policy_forms

    course_id = _course_id(course_ref)
    values: dict[str, str] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="NAME=VALUE")
        values[name.strip()] = value
    try:
        version = policy_forms.save(policy_forms.parse_changes(values), course_id=course_id, actor=None, note=note)
    except policy_forms.PolicyInputError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    commit()
    click.echo(f"saved policy version {version.version}" + (f" for course {course_id}" if course_id else ""))
