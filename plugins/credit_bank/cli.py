"""``flask lms credit ...``: replay and maintenance commands."""

from __future__ import annotations

import sys
from typing import TextIO

import click
from flask.cli import with_appcontext


@click.group("credit")
def credit_group() -> None:
    """The credit bank (学分银行)."""


@credit_group.command("replay")
@with_appcontext
def replay_command() -> None:
    """Recompute every balance from the journal and print the mismatches (exit 1 if any)."""
    from plugins.credit_bank import replay

    sys.exit(replay.run_checks(click.echo))


@credit_group.command("snapshot")
@click.option("--through", default=None, help="Last day to build (YYYY-MM-DD); default and at most yesterday.")
@with_appcontext
def snapshot_command(through: str | None) -> None:
    """Build the daily balance snapshots of the days ended since the last build (run daily)."""
    import datetime as dt

    from lms_core.extensions import db
    from plugins.credit_bank import snapshots

    rows = snapshots.build(dt.date.fromisoformat(through) if through else None)
    db.session.commit()
    click.echo(f"{rows} snapshot row(s); built through {snapshots.built_through()}")


@credit_group.command("expire-pending")
@with_appcontext
def expire_pending_command() -> None:
    """Void pending transfers whose timeout has passed."""
    from plugins.credit_bank.ledger import expire_pending

    total = 0
    while True:
        n = expire_pending()
        total += n
        if n == 0:
            break
        click.echo(f"... {total}")
    click.echo(f"voided {total}")


@credit_group.group("policy")
def policy_group() -> None:
    """Credit policy versions (conversion, caps, requirements, year-end)."""


@policy_group.command("show")
@click.option("--on", "on", default=None, help="Date (YYYY-MM-DD); default today.")
@with_appcontext
def policy_show(on: str | None) -> None:
    """Print the version in force on a date, as JSON."""
    import datetime as dt
    import json

    from lms_core.db import utcnow
    from plugins.credit_bank import policy as P
    from plugins.credit_bank.services import local_date

    day = dt.date.fromisoformat(on) if on else local_date(utcnow())
    row = P.in_force(day)
    click.echo(f"# version {row.version}, effective from {row.effective_from.isoformat()}")
    click.echo(json.dumps(P.rules_of(row), ensure_ascii=False, indent=2))


@policy_group.command("set")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--effective", required=True, help="Effective date (YYYY-MM-DD).")
@click.option("--note", default=None)
@with_appcontext
def policy_set(file: TextIO, effective: str, note: str | None) -> None:
    """Add a policy version from a JSON FILE (only the keys that differ from the defaults)."""
    import datetime as dt

    from plugins.credit_bank import policy as P

    try:
        row = P.add_version(file.read(), dt.date.fromisoformat(effective), None, note)
    except (P.PolicyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"policy version {row.version} from {row.effective_from.isoformat()}")


@credit_group.command("close-year")
@click.argument("year", type=click.IntRange(2000, 2100))
@with_appcontext
def close_year_command(year: int) -> None:
    """Year-end close: carry forward or expire each counted balance of YEAR, then close it."""
    from plugins.credit_bank.services import close_year

    stats = close_year(year, progress=lambda n: click.echo(f"... {n} accounts"))
    click.echo(
        f"closed {stats['accounts']} accounts: carried {stats['carried'] / 100:.2f}, "
        f"expired {stats['expired'] / 100:.2f} 学时"
    )


@credit_group.command("demo")
@with_appcontext
def demo_command() -> None:
    """Demo credit through the real services (after `flask lms demo`); idempotent."""
    from plugins.credit_bank.demo import load

    load(echo=click.echo)


@credit_group.group("rank")
def rank_group() -> None:
    """Promotion history (职级变动): record, correct and list a cadre's rank changes."""


@rank_group.command("set")
@click.option("--user", "username", required=True, help="The cadre's username.")
@click.option("--band", type=click.Choice(["county_and_above", "township", "general"]), help="The new rank band.")
@click.option("--date", "effective", help="Effective date, YYYY-MM-DD (not in the future).")
@click.option("--reason", default="", help="Why (e.g. the appointment document); required for a correction.")
@click.option("--corrects", type=int, help="The entry number this one replaces (or withdraws).")
@click.option("--withdraw", is_flag=True, help="Withdraw the entry given by --corrects (recorded in error).")
@with_appcontext
def rank_set_command(
    username: str, band: str | None, effective: str | None, reason: str, corrects: int | None, withdraw: bool
) -> None:
    """Record a rank change (an audited event); entries are never edited, only corrected."""
    import datetime as dt

    from sqlalchemy import select

    from lms_core.accounts.models import User
    from lms_core.extensions import db
    from plugins.credit_bank import ranks

    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    try:
        day = dt.date.fromisoformat(effective) if effective else None
    except ValueError as exc:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date") from exc
    try:
        row = ranks.record(
            user, band=band, effective=day, actor=None, reason=reason, corrects=corrects, withdraw=withdraw
        )
    except ranks.RankError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"entry {row.id}: {username} {row.from_band} -> {row.to_band or 'withdrawn'} from {row.effective_date}")


@rank_group.command("list")
@click.option("--user", "username", required=True)
@with_appcontext
def rank_list_command(username: str) -> None:
    """Print a cadre's rank entries and promotions."""
    from sqlalchemy import select

    from lms_core.accounts.models import User
    from lms_core.extensions import db
    from plugins.credit_bank import ranks

    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    for r in ranks.entries(user.id):
        what = f"withdraws {r.corrects_id}" if r.withdrawn else f"{r.from_band} -> {r.to_band}"
        fix = f" (replaces {r.corrects_id})" if r.corrects_id and not r.withdrawn else ""
        click.echo(f"{r.id}\t{r.effective_date or ''}\t{what}{fix}\t{r.reason or ''}")
    for day, band in ranks.history(user).promotions():
        click.echo(f"promotion\t{day}\t{band}")


@credit_group.command("grant-token")
@click.argument("prefix")
@with_appcontext
def grant_token_command(prefix: str) -> None:
    """Let the live API token starting with PREFIX post transfers (scope credit:transfers).

    The token must belong to a site admin and be a read-write token.
    """
    from sqlalchemy import select

    from lms_core.accounts.models import ApiToken, TokenScope
    from lms_core.authz import can
    from lms_core.extensions import db
    from plugins.credit_bank.models import SCOPE_TRANSFERS, TokenScopeGrant

    tokens = list(db.session.scalars(select(ApiToken).where(ApiToken.prefix == prefix, ApiToken.revoked_at.is_(None))))
    if len(tokens) != 1:
        raise click.ClickException(f"{len(tokens)} live tokens have the prefix {prefix!r}; give exactly one")
    token = tokens[0]
    if token.scope != TokenScope.READ_WRITE or not can(token.user, "credit.transfer"):
        raise click.ClickException("the token must be a read-write token of a site admin")
    if db.session.get(TokenScopeGrant, (token.id, SCOPE_TRANSFERS)) is None:
        db.session.add(TokenScopeGrant(token_id=token.id, scope=SCOPE_TRANSFERS))
        db.session.commit()
    click.echo(f"token {token.prefix}… ({token.name}) may post credit transfers")
