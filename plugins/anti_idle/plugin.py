"""Hook implementations only; the logic lives in the plugin's service modules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lms_core.pluginhost import hookimpl

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lms_core.accounts.models import User
    from lms_core.courses.models import Lesson
    from lms_core.learning.assessment import IntervalClaim, Verdict
    from lms_core.learning.models import LessonProgress

HERE = Path(__file__).resolve().parent


class AntiIdlePlugin:
    @hookimpl
    def lms_default_settings(self) -> dict[str, Any]:
        # Thresholds are policy (versioned data, see policy.py); settings are operational.
        return {
            #: Person-days recomputed per transaction by ``flask lms anti-idle recompute``.
            "recompute_batch": 200,
            #: Days a held day may wait before the review list marks it overdue.
            "review_due_days": 7,
            #: R12d: data-centre address ranges (CIDRs separated by commas or spaces);
            #: empty means the list shipped in plugins/anti_idle/datacentre_ranges.txt.
            "datacentre_ranges": "",
        }

    @hookimpl
    def lms_capabilities(self) -> dict[str, set[str]]:
        return {
            # Post or void held days and decide appeals, within the auditor's org scope.
            "anti_idle.review": {"auditor", "org_admin", "site_admin"},
            # Edit the site-wide and per-course anti-idle policy.
            "anti_idle.policy": {"site_admin"},
        }

    @hookimpl
    def lms_blueprints(self) -> list[Any]:
        # The view modules add their routes to the one blueprint when imported.
        from plugins.anti_idle import check_views, learner_views, policy_views  # noqa: F401
        from plugins.anti_idle.views import api, bp

        return [bp, api]

    @hookimpl
    def lms_template_hook(self, name: str, context: dict[str, Any]) -> str | None:
        if name == "player_overlay":
            from flask import render_template

            from plugins.anti_idle.checks import poll_interval_ms
            from plugins.anti_idle.envelope import session_key

            return render_template(
                "anti_idle/_overlay.html",
                poll_ms=poll_interval_ms(context["lesson"]),
                beat_key=session_key(context["session"].id),
                **context,
            )
        if name == "admin_nav":
            # Built here, not with render_template: a nested render runs every context
            # processor and signal again, on every admin page (the nav is on all of them).
            from flask import url_for
            from flask_babel import gettext as _
            from flask_login import current_user
            from markupsafe import Markup, escape

            from lms_core.authz import can

            links = []
            if can(current_user, "anti_idle.policy"):
                links.append((url_for("anti_idle.policy_page"), _("Anti-idle policy")))
            if can(current_user, "anti_idle.review"):
                links.append((url_for("anti_idle.review"), _("Held study days and appeals")))
            return Markup("\n").join(Markup('<a href="{}">{}</a>').format(u, escape(t)) for u, t in links) or None
        if name == "lesson_player":
            from flask import render_template
            from flask_login import current_user

            from plugins.anti_idle import appeals

            lines = appeals.lines_for(current_user.id, lesson_id=context["lesson"].id, limit=20)
            return render_template("anti_idle/_lesson.html", lines=lines, **appeals.template_context())
        return None

    @hookimpl
    def lms_event_labels(self) -> dict[str, Any]:
        from plugins.anti_idle.events import EVENT_NAMES, OBJECT_NAMES

        return {**EVENT_NAMES, **OBJECT_NAMES}

    @hookimpl
    def lms_handle_event(self, event: Any) -> None:
        from plugins.anti_idle.verdicts import on_beat_refused, on_check_answered

        on_beat_refused(event)
        on_check_answered(event)

    @hookimpl
    def lms_job_handlers(self) -> dict[str, Any]:
        from plugins.anti_idle import rejudge
        from plugins.anti_idle.verdicts import rejudge_day

        return {rejudge.JOB: rejudge_day}

    @hookimpl
    def lms_dashboard_panels(self, user: Any) -> list[Any]:
        from flask import render_template
        from flask_babel import gettext as _

        from lms_core.pluginhost import DashboardPanel
        from plugins.anti_idle import appeals

        days = appeals.recent_days(user.id, limit=7)
        lines = appeals.lines_for(user.id, day_ids=[d.id for d in days], limit=50)
        by_day: dict[int, list[Any]] = {}
        for line in lines:
            by_day.setdefault(line.day_verdict_id, []).append(line)
        html = render_template("anti_idle/_panel.html", days=days, by_day=by_day, **appeals.template_context())
        return [DashboardPanel(key="anti-idle", title=_("Study time checks"), html=html, order=40)]

    @hookimpl
    def lms_day_picture(self, person: User, day: Any, session_lanes: dict[str, str]) -> Any:
        from plugins.anti_idle.day import layer

        return layer(person, day, session_lanes)

    @hookimpl
    def lms_log_rule_filter(self) -> Any:
        from plugins.anti_idle.log_filter import rule_filter

        return rule_filter()

    @hookimpl
    def lms_report_charts(self, scope: Any) -> list[Any]:
        from plugins.anti_idle.report_charts import charts

        return charts(scope)

    @hookimpl
    def lms_report_rollups(self) -> list[tuple[str, Any]]:
        from plugins.anti_idle.report_charts import rollups

        return rollups()

    @hookimpl
    def lms_migration_dirs(self) -> list[str]:
        return [str(HERE / "migrations" / "versions")]

    @hookimpl
    def lms_translation_dirs(self) -> list[str]:
        return [str(HERE / "translations")]

    @hookimpl
    def lms_cli_commands(self) -> list[Any]:
        from plugins.anti_idle.cli import anti_idle_group
        from plugins.anti_idle.demo import demo_command
        from plugins.anti_idle.policy_cli import policy_group

        anti_idle_group.add_command(policy_group)
        anti_idle_group.add_command(demo_command)
        return [anti_idle_group]

    @hookimpl
    def lms_completion_verdict(self, user: User, lesson: Lesson, progress: LessonProgress) -> bool | None:
        from plugins.anti_idle.verdicts import holds_completion

        # A held day that touched the lesson holds its completion until an auditor posts it.
        return False if holds_completion(user.id, lesson.id) else None

    @hookimpl
    def lms_completion_group_read(self, batch: Any, lessons: list[tuple[int, int]]) -> None:
        import plugins.anti_idle.verdicts as verdicts  # not ``from``: see lms_beat_received

        verdicts.read_holds(batch, lessons)

    @hookimpl
    def lms_beat_received(self, session_id: str, body: bytes) -> None:
        # ``import ... as``, not ``from ... import``: in a function, the latter looks for the
        # module's ``__path__`` on every call, two ``AttributeError``s made and dropped (Python
        # 3.11), on every beat for this hook and the next.
        import plugins.anti_idle.envelope as envelope

        envelope.receive(session_id, body)

    @hookimpl
    def lms_beat_group_read(self, batch: Any, beats: list[tuple[int, int, str]]) -> None:
        from plugins.anti_idle.services import JUDGED_KINDS
        from plugins.anti_idle.state import group_read

        group_read(
            batch, [(user_id, course_id, kind == "video") for user_id, course_id, kind in beats if kind in JUDGED_KINDS]
        )

    @hookimpl
    def lms_assess_interval(self, claim: IntervalClaim) -> Verdict | None:
        import plugins.anti_idle.services as services  # not ``from``: see lms_beat_received

        return services.assess_interval(claim)

    @hookimpl
    def lms_interval_reason(self, reason: Mapping[str, Any]) -> str | None:
        from plugins.anti_idle.interval_reasons import reason_text

        return reason_text(reason)
