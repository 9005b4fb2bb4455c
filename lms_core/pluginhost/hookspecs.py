"""The plugin contract.

Every hook says *when* it runs, *what* it returns and *how* the answers of several
plugins combine. pluggy checks implementations against these signatures when a
plugin is registered, and ``check_pending()`` rejects hook names that match no
spec, so a typo in a plugin fails at start-up instead of being silently ignored.

Phases used below:

* **app creation**: once, inside ``create_app``, before the first request.
* **request**: inside a request (or CLI command) with an application context.
* **transaction**: inside the business transaction; the hook may add rows to
  ``db.session`` but must not commit.
* **after commit**: after the business transaction committed, each
  implementation in its own transaction; failures are recorded, not raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    import click
    from flask import Blueprint, Flask

    from lms_core.accounts.models import User
    from lms_core.courses.models import Lesson
    from lms_core.events.models import Event
    from lms_core.learning.assessment import IntervalClaim, Verdict
    from lms_core.learning.models import LessonProgress
    from lms_core.pluginhost.answers import CreditSummary, DashboardPanel, DayLayer, RuleFilter

PROJECT = "lms"
hookspec = pluggy.HookspecMarker(PROJECT)
#: Plugins decorate their implementations with this marker.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def lms_default_settings() -> dict[str, Any]:  # type: ignore[empty-body]
    """Declare the plugin's settings and their defaults.

    Phase: app creation. Returns ``{key: default}``. Keys are stored as
    ``<plugin>.<key>``; reading or writing an undeclared key raises ``KeyError``
    (strict settings, as in Indico). Each plugin's answer is kept under its own name.
    """


@hookspec
def lms_capabilities() -> dict[str, set[str]]:  # type: ignore[empty-body]
    """Declare capabilities and the roles that hold them by default.

    Phase: app creation. Returns ``{capability: {role, ...}}``; roles are
    ``learner``, ``instructor``, ``auditor``, ``org_admin``, ``site_admin``.
    Answers are merged into the core registry; declaring a capability the core or
    another plugin already declared is an error (two owners for one permission).
    """


@hookspec
def lms_blueprints() -> list[Blueprint]:  # type: ignore[empty-body]
    """Blueprints to register on the application.

    Phase: app creation. Each blueprint brings its own ``templates/<name>/`` and
    ``static/`` folders; the active theme can still override its templates.
    Answers are concatenated.
    """


@hookspec
def lms_cli_commands() -> list[click.Command]:  # type: ignore[empty-body]
    """Click commands or groups to add under ``flask lms``.

    Phase: app creation. Answers are concatenated; a name clash is an error.
    """


@hookspec
def lms_migration_dirs() -> list[str]:  # type: ignore[empty-body]
    """Alembic version directories holding the plugin's own migration branch.

    Phase: app creation (read by ``flask db``). The first revision of a plugin's
    branch has ``branch_labels = ("<plugin>",)`` and ``depends_on`` the core
    revision whose tables it references. Answers are concatenated.
    """


@hookspec
def lms_translation_dirs() -> list[str]:  # type: ignore[empty-body]
    """Folders holding ``<locale>/LC_MESSAGES/messages.mo`` for the plugin's strings.

    Phase: app creation. Answers are concatenated after the core's own folder.
    """


@hookspec
def lms_template_hook(name: str, context: dict[str, Any]) -> str | None:
    """Markup for a named slot in a core template.

    Phase: request (rendering). ``name`` is the slot, e.g. ``head``,
    ``body_end``, ``dashboard_sidebar``, ``reports_index`` (links to a plugin's
    reports on the report index), ``lesson_player`` (below a lesson) or
    ``player_overlay`` (inside the positioned box of a video or document player,
    with ``lesson``, ``session`` and ``progress`` in ``context``: the place for
    an overlay and the script that drives it through ``window.lmsTracker``).
    Returns safe HTML or ``None``. All answers are joined in hook order (use
    ``tryfirst``/``trylast`` to order).
    """


@hookspec
def lms_dashboard_panels(user: User) -> list[DashboardPanel]:  # type: ignore[empty-body]
    """Panels for a user's dashboard.

    Phase: request. Returns panels the user may see (the plugin checks
    permissions); all answers are concatenated and sorted by ``panel.order``.
    """


@hookspec
# Typed Any: Chart and ChartScope live with the chart queries in lms_core/reports/charts.py,
# which calls this hook, so naming them here would make hookspecs and that module (and
# what it imports) one import cycle (tests/test_imports.py).
def lms_report_charts(scope: Any) -> list[Any]:  # type: ignore[empty-body]
    """Charts for the leaders' dashboard and the annual quality report.

    Phase: request (or the ``flask lms report annual`` command, with an app context).
    ``scope`` is a :class:`~lms_core.reports.charts.ChartScope`: the viewer, the year
    and the root unit; the plugin aggregates in SQL restricted to ``scope.units_condition(OrgUnit.path)`` (the viewer's
    ``reports.view`` scope and the root's subtree). Returns
    :class:`~lms_core.reports.charts.Chart` objects; answers are concatenated and
    sorted by ``chart.order``.
    """


@hookspec
def lms_report_rollups() -> list[tuple[str, Any]]:  # type: ignore[empty-body]
    """A plugin's report rollups: derived per-unit rows its dashboard charts read.

    Phase: transaction (the reports' rollup rebuild: the job ``reports.refresh_rollup``,
    ``flask lms report refresh`` and the annual report command). Returns
    ``(name, rebuild)`` pairs; ``rebuild()`` replaces the plugin's rollup rows from
    their sources in the caller's transaction (no commit) and returns the number of
    rows written. Every answer is rebuilt in hook order, after the core's rollups and
    under the same stamp; a page shows the oldest stamp of all of them.
    """


@hookspec(firstresult=True)
def lms_credit_summary(user: User, year: int) -> CreditSummary | None:
    """The person's credit for a (Beijing) calendar year, for the dashboard's "年度学时".

    Phase: request. A credit plugin returns the posted balance of the person's counted
    accounts, the amount 审核中 (held, pending review) and 记录但不计入 (over a cap),
    with the yearly target, so the core shows the bank's figures without importing the
    plugin. The first non-``None`` answer wins; with none, the dashboard shows the
    year's credited viewing and reading time as before.
    """


@hookspec
def lms_has_capability(user: User, capability: str, obj: Any) -> bool | None:
    """Override the core's role-based decision for ``can(user, capability, obj)``.

    Phase: request. Return ``True`` to grant, ``False`` to deny, ``None`` to
    abstain. The most restrictive answer wins: any ``False`` denies, otherwise
    any ``True`` grants, otherwise the core's role check decides.
    """


@hookspec
def lms_handle_event(event: Event) -> None:
    """React to a committed domain event.

    Phase: after commit, in a background job (inline in development). Each
    implementation runs in its own transaction and commits its own work; an
    exception rolls back that implementation only and is recorded for
    ``flask lms events replay``. Implementations **must be idempotent on
    ``event.id``**: a replay or a retried job delivers the same event again.
    """


@hookspec
def lms_event_labels() -> dict[str, Any]:  # type: ignore[empty-body]
    """Human names for the plugin's event codes and object types.

    Phase: request (read when the event log or its export is shown). Returns
    ``{code: lazy_gettext(...)}``: event names (``"anti_idle.day_assessed"``) and
    object types (the plugin's table names, ``"anti_idle_day_verdicts"``). Answers
    are merged; an event without a name shows as "other event", never as its code.
    """


@hookspec
def lms_job_handlers() -> dict[str, Any]:  # type: ignore[empty-body]
    """Background job kinds the plugin executes: ``{kind: callable(payload)}``.

    Phase: app creation. The callable runs in a worker with an application
    context and its own transaction; it must be idempotent (jobs are retried
    with backoff after a failure). Answers are merged; a clash is an error.
    """


@hookspec
def lms_beat_received(session_id: str, body: bytes) -> None:
    """A heartbeat request's exact body, before the core parses it.

    Phase: request (the heartbeat; before its transaction; no SQL). Called by the
    beat view and by the lean heartbeat front (``lms_core/learning/beat_front.py``)
    alike; the lean front has an application context but no request context, so a
    plugin keeps what it judged in ``g`` (which is this request's) and must not read
    ``request``. Anti-idle checks the signed envelope here. Return value ignored. The group
    path calls it with ``manager.call_plain`` (each implementation in pluggy's order, without
    pluggy's per-call work; a hook wrapper is still honoured, through pluggy).
    """


@hookspec
def lms_beat_group_read(batch: Any, beats: list[tuple[int, int, str]]) -> None:
    """Read, together, the rows a round of a beat group will ask for (PostgreSQL only).

    Phase: transaction (the ASGI front's group commit, ``lms_core/learning/beat_group.py``;
    after the core's locked read of the round, before its first beat). ``beats``: one
    ``(user id, course id, lesson kind)`` per beat, one beat per person, in person-id
    order. A plugin reads and locks its rows for all of them in one statement (person-id
    order, as the core locks) and keeps them in ``batch.read[its name]``; its
    ``lms_assess_interval`` then takes them from there, and may keep its writes with
    ``batch.add(name, writer, item)``: ``writer(items)`` writes them all in one statement,
    before any other statement on the connection and before the COMMIT. A plugin that does
    nothing here reads and writes as it does one beat at a time. Return value ignored.
    """


@hookspec
def lms_assess_interval(claim: IntervalClaim) -> Verdict | None:
    """Judge one heartbeat interval of viewing or reading before it is credited.

    Phase: transaction (inside the heartbeat request, after the core's own
    wall-clock check). ``claim`` carries the media ranges the client claims, the
    server-side wall times, the bytes served for the session and the raw client
    signals. Return a :class:`~lms_core.learning.assessment.Verdict` whose
    ``credited`` ranges are a subset of the claim, or ``None`` to abstain. The most
    restrictive answer wins: the core credits the *intersection* of all answers,
    and stores every verdict with the plugin's name and reason as evidence.
    ``Verdict.answer`` adds fields to the beat's JSON answer (the learner's page
    reads them; never a secret; the core's own fields and earlier plugins' win).
    """


@hookspec(firstresult=True)
def lms_interval_reason(reason: Mapping[str, Any]) -> str | None:
    """One plugin reason stored on a learning interval, as a sentence in the current language.

    Phase: request (the auditors' learning record). ``reason`` is one entry of
    ``LearningInterval.reasons`` as the core stored it: ``by`` (the plugin's name),
    ``verdict``, ``code``, ``credited_ms`` and the plugin's own ``reason`` text. A
    plugin answers only for its own reasons (``by``) and never shows rule codes or raw
    milliseconds; the first non-``None`` answer wins. With none, the page shows the verdict alone.
    """


@hookspec
def lms_completion_verdict(user: User, lesson: Lesson, progress: LessonProgress) -> bool | None:
    """May the lesson be marked complete now that the core's rule is met?

    Phase: transaction. Return ``False`` to hold completion (e.g. pending an
    anti-idle review), ``True``/``None`` to allow. Any ``False`` holds it; the
    core asks again on the next heartbeat or when ``flask lms`` recomputes.

    After a heartbeat, ``user`` may be the signed-in ``Principal`` (its ``id`` and
    ``org_unit_id``), and ``lesson`` and ``progress`` are *transient* copies (not in
    the session) with the values the beat read and decided: the lesson's ``id``,
    ``course_id``, ``kind``, ``media_id``, ``completion_threshold_pct`` and
    ``min_read_seconds``; the progress row's columns (but ``updated_at``) as the beat
    leaves them, ``status`` not yet completed. Read them; a change to them is not stored and their
    relationships are not loaded (a quiz, a survey or a recompute passes the ORM rows).
    In a round of a beat group (PostgreSQL) a plugin may answer from what it read ahead for
    the round in ``lms_completion_group_read``.
    """


@hookspec
def lms_completion_group_read(batch: Any, lessons: list[tuple[int, int]]) -> None:
    """Read ahead what ``lms_completion_verdict`` needs for a beat group's round.

    Phase: transaction (a round of a beat group, PostgreSQL: the writer thread). ``lessons``
    are the ``(person id, lesson id)`` pairs, sorted, whose beat in this round may meet the
    lesson's rule (a superset: bounded from the rows the round read, before its beats run).
    A plugin may read what it needs for them in one statement and keep it in ``batch.read``
    (under its own key), then answer ``lms_completion_verdict`` for those pairs from it
    during the round, instead of one statement per completing beat. ``lms_completion_verdict``
    is still asked for each beat that meets its rule and stays the plugin's say: a plugin
    whose answer for a person may change during the round (by what that person's beat
    writes) must answer that person from the database again. A plugin that implements
    nothing here is asked as before.
    """


@hookspec(firstresult=True)
def lms_xapi_embedded_client(name: str, scopes: tuple[str, ...], keep_key: str | None) -> tuple[str, str | None] | None:
    """A client of the LRS that runs inside this platform, for the platform's own statements.

    Phase: request (``flask lms xapi connect-embedded``, with an application
    context). ``keep_key`` is the key the platform saved earlier, or ``None`` when a
    new client is wanted (none saved, or ``--force``). An LRS plugin returns
    ``(keep_key, None)`` when that client still exists and is active; otherwise it
    creates a client named ``name`` with ``scopes``, commits it and returns
    ``(key, secret)``. The core saves the secret; it never imports the LRS. The first
    non-``None`` answer wins; with no implementation there is no embedded LRS.
    """


@hookspec
def lms_day_picture(person: User, day: dt.date, session_lanes: dict[str, str]) -> DayLayer | None:
    """The plugin's layer of "a learner's day, as a picture" (the auditors' day timeline).

    Phase: request (the viewer's right to see the person was checked by the core).
    ``day`` is a Beijing calendar day; ``session_lanes`` maps the day's learning
    session ids to the lane the core drew them on, so a plugin draws on the same
    lane. Returns a :class:`~lms_core.pluginhost.answers.DayLayer` (spans, marks, tables
    beside the picture, short facts) or ``None``. Answers are combined in hook order.
    """


@hookspec
def lms_log_rule_filter() -> RuleFilter | None:
    """Rules the learning-log browser can filter study sessions by (e.g. anti-idle rules).

    Phase: request (the browser page and its exports). Returns a
    :class:`~lms_core.pluginhost.answers.RuleFilter` (choices and a SQL condition on
    study sessions) or ``None``. Answers are combined: the choices are listed in hook
    order, and a code is filtered by the plugin that offered it. The core never imports
    the plugin's tables; with no answer the browser has no rule filter.
    """


@hookspec
def lms_app_created(app: Flask) -> None:
    """Last step of ``create_app``: every other hook has been applied.

    Phase: app creation. For anything the other hooks do not cover (Jinja
    filters, ``before_request`` handlers). Return value ignored.
    """
