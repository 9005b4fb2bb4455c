#!/usr/bin/env python3
"""Sum py-spy's raw samples of the live workers (bench/live_sample.py) into a report.

    .venv/bin/python bench/live_sample_report.py DIR [--top 40] [--match writer]

For each thread kind (the event loop, the writer, others: told apart by the thread's name
and its frames) it prints the share of samples, then the functions by self samples (the
leaf frame) and by inclusive samples (anywhere in the stack, counted once a sample).
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path


def parse(folder: Path) -> list[tuple[str, list[str], int]]:
    rows = []
    for file in sorted(folder.glob("*.txt")):
        for line in file.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = stack.split(";")
            rows.append((frames[0], frames[1:], int(count)))
    return rows


def kind(thread: str, frames: list[str]) -> str:
    """By the thread's name: the writers are named threads; the event loop is the main thread
    (``_settle``, though in beat_batch.py, runs on the loop: ``call_soon_threadsafe``)."""
    if "group-commit" in thread:
        return "writer"
    if "MainThread" in thread:
        return "loop"
    return "other"


def short(frame: str) -> str:
    # py-spy: "function (path/to/file.py:line)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    tail = "/".join(Path(path).parts[-2:]) if path else where
    return f"{name} ({tail})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="", help="only samples whose stack has this text")
    args = parser.parse_args()
    rows = parse(args.folder)
    if args.match:
        rows = [r for r in rows if any(args.match in f for f in r[1])]
    total = sum(c for *_, c in rows)
    if not total:
        sys.exit("no samples")
    by_kind: dict[str, int] = collections.Counter()
    self_: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    incl: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for thread, frames, count in rows:
        k = kind(thread, frames)
        by_kind[k] += count
        if frames:
            self_[k][short(frames[-1])] += count
        for f in {short(f) for f in frames}:
            incl[k][f] += count
    print(f"{total} samples")
    for k, n in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"\n== {k}: {n} samples ({100 * n / total:.1f} %)")
        print("  self:")
        for f, c in self_[k].most_common(args.top):
            print(f"    {100 * c / n:5.1f} %  {f}")
        print("  inclusive:")
        for f, c in incl[k].most_common(args.top):
            print(f"    {100 * c / n:5.1f} %  {f}")


if __name__ == "__main__":
    main()
