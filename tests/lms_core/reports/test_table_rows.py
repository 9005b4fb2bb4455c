"""A report table's rows are written in Python (``tables.html_rows``) with the markup the
Jinja macro wrote before, cell for cell, escaped."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask import Flask, render_template_string
from markupsafe import escape

from lms_core.reports.tables import Table, html_rows

pytestmark = pytest.mark.backends("sqlite")  # no database involved

#: The macro as it was (reports/_table.html before the rows moved to Python), on one line.
OLD_MACRO = (
    "{% macro day_cell(cell, key) %}{% if key.user and key.day %}<a href=\"{{ url_for('audit.person_day', "
    'user_id=key.user, day=key.day) }}" title="{{ _(\'The day as a picture\') }}">{{ cell }}</a>'
    "{% else %}{{ cell }}{% endif %}{% endmacro %}"
    "{% for row in table.rows %}"
    "{% set key = table.keys[loop.index0] if table.keys|length > loop.index0 else {} %}"
    "<tr{% if key.kind in ('subtotal', 'total') %} class=\"rollup-{{ key.kind }}\"{% endif %}>"
    '<td{% if key.level %} style="padding-left: {{ 0.5 + key.level }}em"{% endif %}>'
    "{% if day_col == 0 %}{{ day_cell(row[0], key) }}{% else %}{{ row[0] }}{% endif %}</td>"
    "{% for cell in row[1:] %}<td>{% if loop.index == day_col %}{{ day_cell(cell, key) }}"
    "{% else %}{{ cell }}{% endif %}</td>{% endfor %}</tr>"
    "{% else %}"
    '<tr><td colspan="{{ table.headers|length }}" class="muted">{{ _(\'No rows match.\') }}</td></tr>'
    "{% endfor %}"
)


def _table() -> Table:
    return Table(
        ["单位", "代码", "姓名", "日期", "学时"],
        [
            ["南岭县", "3601", '<b>张三</b> & "李"', "2026-05-10", Decimal("1.50")],
            ["  一镇", "360101", None, "2026-05-11", Decimal("0.00")],
            ["合计", "", "", "", 12],
            ["孤行", "x", "y", "z", 1.25],
        ],
        [
            {"unit": 1, "level": 0, "kind": "unit", "user": 7, "day": "2026-05-10"},
            {"unit": 2, "level": 2, "kind": "subtotal", "user": 8},
            {"level": 1, "kind": "total"},
        ],
    )


@pytest.mark.parametrize("day_col", [None, 0, 3])
def test_rows_equal_the_old_macro(app: Flask, day_col: int | None) -> None:
    with app.test_request_context("/"):
        for table in (_table(), Table(["a", "b"])):
            old = render_template_string(OLD_MACRO, table=table, day_col=day_col)
            new = html_rows(table, day_col)
            assert new.replace("\n", "") == old  # rows apart on lines of their own, else the same
        assert "&lt;b&gt;张三&lt;/b&gt; &amp; &#34;李&#34;" in html_rows(_table()) and "<b>" not in html_rows(_table())
        linked = html_rows(_table(), 3)
        assert linked.count('<a href="/audit/users/7/days/2026-05-10"') == 1
        assert '<tr class="rollup-subtotal"><td style="padding-left: 2.5em">' in linked


def test_hours_round_half_to_even_as_the_decimal_formula():
    """``hours`` works in integers; its figures and their text equal the Decimal formula's,
    ties (…5 thousandths of an hour) and negative figures included."""
    import random
    from decimal import Decimal

    from lms_core.reports.tables import MS_PER_HOUR, hours

    def formula(ms):
        return (Decimal(int(ms or 0)) / MS_PER_HOUR).quantize(Decimal("0.01"))

    ties = [36_000 * k + 18_000 for k in range(200)]  # exactly half a hundredth of an hour
    rng = random.Random(12)
    values = [None, 0, 1, 17_999, 18_001, 3_600_000, 10**15 + 18_000, -1, -18_000, -54_000, *ties]
    values += [rng.randrange(0, 10**13) for _ in range(5_000)]
    for ms in values:
        assert str(hours(ms)) == str(formula(ms)), ms
    assert str(hours(54_000)) == "0.02" and str(hours(18_000)) == "0.00" and str(hours(None)) == "0.00"


def test_hundredths_are_the_hours_figures_and_text():
    """The hours table's integer cells: ``hundredths`` rounds as ``hours`` does (ties and
    huge or negative figures included), the page writes the text ``hours`` prints and the
    exports write its Decimal. Only a negative figure that rounds to zero differs: an integer
    has no -0 (credited time is never negative)."""
    import random

    from lms_core.reports.tables import Table, _hundredths_cells, _plain, hours, hundredths, hundredths_text, to_csv

    ties = [36_000 * k + 18_000 for k in range(200)]
    rng = random.Random(7)
    values = [0, 1, 17_999, 18_000, 18_001, 54_000, 3_600_000, 10**15 + 18_000, (1 << 52) + 18_000, -1, -54_000]
    values += [*ties, *(rng.randrange(0, 10**13) for _ in range(5_000))]
    for row in ([v] for v in values):
        (cell,) = hundredths(row)
        expected = "0.00" if str(hours(row[0])) == "-0.00" else str(hours(row[0]))
        assert hundredths_text(cell) == expected, row
        assert [str(c) for c in _plain([cell], range(1))] == [expected], row
    assert hundredths([54_000, 18_000, 90_000]) == [2, 0, 2]
    # The page's float route prints what the integer route prints, at its edges too.
    figures = [0, 1, 5, 99, 100, 101, -1, -100, -101, 10**15 - 1, -(10**15) + 1, 10**15, 10**20 + 7]
    figures += [rng.randrange(-(10**15), 10**15) for _ in range(5_000)]
    for c in figures:
        assert _hundredths_cells([c]) == [hundredths_text(c)], c
    assert _hundredths_cells(figures) == [hundredths_text(c) for c in figures]
    assert hundredths_text(-2) == "-0.02" and hundredths_text(123456) == "1234.56"

    table = Table(["单位", "1月", "合计"], [["A&B", 1234, 5]], [{}], in_hundredths=range(1, 3))
    assert "<td>A&amp;B</td><td>12.34</td><td>0.05</td>" in html_rows(table)
    assert to_csv(table).decode("utf-8-sig").splitlines()[1] == "A&B,12.34,0.05"


def test_hundredths_rows_print_every_figure_as_its_text(app: Flask) -> None:
    """The page writes a row's scaled figures in one format call: the text of each is
    ``hundredths_text``'s, on rows with huge, negative and tie-adjacent figures too, and a
    day link inside the scaled columns still lands in its cell."""
    import random

    from lms_core.reports.tables import hundredths_text

    rng = random.Random(3)
    edges = [0, 1, 5, 99, 100, 101, -1, -100, 10**15 - 1, -(10**15) + 1, 10**15, 10**20 + 7]
    rows = [["<u>", "c&1", *(rng.choice(edges) if rng.random() < 0.3 else rng.randrange(10**9) for _ in range(4)), "z"]]
    rows += [[f"u{i}", str(i), *(rng.randrange(-(10**6), 10**12) for _ in range(4)), "y"] for i in range(300)]
    keys = [{"kind": "unit", "level": i % 3, "user": 5, "day": "2026-05-10"} for i in range(len(rows))]
    with app.test_request_context("/"):
        for day_col in (None, 0, 3):
            page = str(html_rows(Table(["a", "b", "c", "d", "e", "f", "g"], rows, keys, range(2, 6)), day_col))
            for line, row in zip(page.split("\n"), rows, strict=True):
                cells = [str(escape(row[0])), str(escape(row[1])), *(hundredths_text(c) for c in row[2:6]), row[6]]
                if day_col is not None:
                    cells[day_col] = (
                        f'<a href="/audit/users/5/days/2026-05-10" title="查看当天时间线">{cells[day_col]}</a>'
                    )
                assert line.endswith("<td>" + "</td><td>".join(cells[1:]) + "</td></tr>"), (day_col, row)
                assert f">{cells[0]}</td><td>" in line
