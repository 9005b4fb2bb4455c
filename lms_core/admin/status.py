"""What a site admin checks first when something is off: plugins, jobs, xAPI backlog, migrations, database.

Read-only queries, a handful per page view (the page is for one person, rarely).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from lms_core.db import utcnow
from lms_core.extensions import db
from lms_core.jobs.models import Job, JobStatus
from lms_core.pluginhost import get_plugin_manager
from lms_core.pluginhost.manager import ENTRY_POINT_GROUP

#: A queued job older than this, past its run time, means no worker is taking jobs.
STALE_QUEUE = dt.timedelta(minutes=10)


@dataclass
class PluginLine:
    name: str
    module: str
    version: str


def plugins() -> list[PluginLine]:
    """The enabled plugins (``LMS_PLUGINS``), with the version of the package that provides each."""
    entry_points = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    lines = []
    for name, plugin in sorted(get_plugin_manager().list_name_plugin(), key=lambda pair: str(pair[0])):
        if name in ("lms_core", "core") or str(name).startswith("lms_core"):
            continue
        module = getattr(plugin, "__name__", type(plugin).__module__)
        ep = entry_points.get(str(name))
        version = str(getattr(plugin, "__version__", "") or (ep.dist.version if ep is not None and ep.dist else ""))
        lines.append(PluginLine(str(name), str(module), version))
    return [line for line in lines if line.name in current_app.config["LMS_PLUGINS"]]


@dataclass
class JobSummary:
    counts: dict[str, int]
    stale_queued: int
    failures: list[Job]


def jobs() -> JobSummary:
    counts = {status.value: 0 for status in JobStatus}
    for status, count in db.session.execute(select(Job.status, func.count()).group_by(Job.status)).all():
        counts[JobStatus(status).value] = count
    stale = db.session.execute(
        select(func.count())
        .select_from(Job)
        .where(Job.status == JobStatus.QUEUED, Job.run_after < utcnow() - STALE_QUEUE)
    ).scalar_one()
    failures = list(
        db.session.execute(
            select(Job).where(Job.status == JobStatus.FAILED).order_by(Job.id.desc()).limit(10)
        ).scalars()
    )
    return JobSummary(counts, stale, failures)


@dataclass
class Backlog:
    counts: dict[str, int]
    oldest_pending: dt.datetime | None


def xapi_backlog() -> Backlog:
    """Statements waiting in the outbox for the LRS, by status, and how old the oldest waiting one is."""
    from lms_core.xapi.models import OutboxStatus, XapiOutbox

    counts = {status.value: 0 for status in OutboxStatus}
    for status, count in db.session.execute(select(XapiOutbox.status, func.count()).group_by(XapiOutbox.status)).all():
        counts[OutboxStatus(status).value] = count
    oldest = db.session.execute(
        select(func.min(XapiOutbox.created_at)).where(XapiOutbox.status == OutboxStatus.PENDING)
    ).scalar_one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite returns naive UTC from an aggregate
        oldest = oldest.replace(tzinfo=dt.UTC)
    return Backlog(counts, oldest)


@dataclass
class BranchLine:
    branch: str
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def migrations() -> list[BranchLine]:
    """Per Alembic branch (core and each plugin's): the revision applied here and the newest one."""
    import os

    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.script.revision import ResolutionError

    config = current_app.extensions["migrate"].migrate.get_config()
    script = ScriptDirectory.from_config(config)
    # The applied revisions are walked with every installed plugin's migrations, enabled or not:
    # Alembic records only the heads of what is applied, so the core's newest revision is not
    # in the version table when an applied plugin revision depends on it (``depends_on``, e.g.
    # the anti-idle raw beats' key on the core's 0031ledgerfk), even if that plugin is off now.
    config.set_main_option("version_locations", os.pathsep.join(_installed_migration_dirs()))
    installed = ScriptDirectory.from_config(config)

    def branch_of(revision: str, scripts: ScriptDirectory = script) -> str | None:
        try:
            for rev in scripts.iterate_revisions(revision, "base"):
                if rev.branch_labels:
                    return sorted(rev.branch_labels)[0]
        except ResolutionError:  # applied by a plugin that is not installed (or not enabled)
            return None
        return "core"

    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    reached: set[str] = set()
    disabled = []
    for rev in current:
        if branch_of(rev) is None:
            disabled.append(BranchLine(rev, rev, ""))
        with contextlib.suppress(ResolutionError):  # a plugin no longer installed: nothing to walk
            reached.update(r.revision for r in installed.iterate_revisions(rev, "base"))
    lines = [BranchLine(branch_of(head) or head, None, head) for head in script.get_heads()]
    for line in lines:
        line.current = next(
            (
                r.revision
                for r in script.iterate_revisions(line.head, "base")
                if r.revision in reached and branch_of(r.revision) == line.branch
            ),
            None,
        )
    return sorted(lines, key=lambda line: (line.branch != "core", line.branch)) + disabled


def _installed_migration_dirs() -> list[str]:
    """The enabled app's migration folders, then those of every other installed plugin."""
    from lms_core.pluginhost.manager import _entry_points

    dirs = list(current_app.extensions["lms_migration_dirs"])
    for name, entry_point in _entry_points().items():
        try:
            hook = getattr(entry_point.load(), "lms_migration_dirs", None)
            folders = (hook() if callable(hook) else None) or []
        except Exception:  # a broken plugin that is not enabled must not break the page
            current_app.logger.warning("plugin %s: its migration folders could not be read", name, exc_info=True)
            continue
        for folder in folders:
            if folder not in dirs:
                dirs.append(folder)
    return dirs


def database() -> dict[str, Any]:
    engine = db.engine
    version = engine.dialect.server_version_info
    return {
        "name": engine.dialect.name,
        "driver": engine.dialect.driver,
        "version": ".".join(str(part) for part in version) if version else "",
    }
