#!/usr/bin/env python3
"""The writer's instructions per beat on the group path, and the exceptions it makes (issue 8, pyw).

CPU time on this shared VM drifts by 30 % between runs of the same code; instructions do not.
This runs ``bench/beat_split.py --group ...`` (its split counters off: they would be counted
too) with ``PYTHONHASHSEED=0`` and frozen server time, and brackets its measured groups:

``--mode callgrind`` (default)
    under ``valgrind --tool=callgrind --instr-atstart=no``, instrumentation switched on
    (``callgrind_control -i on``) just before the measured groups and off just after them;
    prints the instructions of those groups (the process: the app's Python, psycopg and
    libpq on the client side, SQLAlchemy; not PostgreSQL) and per beat. Deterministic to
    ~0.1 %; about 10 minutes at load 10.
``--mode exceptions``
    ``gdb`` attached for the measured groups only, a breakpoint on ``_PyErr_SetObject``:
    every exception the process makes (also those made and dropped inside C: a
    ``getattr`` default, a proxy's ``__getattr__`` after the generic look-up missed, a
    function-local ``from module import name`` looking for the module's ``__path__``),
    counted by type, C caller and the Python frames making it. Slow (gdb stops at each).

    nice -n 19 .venv/bin/python bench/beat_split_instr.py --tree . -- --group 15 --sets 4 --cycles 10 --min-read 3600
    nice -n 19 .venv/bin/python bench/beat_split_instr.py --mode exceptions -- --group 15 --cycles 4 --min-read 3600

``--hook-only`` (with callgrind)
    counts only the instructions inside the anti-idle hook (``services.assess_interval``: the
    state read from the round's prefetch, the prior, ELS, the verdict's tally, the rows kept for
    the round's write), not the rest of the round: callgrind's collection starts off and is
    toggled on entering and off leaving the hook by a client request (a four-line C helper
    compiled with ``gcc`` into a temporary directory, called through ctypes; the call itself,
    a few hundred instructions, is counted in every tree alike).

    nice -n 19 .venv/bin/python bench/beat_split_instr.py --hook-only -- --group 15 --cycles 10 --min-read 3600
    nice -n 19 .venv/bin/python bench/beat_split_instr.py --hook-only -- --group 15 --cycles 10 --lesson-kind video
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: gdb's Python: count each exception made by (type, C callers, Python frames), dump on demand.
_GDB_SCRIPT = r"""
import collections, gdb
counts = collections.Counter()
def text(o):
    return gdb.parse_and_eval("(char*)((PyASCIIObject*)%d + 1)" % int(o)).string()
class Made(gdb.Breakpoint):
    def stop(self):
        try:
            kind = gdb.parse_and_eval("((PyTypeObject*)exception)->tp_name").string()
            frame, callers = gdb.newest_frame(), []
            for _ in range(3):
                frame = frame.older()
                if frame is None:
                    break
                callers.append(frame.name() or "?")
            if callers and callers[0] == "_PyErr_SetObject":
                return False  # the breakpoint's second location, inside the first: counted there
            tstate = int(gdb.parse_and_eval("_PyRuntime.gilstate.tstate_current._value"))
            pyframe = gdb.parse_and_eval("((PyThreadState*)%d)->cframe->current_frame" % tstate)
            where = []
            for _ in range(4):
                if int(pyframe) == 0:
                    break
                code = pyframe["f_code"]
                offset = int(gdb.parse_and_eval(
                    "(long)(((_PyInterpreterFrame*)%d)->prev_instr) - (long)(((PyCodeObject*)%d)->co_code_adaptive)"
                    % (int(pyframe), int(code))))
                line = int(gdb.parse_and_eval("PyCode_Addr2Line((PyCodeObject*)%d, %d)" % (int(code), offset)))
                where.append("%s:%d:%s" % (text(code["co_filename"]), line, text(code["co_name"])))
                pyframe = pyframe["previous"]
            counts[(kind, tuple(callers), tuple(where))] += 1
        except gdb.error as error:
            counts[("(gdb: %s)" % error, (), ())] += 1
        return False
Made("_PyErr_SetObject")
class Dump(gdb.Command):
    def __init__(self):
        super().__init__("lms_dump", gdb.COMMAND_USER)
    def invoke(self, arg, from_tty):
        with open(arg, "w") as out:
            for (kind, callers, where), n in counts.most_common():
                out.write("%d %s via %s\n" % (n, kind, " < ".join(callers)))
                for w in where:
                    out.write("      %s\n" % w)
Dump()
"""

#: Callgrind's collection switched from inside the process (valgrind/callgrind.h's client request).
_TOGGLE_C = """#include <valgrind/callgrind.h>
void lms_toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
"""


def _toggle_library(work: str) -> str:
    """The client-request helper compiled into ``work`` (gcc and valgrind's headers needed)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise SystemExit("--hook-only needs gcc")
    source, library = os.path.join(work, "toggle.c"), os.path.join(work, "toggle.so")
    Path(source).write_text(_TOGGLE_C)
    subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-o", library, source], check=True)  # noqa: S603
    return library


def _collect_in_hook(library: str) -> None:
    """Wrap ``services.assess_interval`` (what ``lms_assess_interval`` calls, looked up on the
    module at each call) so that callgrind collects inside it only."""
    from plugins.anti_idle import services  # noqa: PLC0415 - the tree's own, after sys.path

    toggle = ctypes.CDLL(library).lms_toggle_collect
    hook = services.assess_interval

    def collected(claim: object) -> object:
        toggle()
        try:
            return hook(claim)  # type: ignore[arg-type]
        finally:
            toggle()

    services.assess_interval = collected  # type: ignore[assignment]


def child(tree: str, marks: str, signal_done: bool, hook_library: str | None = None) -> int:
    """In the measured process: beat_split's main, waiting at ``marks``.ready before the measured
    groups and writing ``marks``.done after them (``signal_done``: also stops itself for gdb)."""
    sys.path[:0] = [str(Path(tree) / "bench"), tree]
    os.chdir(tree)
    import anti_idle_bench  # noqa: PLC0415 - the tree's own bench modules
    import beat_split  # noqa: PLC0415
    import common  # noqa: PLC0415

    def wait_ready() -> None:
        Path(marks + ".waiting").write_text(str(os.getpid()))
        while not Path(marks + ".ready").exists():
            time.sleep(0.05)

    real_reset = anti_idle_bench.reset_statements

    def reset(url: str) -> None:  # called just before the measured groups
        real_reset(url)
        wait_ready()

    anti_idle_bench.reset_statements = reset
    beat_split._group_parts = list  # no split counters: only the product's instructions
    if hook_library:
        _collect_in_hook(hook_library)
    real_tree = common.tree_cpu_seconds
    calls = [0]

    def tree_cpu(pid: int) -> float:  # its second call: just after the measured groups
        calls[0] += 1
        if calls[0] == 2:
            if signal_done:
                import signal  # noqa: PLC0415

                signal.signal(signal.SIGUSR1, lambda *_: None)
                os.kill(os.getpid(), signal.SIGUSR1)  # gdb stops here, dumps and detaches
            Path(marks + ".done").write_text("")
        return real_tree(pid)

    common.tree_cpu_seconds = tree_cpu
    return int(beat_split.main(sys.argv[sys.argv.index("--") + 1 :]) or 0)


def _wait_for(path: str, proc: subprocess.Popen[bytes]) -> bool:
    while not Path(path).exists():
        if proc.poll() is not None:
            return False
        time.sleep(0.5)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", default=".", help="checkout whose code to measure (its .venv)")
    parser.add_argument("--mode", choices=("callgrind", "exceptions"), default="callgrind")
    parser.add_argument("--out", help="callgrind's output file / the exceptions' list (default: a temporary file)")
    parser.add_argument("--hook-only", action="store_true", help="callgrind: count inside the anti-idle hook only")
    parser.add_argument("--hook-library", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(sys.argv[1 : sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:])
    tree = str(Path(args.tree).resolve())
    if args.child:
        return child(tree, args.child, args.mode == "exceptions", args.hook_library)
    split = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    beats = _beats(split)
    work = tempfile.mkdtemp(prefix="beat_split_instr.")
    marks = os.path.join(work, "mark")
    out = args.out or os.path.join(work, "callgrind.out" if args.mode == "callgrind" else "exceptions.txt")
    python = os.path.join(tree, ".venv", "bin", "python")
    me = [python, os.path.abspath(__file__), "--tree", tree, "--mode", args.mode, "--child", marks]
    collect = []
    if args.hook_only:
        me += ["--hook-library", _toggle_library(work)]
        collect = ["--collect-atstart=no"]
    me += ["--", *split]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    log = open(os.path.join(work, "log"), "wb")  # noqa: SIM115 - open for the child's whole life
    if args.mode == "callgrind":
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", *collect, f"--callgrind-out-file={out}", *me]
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        if not _wait_for(marks + ".waiting", proc):
            print(f"the run ended early: {work}/log", file=sys.stderr)
            return 1
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)  # noqa: S607
        Path(marks + ".ready").write_text("")
        _wait_for(marks + ".done", proc)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)  # noqa: S607
        code = proc.wait()
        total = next(int(line.split()[1]) for line in Path(out).read_text().splitlines() if line.startswith("totals:"))
        per = f", {total / beats / 1000:,.0f} k a beat ({beats} beats)" if beats else ""
        what = "inside the anti-idle hook" if args.hook_only else "in the measured groups"
        print(f"{tree}: {total:,} instructions {what}{per}; {out}")
        return code
    proc = subprocess.Popen(me, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    if not _wait_for(marks + ".waiting", proc):
        print(f"the run ended early: {work}/log", file=sys.stderr)
        return 1
    script = os.path.join(work, "made.py")
    Path(script).write_text(_GDB_SCRIPT)
    gdb = [
        "gdb", "-q", "-batch", "-p", str(proc.pid), "-ex", f"source {script}",
        "-ex", f"shell touch {marks}.ready", "-ex", "continue", "-ex", f"lms_dump {out}",
        "-ex", "delete", "-ex", "detach",
    ]  # fmt: skip
    subprocess.run(gdb, check=False, capture_output=True)  # noqa: S603
    code = proc.wait()
    print(f"{tree}: exceptions made in the measured groups ({beats} beats), by count: {out}")
    return code


def _beats(split: list[str]) -> int:
    """The measured beats of ``beat_split --group G --sets S --cycles C`` (G x S x C)."""

    def opt(name: str, default: int) -> int:
        return int(split[split.index(name) + 1]) if name in split else default

    if "--group" not in split:
        return 0
    return opt("--group", 15) * opt("--cycles", 40) * opt("--sets", 4)


if __name__ == "__main__":
    sys.exit(main())
