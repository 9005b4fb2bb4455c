"""Hook implementations only: the credit bank's contributions to the platform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lms_core.pluginhost import hookimpl

HERE = Path(__file__).resolve().parent

#: Declared settings (stored as ``credit_bank.<key>``).
DEFAULT_SETTINGS: dict[str, Any] = {
    #: Days an offline claim may wait for review before its hold lapses (void).
    "claim_timeout_days": 180,
    #: Evidence files per offline claim.
    "claim_max_files": 5,
}


class CreditBankPlugin:
    @hookimpl
    def lms_default_settings(self) -> dict[str, Any]:
        return dict(DEFAULT_SETTINGS)

    @hookimpl
    def lms_migration_dirs(self) -> list[str]:
        return [str(HERE / "migrations" / "versions")]

    @hookimpl
    def lms_translation_dirs(self) -> list[str]:
        return [str(HERE / "translations")]

    @hookimpl
    def lms_blueprints(self) -> list[Any]:
        from plugins.credit_bank.transcripts.views import bp as transcripts_bp

        return [transcripts_bp]

    @hookimpl
    def lms_cli_commands(self) -> list[Any]:
        from plugins.credit_bank.cli import credit_group
        from plugins.credit_bank.transcripts import cli  # noqa: F401 - adds the transcript commands to the group

        return [credit_group]

    @hookimpl
    def lms_app_created(self, app: Any) -> None:
        # Importing the models registers the tables on the shared metadata (for Alembic).
        import plugins.credit_bank.models  # noqa: F401
        import plugins.credit_bank.transcripts.models  # noqa: F401
