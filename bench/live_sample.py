"""Sample the running gunicorn workers over a measured window with py-spy.

Counting instructions in a small driver (``beat_split_instr.py``) leaves out what dominates at
20,000 learners: cache misses over their objects, GIL hand-offs between the event loop and the
writer, psycopg's waits. This samples the live workers instead. ``BENCH_SAMPLE=DIR`` (with
``py-spy`` on PATH or in ``PY_SPY``; it is not a dependency of the platform: ``pip install
py-spy`` in a venv of its own) records each worker over the window, every thread, in py-spy's
raw (collapsed) format, one file per worker: ``DIR/<label>-<pid>.txt``. ``BENCH_SAMPLE_RATE``
(default 97 Hz) and ``BENCH_SAMPLE_NATIVE=1`` (C frames too; this pauses the worker at each
sample, so keep the rate low) tune it. ``bench/live_sample_report.py DIR`` sums the files.

py-spy reads the workers' memory from outside (``--nonblocking`` unless native frames are
asked for), so the workers run as they would; the sampler's own CPU is outside the window's
server figures but on the same two cores, so a sampled window is not a timed one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from common import children


def start(server_pid: int, duration: float, label: str) -> list[subprocess.Popen[bytes]] | None:
    """py-spy on each of ``server_pid``'s workers for ``duration`` s; None unless BENCH_SAMPLE."""
    folder = os.environ.get("BENCH_SAMPLE")
    if not folder:
        return None
    spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not spy:
        raise SystemExit("BENCH_SAMPLE: py-spy not found (set PY_SPY)")
    Path(folder).mkdir(parents=True, exist_ok=True)
    native = os.environ.get("BENCH_SAMPLE_NATIVE") == "1"
    rate = os.environ.get("BENCH_SAMPLE_RATE", "97")
    name = re.sub(r"[^\w.-]+", "_", label)[:60] or "window"
    spies = []
    for pid in children(server_pid):
        command = [spy, "record", "--pid", str(pid), "--duration", str(round(duration)), "--rate", rate]
        command += ["--format", "raw", "--threads", "--output", f"{folder}/{name}-{pid}.txt"]
        command += ["--native"] if native else ["--nonblocking"]
        spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


def stop(spies: list[subprocess.Popen[bytes]] | None) -> None:
    """Wait for the samplers (each stops by itself at the window's end)."""
    for spy in spies or []:
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.terminate()
