"""What a size-bounded per-process cache costs second by second when it fills (issue 8, periodic).

The lean beat's verified cookies (``beat_front``: an ``expiring.ExpiringMap`` of at most
50,000 entries, each kept until its signatures' max age) are read on every beat; a miss
verifies the cookie again (~0.25 ms of the event loop). A worker at the issue's scale holds
~10,000 players beating every 10 s, and new sign-ins keep arriving (``--churn`` a second),
so the map reaches its bound after ``(most - active) / churn`` seconds. This drives the
tree's own ``ExpiringMap`` (the one ``lms_core`` imports: run it with ``PYTHONPATH`` at a tree)
on a simulated clock, each player reading its key at its phase of the cadence, and counts
the misses (verifications) in each second, and the most entries one call freed at once::

    PYTHONPATH=/work/main nice -n 19 .venv/bin/python bench/bound_bursts.py   # main
    nice -n 19 .venv/bin/python bench/bound_bursts.py                          # this tree

No server, no database: the map's own behaviour, counted, not timed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if "PYTHONPATH" not in __import__("os").environ:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lms_core.expiring as expiring  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--active", type=int, default=10_000, help="players beating in this worker")
    parser.add_argument("--cadence", type=int, default=10, help="seconds between a player's beats")
    parser.add_argument("--churn", type=int, default=20, help="new sign-ins a second (each replaces an active player)")
    parser.add_argument("--most", type=int, default=50_000, help="the map's bound (beat_front._CACHE_MAX)")
    parser.add_argument("--seconds", type=int, default=3_000)
    args = parser.parse_args()

    cache: expiring.ExpiringMap[int, bool] = expiring.ExpiringMap(most=args.most)
    lifetime = 3_600.0  # the CSRF token's max age bounds an entry (WTF_CSRF_TIME_LIMIT)
    players = list(range(args.active))  # the key each active player sends
    next_key = args.active
    per_second: list[int] = []
    most_freed = 0
    for second in range(args.seconds):
        misses = 0
        for slot in range(second % args.cadence, args.active, args.cadence):  # the players due this second
            key = players[slot]
            if cache.fresh(key, float(second)) is None:
                misses += 1
                before = len(cache._items)
                cache.put(key, True, until=second + lifetime)
                most_freed = max(most_freed, before + 1 - len(cache._items))
        for _ in range(args.churn):  # a player leaves, a new sign-in takes the slot
            slot = (next_key * 7919) % args.active
            players[slot] = next_key
            next_key += 1
        per_second.append(misses)
    after = per_second[args.cadence :]  # past the first cadence (every player's first beat)
    steady = sorted(after)[len(after) // 2]
    burst = max(after)
    at = after.index(burst) + args.cadence
    print(
        f"{expiring.__file__}: {args.active:,} players, a beat every {args.cadence} s, {args.churn} new a second, "
        f"bound {args.most:,}; past the first cadence: verifications a second median {steady}, max {burst} "
        f"(second {at}), seconds above 3x the median {sum(1 for m in after if m > 3 * max(steady, 1))}, "
        f"verifications in all {sum(after):,}; most entries freed by one put {most_freed:,}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
