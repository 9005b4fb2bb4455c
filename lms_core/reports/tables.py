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

from flask import Response
from markupsafe import Markup, escape

from lms_core import csv_export

#: Milliseconds in one hour of study.
MS_PER_HOUR = 3_600_000


#: Milliseconds in one hundredth of an hour.
_MS_PER_CENTIHOUR = MS_PER_HOUR // 100


def hours(ms: int | None) -> Decimal:
    """Credited milliseconds as hours with two decimals (the same figure on screen and in files).

    Rounded half to even, as ``(Decimal(ms) / MS_PER_HOUR).quantize(Decimal("0.01"))``
    would (a test compares them), in integers: an hours table calls this for every
    cell (13 × 500 units), and Decimal division and quantize were most of the
    table's building.
    """
    ms = int(ms or 0)
    if ms < 0:  # never credited; the Decimal form keeps the sign of a rounded -0.00
        return (Decimal(ms) / MS_PER_HOUR).quantize(Decimal("0.01"))
    centi, rest = divmod(ms, _MS_PER_CENTIHOUR)
    if 2 * rest > _MS_PER_CENTIHOUR or (2 * rest == _MS_PER_CENTIHOUR and centi & 1):
        centi += 1
    return Decimal(centi).scaleb(-2)


def hundredths(ms_row: Sequence[int]) -> list[int]:
    """:func:`hours` of each figure of a row, as integer hundredths of an hour (``1234`` is 12.34).

    For a table's many cells (a county's hours table has 6,700): no Decimal and no call
    per cell. ``round(ms / 36_000)`` rounds half to even exactly while the quotient's
    float is exact at every tie and cannot land on one otherwise: for 0 <= ms < 2**52,
    far above any year of credited time. Outside that range each figure takes the
    integer route of :func:`hours`.
    """
    if ms_row and (min(ms_row) < 0 or max(ms_row) >= 1 << 52):
        return [int(hours(ms).scaleb(2)) for ms in ms_row]
    return [round(ms / _MS_PER_CENTIHOUR) for ms in ms_row]


def hundredths_text(value: int) -> str:
    """``1234`` -> ``"12.34"``: the text ``str(hours(ms))`` gives for the same figure."""
    whole, cents = divmod(abs(value), 100)
    return f"{'-' if value < 0 else ''}{whole}.{cents:02d}"


@dataclass
class Table:
    """Headers (already translated) and rows of plain values; ``keys`` carry drill-down ids per row.

    Columns in ``in_hundredths`` (consecutive) hold integer hundredths (of an hour): the page writes
    them as ``12.34`` and the exports as that Decimal, so both still read these rows.
    """

    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    in_hundredths: range = range(0)


#: Cell types whose text never needs escaping (most cells of a report are figures).
_NUMBERS = frozenset((int, Decimal, float))


def html_rows(table: Table, day_col: int | None = None) -> Markup:
    """The ``<tr>`` rows of a report table's body (``reports/_table.html``'s ``report_table``).

    Written here rather than in the template: a 500-unit hours table has 7,500 cells,
    and Jinja's loop bookkeeping per cell was most of the page's CPU. Same markup as
    the macro wrote: subtotal and total rows carry a class, units indent by level, and
    with ``day_col`` that column links to the person's day when the row's key names
    a user and a day. Every cell is escaped.
    """
    from flask import url_for
    from flask_babel import gettext as _

    if not table.rows:
        return Markup('<tr><td colspan="{}" class="muted">{}</td></tr>').format(len(table.headers), _("No rows match."))
    day_title = escape(_("The day as a picture")) if day_col is not None else ""
    scaled = table.in_hundredths
    start, stop = scaled.start, scaled.stop
    # The scaled figures of a row in one format call (one cell each), unless a link goes in one of them.
    joined = scaled and (day_col is None or day_col < start)
    figures = "</td><td>".join(["%.2f"] * len(scaled))
    out = []
    for index, row in enumerate(table.rows):
        key = table.keys[index] if index < len(table.keys) else {}
        kind, level = key.get("kind"), key.get("level")
        if joined:
            numbers = row[start:stop]
            if len(numbers) == len(scaled) and min(numbers) > -_FLOAT_EXACT and max(numbers) < _FLOAT_EXACT:
                cells = [*_cells(row[:start]), figures % tuple([c / 100 for c in numbers]), *_cells(row[stop:])]
            else:
                cells = _cells(row[:start]) + _hundredths_cells(numbers) + _cells(row[stop:])
        elif scaled:
            cells = _cells(row[:start]) + _hundredths_cells(row[start:stop]) + _cells(row[stop:])
        else:
            cells = _cells(row) or [""]
        if day_col is not None and day_col < len(cells) and key.get("user") and key.get("day"):
            href = escape(url_for("audit.person_day", user_id=key["user"], day=key["day"]))
            cells[day_col] = f'<a href="{href}" title="{day_title}">{cells[day_col]}</a>'
        css = f' class="rollup-{escape(kind)}"' if kind in ("subtotal", "total") else ""
        pad = f' style="padding-left: {0.5 + level}em"' if level else ""
        out.append(f"<tr{css}><td{pad}>{'</td><td>'.join(cells)}</td></tr>")
    return Markup("\n".join(out))  # noqa: S704 - every cell and attribute above is escaped


def _cells(row: Sequence[Any]) -> list[str]:
    return [str(cell) if type(cell) in _NUMBERS else str(escape(cell)) for cell in row]


#: Below this many hundredths (in magnitude), ``c / 100`` is within far less than half a
#: hundredth of the true value, so ``.2f`` prints its digits.
_FLOAT_EXACT = 10**15


def _hundredths_cells(figures: Sequence[int]) -> list[str]:
    """:func:`hundredths_text` of each figure (ints: nothing to escape), through a float while it is exact enough."""
    if figures and min(figures) > -_FLOAT_EXACT and max(figures) < _FLOAT_EXACT:
        return [f"{c / 100:.2f}" for c in figures]
    return [hundredths_text(c) for c in figures]


def to_csv(table: Table) -> bytes:
    """UTF-8 with a BOM (Excel on Windows shows Chinese), cells made formula-safe."""
    buf = io.StringIO()
    buf.write(csv_export.BOM)
    writer = csv_export.writer(buf)
    writer.writerow(table.headers)
    writer.writerows(_plain(row, table.in_hundredths) for row in table.rows)
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
        sheet.append([csv_export.safe_cell(cell) for cell in _plain(row, table.in_hundredths)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


#: The media type of an .xlsx workbook.
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(table: Table, fmt: str, name: str, title: str) -> Response:
    """The table as a file to save: ``fmt`` ``"csv"`` (:func:`to_csv`) or ``"xlsx"`` (one sheet
    named ``title``); ``name`` is the file's name without its extension, in ASCII (every browser)."""
    if fmt == "csv":
        response = Response(to_csv(table), mimetype="text/csv; charset=utf-8")
    else:
        response = Response(to_xlsx(table, title), mimetype=XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = f"attachment; filename={name}.{fmt}"
    return response


def _plain(row: Sequence[Any], scaled: range = range(0)) -> list[Any]:
    cells = [str(cell) if not isinstance(cell, int | Decimal | str) or isinstance(cell, bool) else cell for cell in row]
    for i in scaled:  # the Decimal hours() gives, so files keep their figures and their text
        cells[i] = Decimal(row[i]).scaleb(-2)
    return cells


def _sheet_name(title: str) -> str:
    # Excel refuses these characters in sheet names and more than 31 characters.
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)
    return cleaned[:31] or "Sheet"
