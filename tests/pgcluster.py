"""Start a throwaway PostgreSQL cluster from the machine's binaries.

Used by the test suite and the benchmarks. PostgreSQL refuses to run as root, so
when we are root the cluster belongs to the ``postgres`` user and every command
runs through ``runuser``. The socket lives in a private folder and the server
listens only on 127.0.0.1, on a free port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries are missing or the server did not start."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise PostgresUnavailable(f"PostgreSQL binary {name!r} not found (install postgresql)")


@dataclass
class Cluster:
    datadir: Path
    sockdir: Path
    port: int
    as_postgres: bool

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = self._run(
            _bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            dbname,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        )
        return out.stdout

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self, timeout: int = 60) -> None:
        """Start the stopped (or crashed) cluster again; returns once crash recovery is done."""
        log = str(self.datadir.parent / "server.log")
        self._run(_bin("pg_ctl"), "-D", str(self.datadir), "-l", log, "-w", "-t", str(timeout), "start")

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop", check=False)


def start(base: Path | None = None, *, extra_conf: dict[str, str] | None = None) -> Cluster:
    """initdb + pg_ctl start; raises :class:`PostgresUnavailable` on any failure."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    base = Path(base or tempfile.mkdtemp(prefix="lms-pg-"))
    datadir, sockdir = base / "data", base / "sock"
    sockdir.mkdir(parents=True, exist_ok=True)
    as_postgres = os.geteuid() == 0
    if as_postgres:
        shutil.chown(base, "postgres")
        shutil.chown(sockdir, "postgres")
    cluster = Cluster(datadir, sockdir, _free_port(), as_postgres)
    try:
        cluster._run(
            initdb, "-D", str(datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"
        )
    except subprocess.CalledProcessError as exc:
        raise PostgresUnavailable(f"initdb failed: {exc.stderr.strip()}") from exc
    conf = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(cluster.port),
        "unix_socket_directories": f"'{sockdir}'",
        "max_connections": "200",
        "shared_buffers": "256MB",
        "fsync": "on",  # durability tests rely on real fsync; override for speed where harmless
        "synchronous_commit": "on",
        "log_min_messages": "warning",
    }
    conf.update(extra_conf or {})
    with open(datadir / "postgresql.auto.conf", "a") as fh:
        for key, value in conf.items():
            fh.write(f"{key} = {value}\n")
    try:
        cluster._run(pg_ctl, "-D", str(datadir), "-l", str(base / "server.log"), "-w", "-t", "60", "start")
    except subprocess.CalledProcessError as exc:
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        raise PostgresUnavailable(f"pg_ctl start failed: {exc.stderr.strip()} {log[-2000:]}") from exc
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", cluster.port), timeout=1):
            return cluster
        time.sleep(0.2)
    raise PostgresUnavailable("PostgreSQL did not accept connections")


@contextlib.contextmanager
def running(**kwargs: object) -> Iterator[Cluster]:
    cluster = start(**kwargs)  # type: ignore[arg-type]
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.datadir.parent, ignore_errors=True)
