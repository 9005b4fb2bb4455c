"""What the benchmarks share: progress lines, a throwaway PostgreSQL, gunicorn, CPU time,
percentiles and the verdict against a target.

bench/ is a folder of scripts, not a package: a script puts its folder and the
repository on ``sys.path`` and then ``import common``.

Used by dashboard_bench.py, course_bench.py, media_range_bench.py, lrs_bench.py,
lrs_sigkill.py and load.py, and for their shared helpers by anti_idle_bench.py and
credit_bench.py.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import http.client
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import pgcluster  # noqa: E402 - after the path set-up above

#: The benchmark servers' secret key (throwaway databases only).
SECRET = "bench-secret-key-not-for-production"  # noqa: S105
#: The virtualenv's scripts (flask, gunicorn) next to the running interpreter.
BIN = Path(sys.executable).parent


#: CPU seconds and calls per label of the functions :func:`time_cpu` wrapped (the per-part
#: splits of bench/beat_split.py and bench/anti_idle_plugin_split.py).
CPU_SPENT: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()


def time_cpu(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` by a wrapper that adds its CPU time (``process_time``, far
    lighter than cProfile) and a call to ``CPU_SPENT[label]`` and ``CALLS[label]``."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            CPU_SPENT[label] += time.process_time() - started
            CALLS[label] += 1

    setattr(owner, name, timed)


def step(message: str) -> None:
    """One progress line on stderr (stdout stays for the figures)."""
    print(f"== {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Timing ---------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def children(pid: int) -> list[int]:
    """Direct children of a process (gunicorn's workers, the postmaster's backends)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of processes (one that ended meanwhile counts as 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its direct children (a server and its workers)."""
    return cpu_seconds([pid, *children(pid)])


def meets(label: str, value: float, target: float, *, at_least: bool, unit: str = "") -> bool:
    """Print ``value`` against ``target`` and say whether it is met."""
    ok = value >= target if at_least else value <= target
    sign = "≥" if at_least else "≤"
    print(f"{label}: {value:,.1f}{unit} (target {sign} {target:,g}{unit}) {'met' if ok else 'MISSED'}", flush=True)
    return ok


# PostgreSQL -----------------------------------------------------------------------


#: docs/deployment.md's recommended server settings for the heartbeat load (WAL and
#: checkpoints; the rest are the cluster's defaults): the ingest benches run with them, printed.
RECOMMENDED_PG = {"max_wal_size": "'4GB'", "checkpoint_timeout": "'15min'", "min_wal_size": "'2GB'"}


def start_recommended_postgres(**extra_conf: str) -> pgcluster.Cluster:
    """:func:`start_postgres` with :data:`RECOMMENDED_PG` (docs/deployment.md), said on stderr."""
    step("PostgreSQL with docs/deployment.md's settings: " + ", ".join(f"{k} = {v}" for k, v in RECOMMENDED_PG.items()))
    return start_postgres(**RECOMMENDED_PG, **extra_conf)


def start_postgres(**extra_conf: str) -> pgcluster.Cluster:
    """A throwaway cluster from the machine's binaries (default settings: fsync on)."""
    step("starting a throwaway PostgreSQL cluster")
    return _known(pgcluster.start(extra_conf=extra_conf) if extra_conf else pgcluster.start())


#: The socket directory of each cluster this process started or opened, by port
#: (:func:`server_url`).
_SOCKETS: dict[int, Path] = {}


def _known(cluster: pgcluster.Cluster) -> pgcluster.Cluster:
    _SOCKETS[cluster.port] = cluster.sockdir
    return cluster


def server_url(url: str) -> str:
    """The URL the server under test connects by: the cluster's Unix-domain socket, as
    docs/deployment.md advises for a PostgreSQL on the same machine, unless ``BENCH_PG_TCP=1``
    (loopback TCP, the benches' connection before 2026-12-07). A round trip on loopback TCP
    cost both sides ~10 µs of CPU more than on the socket (docs/benchmarks.md, "What a round
    sends"); a beat group sends about six. The bench's own connections (seeding, statistics,
    ``CREATE DATABASE``) stay on TCP: they are not measured, and their URLs are split on ``/``.
    A URL of a cluster this process did not start is returned as it is."""
    if os.environ.get("BENCH_PG_TCP") == "1":
        return url
    base, sep, query = url.partition("?")
    port = base.rpartition(":")[2].partition("/")[0]
    sockdir = _SOCKETS.get(int(port)) if port.isdigit() else None
    if sockdir is None or "host=" in query:
        return url
    # libpq takes the query's ``host`` over the authority's (SQLAlchemy's psycopg dialect passes
    # both; the query's wins), and the port names the socket file, ``.s.PGSQL.<port>``.
    return f"{base}?{query}{'&' if query else ''}host={sockdir}"


def stop_postgres(cluster: pgcluster.Cluster) -> None:
    step("stopping PostgreSQL")
    cluster.stop()
    shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


def open_kept(base: Path) -> tuple[pgcluster.Cluster, str]:
    """A cluster kept in ``base`` across runs: ``(cluster, state)``.

    ``state`` is ``"new"`` (initialised here: the caller seeds it and writes ``base/seeded``),
    ``"stopped"`` (seeded by an earlier run, started here on a fresh free port: stop it with
    ``cluster.stop()``, the data stays) or ``"running"`` (already serving: leave it running).
    """
    datadir = base / "data"
    if (base / "seeded").exists() and (datadir / "postmaster.pid").exists():
        step(f"using the kept cluster already running in {base}")
        port = int((datadir / "postmaster.pid").read_text().splitlines()[3])
        return _known(pgcluster.Cluster(datadir, base / "sock", port, os.geteuid() == 0)), "running"
    if (base / "seeded").exists():
        step(f"starting the kept cluster in {base}")
        with open(datadir / "postgresql.auto.conf", "a") as fh:
            port = free_port()
            fh.write(f"port = {port}\n")
        cluster = pgcluster.Cluster(datadir, base / "sock", port, os.geteuid() == 0)
        cluster.restart()
        return _known(cluster), "stopped"
    if base.exists():
        shutil.rmtree(base)  # a seed that did not finish
    step(f"starting a PostgreSQL cluster kept in {base}")
    base.mkdir(parents=True)
    return _known(pgcluster.start(base)), "new"


def postmaster_pid(cluster: pgcluster.Cluster) -> int:
    return int((cluster.datadir / "postmaster.pid").read_text().split()[0])


def postgres_cpu_seconds(cluster: pgcluster.Cluster) -> float:
    """CPU seconds used so far by the cluster's processes, live ones and reaped backends.

    The postmaster's cutime/cstime hold what its ended backends used: a benchmark that
    opens a connection per request would see almost nothing in ``tree_cpu_seconds``,
    which counts live children only.
    """
    tick = os.sysconf("SC_CLK_TCK")
    pid = postmaster_pid(cluster)
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid:
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        elif int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def crash_postgres(cluster: pgcluster.Cluster) -> None:
    """Stop with ``-m immediate``: no shutdown checkpoint, so a restart replays the WAL (a power cut)."""
    cluster.stop()


def restart_postgres(cluster: pgcluster.Cluster) -> None:
    """Start a stopped (or crashed) cluster again; returns once crash recovery is done."""
    cluster.restart()


# The platform ---------------------------------------------------------------------


def app_env(url: str, plugins: str = "", **extra: str) -> dict[str, str]:
    """The environment of a production-like server on ``url`` (jobs in a worker, not inline)."""
    return dict(
        os.environ,
        FLASK_APP="lms_core",
        LMS_DATABASE_URL=server_url(url),
        LMS_SECRET_KEY=SECRET,
        LMS_PLUGINS=plugins,
        LMS_INLINE_JOBS="0",
        LMS_SESSION_COOKIE_SECURE="0",
        **extra,
    )


def upgrade(env: Mapping[str, str]) -> None:
    step("flask db upgrade heads")
    subprocess.run([str(BIN / "flask"), "db", "upgrade", "heads"], env=dict(env), cwd=REPO, check=True)  # noqa: S603


def start_gunicorn(
    env: Mapping[str, str],
    *,
    workers: int,
    worker_class: str = "sync",
    threads: int = 4,
    config: str = "python:lrs.gunicorn_conf",
    app: str = "lms_core:create_app()",
    extra_args: Iterable[str] = (),
    ready_path: str = "/login",
    cwd: Path = REPO,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start gunicorn on a free local port and wait until it answers; returns (process, port).

    ``cwd``: the code tree it serves (gunicorn puts its working directory first on ``sys.path``;
    another checkout's server also gets ``PYTHONPATH`` in ``env``: bench/code_trees.py).

    ``config`` defaults to lrs/gunicorn_conf.py: TCP_NODELAY on the listening socket, or a
    keep-alive client waits for Nagle + delayed ACK (~40 ms) between headers and body.
    """
    port = free_port()
    cmd = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    cmd += ["--worker-class", worker_class, "--log-level", "warning", "--keep-alive", "30"]
    if config:
        cmd += ["-c", config]
    if worker_class == "gthread":
        cmd += ["--threads", str(threads)]
    cmd += [*extra_args, app]
    step(" ".join(cmd[1:]))
    proc = subprocess.Popen(cmd, env=dict(env), cwd=cwd)  # noqa: S603 - our own venv's gunicorn
    try:
        wait_for_http(port, proc, path=ready_path)
    except BaseException:
        stop_server(proc)
        raise
    return proc, port


def wait_for_http(port: int, proc: subprocess.Popen[Any], *, path: str = "/login", timeout: float = 60) -> None:
    """Until ``GET path`` answers 200 (or the server exits, or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer within {timeout}s")


def kill_server(proc: subprocess.Popen[Any]) -> int:
    """SIGKILL a server and its workers at once (a crash, not a shutdown); the number of processes killed."""
    pids = [proc.pid, *children(proc.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # a worker that died meanwhile
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    return len(pids)


def stop_server(proc: subprocess.Popen[Any] | None) -> None:
    """SIGTERM (graceful), then SIGKILL after 30 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
