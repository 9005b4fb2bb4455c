"""Value types that plugins return from hooks.

Their own module so that ``hookspecs`` (which names them) and ``manager`` (which
loads the specs) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DashboardPanel:
    """One panel on the dashboard, contributed by ``lms_dashboard_panels``."""

    key: str
    title: str
    html: str  # already escaped / rendered by the plugin
    order: int = 100


@dataclass(frozen=True)
class CreditSummary:
    """A year's credit from a credit plugin (``lms_credit_summary``), in 0.01 学时."""

    posted_centi: int
    pending_centi: int  #: 审核中
    overflow_centi: int  #: 记录但不计入
    required_centi: int
    detail_url: str | None = None
