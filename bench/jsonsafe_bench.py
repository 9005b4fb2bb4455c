#!/usr/bin/env python3
"""Cost of the hostile-input JSON check (issue 10): ``lms_core.jsonsafe.loads`` against ``json.loads``.

Parses one body of ``--statements`` typical xAPI statements (Chinese names, a score,
context activities, an extension) ``--rounds`` times with each and prints the time
per body and the ratio, measured in one run. Pure CPU, no server or database:
``.venv/bin/python bench/jsonsafe_bench.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lms_core import jsonsafe  # noqa: E402


def statement(i: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {
            "objectType": "Agent",
            "name": f"学员{i}",
            "account": {"homePage": "https://gbwl.example.gov.cn", "name": f"cadre{i:05d}"},
        },
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"zh-CN": "完成", "en-US": "completed"}},
        "object": {
            "objectType": "Activity",
            "id": f"http://gbwl.example.gov.cn/course/{i % 50}",
            "definition": {"name": {"zh-CN": "党史专题"}, "type": "http://adlnet.gov/expapi/activities/course"},
        },
        "result": {
            "score": {"scaled": 0.85, "raw": 85, "min": 0, "max": 100},
            "completion": True,
            "duration": "PT1H2M",
        },
        "context": {
            "registration": str(uuid.uuid4()),
            "contextActivities": {"parent": [{"id": "http://gbwl.example.gov.cn/program/1"}]},
            "extensions": {"http://gbwl.example.gov.cn/ext/session": "abc"},
        },
        "timestamp": "2026-11-28T06:00:00.000Z",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--statements", type=int, default=100)
    p.add_argument("--rounds", type=int, default=200)
    args = p.parse_args()
    body = json.dumps([statement(i) for i in range(args.statements)], ensure_ascii=False).encode()
    print(f"body: {args.statements} statements, {len(body):,} bytes; {args.rounds} rounds each", flush=True)
    results = {}
    parsers = (("json.loads", lambda: json.loads(body.decode())), ("jsonsafe.loads", lambda: jsonsafe.loads(body)))
    for name, parse in parsers:
        parse()
        start = time.perf_counter()
        for _ in range(args.rounds):
            parse()
        results[name] = (time.perf_counter() - start) / args.rounds * 1000
        print(f"{name:15s} {results[name]:.2f} ms per body", flush=True)
    print(f"ratio jsonsafe/json: {results['jsonsafe.loads'] / results['json.loads']:.2f}")


if __name__ == "__main__":
    main()
