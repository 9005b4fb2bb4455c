"""How a gunicorn server's connections and CPU are split between its workers, second by second.

Why: gunicorn's workers share one listening socket; each uvicorn worker's event loop accepts
what it can when the socket is readable (asyncio takes up to its backlog at once), so which
worker holds a keep-alive connection is decided at the accept and stays for the
connection's life. At the issue's 20,000 learners each worker holds ~10,000 of them; an
uneven split makes one worker (and its writer thread) hotter than the other.

Read from outside, every ``--interval`` s: each worker's established TCP connections on the
server's port (its socket inodes in ``/proc/<pid>/fd`` against ``/proc/net/tcp``) and its CPU
seconds (``/proc/<pid>/stat``). No change to the server::

    nice -n 19 .venv/bin/python bench/worker_balance.py --port 8123 --duration 60

``--port`` defaults to the one gunicorn master's ``--bind`` found in ``ps`` (one must run).
Prints one line a sample and a summary (the largest worker's share of connections and CPU).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_ESTABLISHED = "01"


def masters() -> list[tuple[int, int]]:
    """(pid, port) of every gunicorn master bound to a local port."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv).decode(errors="replace")
        bound = re.search(r"gunicorn .*--bind \S+:(\d+)", text)
        if bound is None:
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parent_argv = Path(f"/proc/{parent}/cmdline").read_bytes() if Path(f"/proc/{parent}").exists() else b""
        if b"gunicorn" not in parent_argv:  # the master, not a worker (whose parent is the master)
            found.append((int(proc.name), int(bound.group(1))))
    return found


def workers(master: int) -> list[int]:
    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                out.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return sorted(out)


def established_inodes(port: int) -> set[str]:
    """Inodes of the established TCP sockets whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _ESTABLISHED and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def socket_inodes(pid: int) -> set[str]:
    out = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                out.add(target[8:-1])
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="the server's port (default: the one gunicorn master's)")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for a gunicorn master to appear")
    args = parser.parse_args()
    deadline = time.monotonic() + args.wait
    while True:
        found = [m for m in masters() if not args.port or m[1] == args.port]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if len(found) != 1:
        print(f"gunicorn masters found: {found}; give --port", file=sys.stderr)
        return 1
    master, port = found[0]
    print(f"master {master}, port {port}")
    last: dict[int, float] = {}
    conns_seen: list[list[int]] = []
    cpu_total: dict[int, float] = {}
    end = time.monotonic() + args.duration
    while time.monotonic() < end:
        time.sleep(args.interval)
        pids = workers(master)  # read again: the workers are forked after the master appears
        if not pids:
            continue
        live = established_inodes(port)
        conns = [len(socket_inodes(pid) & live) for pid in pids]
        now = {pid: cpu_seconds(pid) for pid in pids}
        used = [now[pid] - last.get(pid, now[pid]) for pid in pids]
        for pid, u in zip(pids, used, strict=True):
            cpu_total[pid] = cpu_total.get(pid, 0.0) + u
        last = now
        conns_seen.append(conns)
        print(
            f"{time.strftime('%H:%M:%S')}  workers {pids}  connections {conns}  CPU s {[round(u, 2) for u in used]}",
            flush=True,
        )
    if conns_seen:
        final = max(conns_seen, key=sum)
        total_conns, total_cpu = sum(final), sum(cpu_total.values())
        if total_conns:
            print(f"most connections: {final}, the largest worker's share {max(final) / total_conns:.3f}")
        if total_cpu:
            shares = {pid: round(used / total_cpu, 3) for pid, used in cpu_total.items()}
            print(f"CPU over the run (s): { ({pid: round(u, 2) for pid, u in cpu_total.items()}) }, shares {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
