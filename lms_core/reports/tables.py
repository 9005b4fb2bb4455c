"""A report's rows, the one object both the page and its CSV/XLSX exports read.

Each report query builds a :class:`Table`; the page renders ``table.rows`` and the
exports write the very same list, so an export can never differ from the screen
(design note A4.4: "export exactly what I filtered").
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lms_core import csv_export

#: Milliseconds in one hour of study.
MS_PER_HOUR = 3_600_000


def hours(ms: int | None) -> Decimal:
    """Credited milliseconds as hours with two decimals (the same figure on screen and in files)."""
    return (Decimal(int(ms or 0)) / MS_PER_HOUR).quantize(Decimal("0.01"))


@dataclass
class Table:
    """Headers (already translated) and rows of plain values; ``keys`` carry drill-down ids per row."""

    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)


def to_csv(table: Table) -> bytes:
    """UTF-8 with a BOM (Excel on Windows shows Chinese), cells made formula-safe."""
    buf = io.StringIO()
    buf.write(csv_export.BOM)
    writer = csv_export.writer(buf)
    writer.writerow(table.headers)
    writer.writerows(_plain(row) for row in table.rows)
    return buf.getvalue().encode("utf-8")


def to_xlsx(table: Table, sheet_title: str) -> bytes:
    """An .xlsx workbook of the same rows; strings pass the CSV formula guard too.

    openpyxl stores a string starting with ``=`` as a formula, so a name imported
    as ``=HYPERLINK(...)`` would be just as live in Excel as in a CSV.
    """
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=_sheet_name(sheet_title))
    sheet.append([csv_export.safe_cell(h) for h in table.headers])
    for row in table.rows:
        sheet.append([csv_export.safe_cell(cell) for cell in _plain(row)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _plain(row: Sequence[Any]) -> list[Any]:
    return [str(cell) if not isinstance(cell, int | Decimal | str) or isinstance(cell, bool) else cell for cell in row]


def _sheet_name(title: str) -> str:
    # Excel refuses these characters in sheet names and more than 31 characters.
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)
    return cleaned[:31] or "Sheet"
