"""The annual quality report as a PDF: fpdf2, the embedded CJK font, charts drawn with its primitives.

Why fpdf2 primitives rather than matplotlib: the charts are bars and one line, a few
dozen rectangles and segments; fpdf2 is already a dependency, and the text of the
charts (unit names, values) stays real text in the PDF, so it can be searched and
extracted (the tests read it back), which a raster image from matplotlib would not be.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from lms_core.pdf.fonts import FAMILY, register_cjk_font
from lms_core.reports.annual import AnnualReport
from lms_core.reports.charts import Chart
from lms_core.reports.tables import Table

#: The dashboard's palette (themes/default/static/js/dashboard.js), as RGB.
PALETTE = [(185, 28, 28), (29, 78, 216), (21, 128, 61), (180, 83, 9), (109, 40, 217), (14, 116, 144)]
#: A chart shows at most this many categories; the table under it lists them all.
MAX_BARS = 15
LABEL_W = 52.0
ROW_H = 4.2


def render(report: AnnualReport) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_margins(15, 15, 15)
    register_cjk_font(pdf)
    pdf.set_title(report.title)
    pdf.set_creator("cadre-lms")
    pdf.add_page()

    pdf.set_font(FAMILY, size=17)
    pdf.multi_cell(0, 9, report.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=9)
    pdf.set_text_color(90, 90, 90)
    pdf.multi_cell(
        0,
        5,
        _(
            "Generated %(time)s (Beijing time) from the platform's records; figures cover %(year)d.",
            time=report.generated_label,
            year=report.scope.year,
        )
        + (
            " " + _("Report figures as of %(time)s (Beijing time).", time=report.scope.as_of_label)
            if report.scope.as_of
            else ""
        ),
        align="C",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_text_color(0, 0, 0)
    pdf.ln(4)

    _heading(pdf, _("1. Key figures"))
    figures = Table([_("Indicator"), _("Value"), _("Note")], [[f.label, f.value, f.note] for f in report.figures])
    _table(pdf, figures, widths=(80, 40, 60))

    _heading(pdf, _("2. Units compared"))
    if report.units is not None and report.units.rows:
        _table(pdf, report.units, widths=(52, 30, 36, 32, 30))
    else:
        _paragraph(pdf, _("No unit data for this year."))

    _heading(pdf, _("3. Charts"))
    for index, chart in enumerate(report.charts, start=1):
        _chart(pdf, chart, index)
    return bytes(pdf.output())


def _heading(pdf: Any, text: str) -> None:
    if pdf.will_page_break(20):
        pdf.add_page()
    pdf.ln(2)
    pdf.set_font(FAMILY, size=13)
    pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=9)


def _paragraph(pdf: Any, text: str) -> None:
    pdf.set_font(FAMILY, size=9)
    pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _table(pdf: Any, table: Table, widths: tuple[float, ...] | None = None) -> None:
    from fpdf.fonts import FontFace

    pdf.set_font(FAMILY, size=8)
    pdf.set_fill_color(255, 255, 255)  # a chart's bar colour must not fill the cells
    pdf.set_draw_color(120, 120, 120)
    # The embedded font has no bold face: headings are set apart by a fill instead.
    headings = FontFace(emphasis="", fill_color=(238, 240, 243))
    with pdf.table(
        col_widths=widths, text_align="LEFT", line_height=5, first_row_as_headings=True, headings_style=headings
    ) as out:
        header = out.row()
        for h in table.headers:
            header.cell(str(h))
        for row in table.rows:
            line = out.row()
            for cell in row:
                line.cell(str(cell))
    pdf.ln(3)


def _fit(pdf: Any, text: str, width: float) -> str:
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _chart(pdf: Any, chart: Chart, index: int) -> None:
    shown = min(len(chart.categories), MAX_BARS)
    height = 14 + (70 if chart.kind == "line" else shown * ROW_H * len(chart.series) + shown * 1.5 + 8)
    if pdf.will_page_break(min(height, 120)):
        pdf.add_page()
    pdf.set_font(FAMILY, size=11)
    pdf.cell(0, 7, f"{index}. {chart.title}", new_x="LMARGIN", new_y="NEXT")
    _paragraph(pdf, chart.summary)
    if chart.empty:
        return
    _legend(pdf, chart)
    if chart.kind == "line":
        _line_chart(pdf, chart)
    else:
        _bar_chart(pdf, chart, shown)
    if len(chart.categories) > shown:
        _paragraph(pdf, _("The chart shows the first %(n)d; the table lists all.", n=shown))
    _table(pdf, chart.table())


def _legend(pdf: Any, chart: Chart) -> None:
    pdf.set_font(FAMILY, size=8)
    x, y = pdf.l_margin, pdf.get_y()
    for i, series in enumerate(chart.series):
        pdf.set_fill_color(*PALETTE[i % len(PALETTE)])
        pdf.rect(x, y + 1, 3, 3, style="F")
        pdf.set_xy(x + 4, y)
        label = f"{series.name} ({chart.unit})"
        pdf.cell(pdf.get_string_width(label) + 2, 5, label)
        x += pdf.get_string_width(label) + 10
    pdf.set_xy(pdf.l_margin, y + 6)


def _bar_chart(pdf: Any, chart: Chart, shown: int) -> None:
    """Horizontal bars (one per series and category): labels stay readable whatever their length."""
    pdf.set_font(FAMILY, size=7.5)
    left = pdf.l_margin + LABEL_W
    width = pdf.w - pdf.r_margin - left - 16
    top = max((max(s.values[:shown], default=0) for s in chart.series), default=0) or 1
    y0 = y = pdf.get_y()
    for c in range(shown):
        block = ROW_H * len(chart.series)
        pdf.set_xy(pdf.l_margin, y + (block - ROW_H) / 2)
        pdf.cell(LABEL_W - 2, ROW_H, _fit(pdf, chart.categories[c], LABEL_W - 3), align="R")
        for s, series in enumerate(chart.series):
            value = series.values[c]
            bar = max(0.0, width * value / top)
            pdf.set_fill_color(*PALETTE[s % len(PALETTE)])
            if bar > 0:
                pdf.rect(left, y + s * ROW_H + 0.4, bar, ROW_H - 0.8, style="F")
            pdf.set_xy(left + bar + 1, y + s * ROW_H)
            pdf.cell(15, ROW_H, f"{value:g}")
        y += block + 1.5
    pdf.set_draw_color(120, 120, 120)
    pdf.line(left, y0, left, y - 1.5)
    pdf.set_xy(pdf.l_margin, y + 3)


def _line_chart(pdf: Any, chart: Chart) -> None:
    pdf.set_font(FAMILY, size=7.5)
    left, top_y = pdf.l_margin + 12, pdf.get_y() + 2
    width, height = pdf.w - pdf.r_margin - left - 4, 50.0
    peak = max((max(s.values, default=0) for s in chart.series), default=0) or 1
    pdf.set_draw_color(200, 200, 200)
    for k in range(5):  # gridlines with their values
        gy = top_y + height - height * k / 4
        pdf.line(left, gy, left + width, gy)
        pdf.set_xy(pdf.l_margin, gy - 2)
        pdf.cell(11, 4, f"{round(peak * k / 4, 2):g}", align="R")
    n = len(chart.categories)
    step = width / max(n - 1, 1)
    for i, category in enumerate(chart.categories):
        pdf.set_xy(left + i * step - 6, top_y + height + 1)
        pdf.cell(12, 4, category, align="C")
    for s, series in enumerate(chart.series):
        color = PALETTE[s % len(PALETTE)]
        pdf.set_draw_color(*color)
        pdf.set_fill_color(*color)
        pdf.set_line_width(0.6)
        points = [(left + i * step, top_y + height - height * v / peak) for i, v in enumerate(series.values)]
        for a, b in zip(points, points[1:], strict=False):
            pdf.line(a[0], a[1], b[0], b[1])
        for x, y in points:
            pdf.ellipse(x - 0.8, y - 0.8, 1.6, 1.6, style="F")
        pdf.set_line_width(0.2)
    pdf.set_xy(pdf.l_margin, top_y + height + 8)
