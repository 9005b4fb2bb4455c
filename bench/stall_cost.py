#!/usr/bin/env python3
"""What ``LMS_BEAT_STALL_LOG`` costs a worker, in instructions (issue 8, stalls).

The log's three costs, each counted under callgrind as (instructions with N events) minus
(instructions with 0), divided by N, so Python's start-up cancels out:

``group``
    the writer's hook per group: the ``is None`` branch, two clock reads at the group's
    start, ``StallLog.group_done`` (three clock reads, the second's counts); against the same
    loop with the log off (the branch only);
``gc``
    one young collection with the log's ``gc.callbacks`` entry against one without;
``tick``
    one loop timer tick (``call_at``, the loop's iteration around it), ticks run back to back.

Per beat: ``group / beats a group + gc * collections a beat + tick * 100 / beats a second a
worker`` (the rates from a run's ``second`` lines; see docs/benchmarks.md).

    nice -n 19 .venv/bin/python bench/stall_cost.py            # all three, N = 20,000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _group(n: int, on: bool, directory: Path) -> None:
    from lms_core.learning import beat_stalls

    stalls = beat_stalls.StallLog(directory) if on else None
    group = [1, 2, 3, 4, 5]
    for _ in range(n):
        if stalls is not None:
            started, cpu = time.perf_counter(), time.thread_time()
        if stalls is not None:
            stalls.group_done(len(group), started, cpu, lambda g=group: len(g))


def _gc(n: int, on: bool, directory: Path) -> None:
    from lms_core.learning import beat_stalls

    if on:
        beat_stalls.StallLog(directory).start()
    for _ in range(n):
        gc.collect(0)


def _tick(n: int, on: bool, directory: Path) -> None:
    from lms_core.learning import beat_stalls

    beat_stalls.LOOP_TICK_SECONDS = 0.0  # back to back: N ticks, not N × 10 ms
    ticks = [0]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if on:
            log = beat_stalls.StallLog(directory)
            original = log._tick

            def counted(loop_: asyncio.AbstractEventLoop) -> None:
                ticks[0] += 1
                if ticks[0] >= n:
                    done.set_result(None)
                    return
                original(loop_)

            log._tick = counted  # type: ignore[method-assign]
            done: asyncio.Future[None] = loop.create_future()
            log.start(loop)
            await done

    asyncio.run(main())


KINDS = {"group": _group, "gc": _gc, "tick": _tick}


def _count(kind: str, n: int, on: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(  # noqa: S603
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                kind,
                str(n),
                "1" if on else "0",
                tmp,
            ],
            check=True,
            capture_output=True,
            env=dict(os.environ, PYTHONHASHSEED="0"),
        )
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.M)
        assert summary
        return int(summary.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--kinds", default="group,gc,tick")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, on, directory = args.child
        KINDS[kind](int(n), on == "1", Path(directory))
        return
    for kind in args.kinds.split(","):
        # With 0 events and with N: the difference is the events' own (start-up cancels).
        zero_off, zero_on = _count(kind, 0, False), _count(kind, 0, True)
        many_off, many_on = _count(kind, args.n, False), _count(kind, args.n, True)
        each = ((many_on - zero_on) - (many_off - zero_off)) / args.n
        print(
            f"{kind}: {each:,.0f} instructions each with the log on, over the same without "
            f"(N = {args.n:,}: on {many_on - zero_on:,}, off {many_off - zero_off:,})"
        )


if __name__ == "__main__":
    main()
