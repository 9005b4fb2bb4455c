#!/usr/bin/env python3
"""Grouped bar chart (SVG, no dependencies) of page throughput per milestone.

    .venv/bin/python bench/chart.py docs/benchmarks-pages.csv docs/img/pages.svg --target 300

The CSV has ``milestone,page,pages_per_s,p95_ms`` (one row per page and milestone, in
order); bars are grouped by milestone, one colour per page, with the target as a line
and each bar labelled with its pages/s and p95.
"""

from __future__ import annotations

import argparse
import csv
import sys
from html import escape

COLOURS = ["#2f6db5", "#d9822b", "#3f9e4d", "#9c4fb0", "#b5443a"]
WIDTH, HEIGHT = 880, 420
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 50, 95


def render(rows: list[dict[str, str]], target: float, title: str) -> str:
    milestones = list(dict.fromkeys(r["milestone"] for r in rows))
    pages = list(dict.fromkeys(r["page"] for r in rows))
    value = {(r["milestone"], r["page"]): (float(r["pages_per_s"]), r.get("p95_ms", "")) for r in rows}
    top = max([target, *(v for v, _ in value.values())]) * 1.15
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group_w = plot_w / len(milestones)
    bar_w = group_w * 0.8 / len(pages)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    step = 100
    for tick in range(0, int(top) + 1, step):
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
    out.append(
        f'<text x="14" y="{TOP + plot_h / 2}" transform="rotate(-90 14 {TOP + plot_h / 2})" '
        'text-anchor="middle">pages/s</text>'
    )
    for g, milestone in enumerate(milestones):
        x0 = LEFT + g * group_w + group_w * 0.1
        for i, page in enumerate(pages):
            if (milestone, page) not in value:
                continue
            v, p95 = value[(milestone, page)]
            x = x0 + i * bar_w
            out.append(
                f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w - 2:.1f}" height="{TOP + plot_h - y(v):.1f}" '
                f'fill="{COLOURS[i % len(COLOURS)]}"><title>{escape(page)}: {v:g} pages/s, p95 {p95} ms'
                "</title></rect>"
            )
            out.append(
                f'<text x="{x + bar_w / 2 - 1:.1f}" y="{y(v) - 3:.1f}" text-anchor="middle" font-size="9">'
                f"{v:.0f}</text>"
            )
        label_y = TOP + plot_h + 16
        for n, part in enumerate(_wrap(milestone, 26)):
            out.append(
                f'<text x="{LEFT + g * group_w + group_w / 2:.1f}" y="{label_y + n * 13}" '
                f'text-anchor="middle">{escape(part)}</text>'
            )
    out.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
        'stroke="#c00" stroke-dasharray="6 4" stroke-width="1.5"/>'
    )
    out.append(
        f'<text x="{WIDTH - RIGHT}" y="{y(target) - 4:.1f}" text-anchor="end" fill="#c00">target {target:g}</text>'
    )
    for i, page in enumerate(pages):
        lx = LEFT + i * 150
        out.append(f'<rect x="{lx}" y="{HEIGHT - 22}" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>')
        out.append(f'<text x="{lx + 16}" y="{HEIGHT - 12}">{escape(page)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = [""]
    for word in text.split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv")
    parser.add_argument("svg")
    parser.add_argument("--target", type=float, default=300)
    parser.add_argument("--title", default="Signed-in pages on 2 cores (PostgreSQL, gunicorn, 16 clients)")
    args = parser.parse_args(argv)
    with open(args.csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        print("error: no rows", file=sys.stderr)
        return 1
    with open(args.svg, "w", encoding="utf-8") as fh:
        fh.write(render(rows, args.target, args.title))
    print(f"wrote {args.svg} ({len(rows)} bars)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
