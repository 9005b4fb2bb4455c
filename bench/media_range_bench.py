#!/usr/bin/env python3
"""Benchmark of issue 3: media Range serving from local disk while 20 clients stream.

Steps (each prints progress):

1. a database: a throwaway PostgreSQL cluster (``tests/pgcluster.py``, default
   durability: fsync on) or, with ``--db sqlite``, a SQLite file;
2. ``flask db upgrade heads``; an instructor with an API token and 20 learners;
3. a large valid MP4 (a generated 2 s clip followed by a ``free`` box of
   ``--size-mb`` MB, which players skip), so the upload passes the content checks;
4. gunicorn on 127.0.0.1; the file is uploaded through ``PUT /api/media`` (the raw,
   streamed upload) and the workers' memory is compared before and after;
5. 20 clients, each with its own signed URL (its own playback session), request
   ``--range-mb`` ranges for ``--duration`` seconds: mostly the next range, as a
   player does, sometimes a jump (a seek); every response is checked (206,
   Content-Range, length);
6. report MB/s, requests/s, latency, the workers' RSS growth (VmRSS from
   ``/proc/<pid>/status``, sampled every 0.2 s), and compare the bytes the clients
   received with the bytes recorded in ``media_deliveries``.

    .venv/bin/python bench/media_range_bench.py                  # the recorded run
    .venv/bin/python bench/media_range_bench.py --db sqlite --duration 10 --size-mb 100

Target (issue 3): at least 200 MB/s with at most 50 MB server memory growth.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import common  # noqa: E402 - bench/ is a folder of scripts, not a package
from common import SECRET, step  # noqa: E402

TARGET_MB_S = 200
TARGET_RSS_GROWTH_MB = 50
MB = 1024 * 1024


def make_large_mp4(path: Path, size_mb: int) -> int:
    """A real 2 s MP4 clip followed by a ``free`` box of ``size_mb`` MB; returns its size."""
    from lms_core.demo import media as demo

    clip = path.with_suffix(".clip.mp4")
    demo.make_video(clip, demo.DemoVideo("bench", "基准测试", 2, 9, (20, 60, 120), 300))
    block = random.Random(3).randbytes(MB)
    with path.open("wb") as out:
        out.write(clip.read_bytes())
        out.write((8 + size_mb * MB).to_bytes(4, "big") + b"free")
        for i in range(size_mb):
            out.write(block)
            if (i + 1) % 100 == 0:
                print(f"   {i + 1}/{size_mb} MB written", file=sys.stderr, flush=True)
    clip.unlink()
    return path.stat().st_size


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def load_average() -> float:
    return os.getloadavg()[0]


class RssSampler(threading.Thread):
    """Highest RSS seen per worker while running."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {pid: rss_kb(pid) for pid in pids}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], rss_kb(pid))


@dataclass
class ClientStats:
    bytes: int = 0
    requests: int = 0
    finished: float = 0.0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


def stream_client(
    port: int, path: str, cookie: str, size: int, range_bytes: int, deadline: float, seed: int, stats: ClientStats
) -> None:
    rng = random.Random(seed)
    buf = bytearray(1024 * 1024)
    view = memoryview(buf)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    pos = rng.randrange(0, size)
    while time.monotonic() < deadline:
        if rng.random() < 0.1 or pos >= size:
            pos = rng.randrange(0, size)  # a seek
        end = min(pos + range_bytes, size) - 1
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers={"Range": f"bytes={pos}-{end}", "Cookie": cookie})
            resp = conn.getresponse()
            expected = end - pos + 1
            got = 0
            while True:
                n = resp.readinto(view)
                if not n:
                    break
                got += n
            if resp.status != 206 or got != expected or resp.getheader("Content-Range") != f"bytes {pos}-{end}/{size}":
                stats.errors.append(f"{resp.status} got {got} of {expected}")
            if resp.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        except (OSError, http.client.HTTPException) as exc:
            stats.errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        stats.bytes += got
        stats.requests += 1
        pos = end + 1
    conn.close()
    stats.finished = time.monotonic()


def run_clients(
    port: int,
    paths: list[str],
    cookies: list[str],
    size: int,
    range_bytes: int,
    duration: float,
    stats: list[ClientStats],
    seed: int,
) -> None:
    end_at = time.monotonic() + duration
    threads = [
        threading.Thread(
            target=stream_client, args=(port, p, cookies[i], size, range_bytes, end_at, seed + i, stats[i])
        )
        for i, p in enumerate(paths)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    next_report = started + 5
    while any(t.is_alive() for t in threads):
        time.sleep(0.1)
        if time.monotonic() >= next_report:
            next_report += 5
            done = sum(s.bytes for s in stats)
            elapsed = time.monotonic() - started
            print(
                f"   {elapsed:5.1f}s  {done / MB:,.0f} MB  {done / MB / elapsed:,.0f} MB/s", file=sys.stderr, flush=True
            )
    for t in threads:
        t.join()


def upload(port: int, token: str, path: Path) -> tuple[int, dict[str, object], float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600, blocksize=MB)
    started = time.perf_counter()
    with path.open("rb") as fh:
        conn.request(
            "PUT",
            f"/api/media?name={path.name}",
            body=fh,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
                "Content-Length": str(path.stat().st_size),
            },
        )
        resp = conn.getresponse()
        body = json.loads(resp.read() or b"{}")
    elapsed = time.perf_counter() - started
    conn.close()
    return resp.status, body, elapsed


def sign_in(port: int, username: str, password: str) -> str:
    """Sign in through the real form (CSRF included); the session cookie as a ``Cookie`` value.

    Signed media URLs serve only the signed-in user they were issued to, so each
    client streams with its learner's session, as a browser does.
    """
    import re
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode

    def cookies_of(resp: http.client.HTTPResponse, jar: dict[str, str]) -> None:
        for header in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                jar[name] = morsel.value

    jar: dict[str, str] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    page = resp.read().decode()
    cookies_of(resp, jar)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    form = {"username": username, "password": password, "csrf_token": found.group(1) if found else ""}
    conn.request(
        "POST",
        "/login",
        body=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
        },
    )
    resp = conn.getresponse()
    resp.read()
    cookies_of(resp, jar)
    conn.close()
    if resp.status != 302 or "session" not in jar:
        raise RuntimeError(f"sign-in as {username} failed: {resp.status}")
    return f"session={jar['session']}"


def seed(env: dict[str, str], clients: int) -> tuple[str, list[int]]:
    """An instructor with an API token and ``clients`` learners; returns (token, learner ids)."""
    os.environ.update(env)
    from lms_core import create_app
    from lms_core.accounts import services as accounts
    from lms_core.accounts.models import Role, TokenScope
    from lms_core.extensions import db
    from lms_core.orgs.models import OrgKind
    from lms_core.orgs.services import create_unit

    app = create_app()
    with app.app_context():
        city = create_unit(code="B01", name="基准市", kind=OrgKind.CITY, parent=None, emit_event=False)
        teacher = accounts.create_user(username="bench_teacher", full_name="讲师", org_unit=city, password="Bench-2026")
        accounts.grant_role(None, teacher, Role.INSTRUCTOR, city)
        learners = [
            accounts.create_user(username=f"bench_l{i:02d}", full_name=f"学员{i}", org_unit=city, password="Bench-2026")
            for i in range(clients)
        ]
        _token, plain = accounts.create_token(teacher, "bench", scope=TokenScope.READ_WRITE)
        db.session.commit()
        ids = [u.id for u in learners]
        db.engine.dispose()
    return plain, ids


def signed_paths(media_id: int, learner_ids: list[int]) -> list[str]:
    from flask import current_app

    from lms_core import create_app
    from lms_core.extensions import db
    from lms_core.media import services
    from lms_core.media.models import MediaFile

    app = create_app()
    with app.app_context():
        media = db.session.get(MediaFile, media_id)

        class _U:
            def __init__(self, uid: int) -> None:
                self.id = uid

        with current_app.test_request_context():
            paths = [services.signed_url(media, _U(uid), f"bench-{i:02d}") for i, uid in enumerate(learner_ids)]
        db.engine.dispose()
    return paths


def recorded_bytes() -> tuple[int, int]:
    from sqlalchemy import func, select

    from lms_core import create_app
    from lms_core.extensions import db
    from lms_core.media.models import MediaDelivery

    app = create_app()
    with app.app_context():
        total, reqs = db.session.execute(
            select(
                func.coalesce(func.sum(MediaDelivery.bytes_served), 0),
                func.coalesce(func.sum(MediaDelivery.requests), 0),
            ).where(MediaDelivery.session_key.like("bench-%"))
        ).one()
        db.engine.dispose()
    return int(total), int(reqs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--size-mb", type=int, default=300, help="size of the streamed file")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the RSS baseline")
    parser.add_argument("--range-mb", type=float, default=4.0, help="bytes per Range request")
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=5, help="threads per gthread worker")
    parser.add_argument("--json", metavar="FILE", help="write the result and settings as JSON")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="lms-media-bench-"))
    cluster = None
    server: subprocess.Popen[bytes] | None = None
    try:
        if args.db == "postgresql":
            cluster = common.start_postgres()
            url = cluster.create_database("lms_media_bench")
        else:
            url = f"sqlite:///{workdir / 'lms.sqlite3'}"
        env = {
            "FLASK_APP": "lms_core",
            "LMS_DATABASE_URL": url,
            "LMS_SECRET_KEY": SECRET,
            "LMS_PLUGINS": "",
            "LMS_INLINE_JOBS": "0",
            "LMS_SESSION_COOKIE_SECURE": "0",
            "LMS_MEDIA_DIR": str(workdir / "media"),
        }
        full_env = dict(os.environ, **env)
        common.upgrade(full_env)
        step(f"seeding an instructor and {args.clients} learners")
        token, learner_ids = seed(env, args.clients)

        step(f"writing a {args.size_mb} MB MP4")
        big = workdir / "lecture-large.mp4"
        size = make_large_mp4(big, args.size_mb)

        # No TCP_NODELAY config here: the byte streams are large, not latency-bound.
        server, port = common.start_gunicorn(
            full_env,
            workers=args.workers,
            worker_class=args.worker_class,
            threads=args.threads,
            config="",
            extra_args=["--timeout", "120"],
        )
        pids = worker_pids(server.pid)
        # Touch every worker once so the baseline includes imported modules and a DB connection.
        for _ in range(len(pids) * 3):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/login")
            c.getresponse().read()
            c.close()

        base_upload = {pid: rss_kb(pid) for pid in pids}
        sampler = RssSampler(pids)
        sampler.start()
        step(f"uploading {size / MB:,.0f} MB through PUT /api/media (streamed)")
        status, body, up_s = upload(port, token, big)
        sampler.stop.set()
        sampler.join()
        if status != 201:
            raise RuntimeError(f"upload failed: {status} {body}")
        upload_growth_mb = max(sampler.peak[p] - base_upload[p] for p in pids) / 1024
        print(
            f"   upload: {size / MB / up_s:,.0f} MB/s, worker RSS growth {upload_growth_mb:.1f} MB "
            f"(peak of any worker), duration read: {body['duration_ms']} ms",
            file=sys.stderr,
        )

        paths = signed_paths(int(body["id"]), learner_ids)
        step(f"signing in {len(learner_ids)} learners (the URLs serve only their own session)")
        cookies = [sign_in(port, f"bench_l{i:02d}", "Bench-2026") for i in range(len(learner_ids))]
        cold = {pid: rss_kb(pid) for pid in pids}
        step(f"warm-up: {args.warmup:g}s of the same load (code paths, DB connections, thread stacks)")
        warm_stats = [ClientStats() for _ in paths]
        run_clients(port, paths, cookies, size, int(args.range_mb * MB), args.warmup, warm_stats, seed=1000)
        step(f"{args.clients} clients streaming {args.range_mb:g} MB ranges for {args.duration:g}s")
        baseline = {pid: rss_kb(pid) for pid in pids}
        sampler = RssSampler(pids)
        sampler.start()
        stats = [ClientStats() for _ in paths]
        load_before = load_average()
        cpu_before = common.cpu_seconds(pids)
        client_before = time.process_time()
        started = time.monotonic()
        run_clients(port, paths, cookies, size, int(args.range_mb * MB), args.duration, stats, seed=0)
        elapsed = max(s.finished for s in stats) - started
        server_cpu = common.cpu_seconds(pids) - cpu_before
        client_cpu = time.process_time() - client_before
        load_after = load_average()
        time.sleep(0.5)
        sampler.stop.set()
        sampler.join()
        after = {pid: rss_kb(pid) for pid in pids}

        total = sum(s.bytes for s in [*warm_stats, *stats])
        measured = sum(s.bytes for s in stats)
        requests = sum(s.requests for s in [*warm_stats, *stats])
        measured_requests = sum(s.requests for s in stats)
        errors = [e for s in [*warm_stats, *stats] for e in s.errors]
        latencies = sorted(x for s in stats for x in s.latencies_ms)
        growth_peak_mb = sum(sampler.peak[p] - baseline[p] for p in pids) / 1024
        growth_cold_mb = sum(after[p] - cold[p] for p in pids) / 1024
        growth_after_mb = sum(after[p] - baseline[p] for p in pids) / 1024
        recorded, recorded_requests = recorded_bytes()
        result = {
            "mb_per_s": measured / MB / elapsed,
            "requests_per_s": measured_requests / elapsed,
            "bytes": measured,
            "requests": measured_requests,
            "errors": len(errors),
            "p50_ms": statistics.median(latencies) if latencies else None,
            "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
            "rss_baseline_mb": sum(baseline.values()) / 1024,
            "rss_growth_peak_mb": growth_peak_mb,
            "rss_growth_after_mb": growth_after_mb,
            "rss_growth_from_cold_mb": growth_cold_mb,
            "upload_mb_per_s": size / MB / up_s,
            "upload_rss_growth_mb": upload_growth_mb,
            "server_cpu_s_per_gb": server_cpu / (measured / 1024**3) if measured else None,
            "client_cpu_s_per_gb": client_cpu / (measured / 1024**3) if measured else None,
            "load_average": [load_before, load_after],
            "recorded_bytes": recorded,
            "recorded_requests": recorded_requests,
        }
        print(
            f"file {size / MB:,.0f} MB, {args.clients} clients, {args.range_mb:g} MB ranges, "
            f"{args.db}, gunicorn {args.worker_class} {args.workers}"
            + (f"x{args.threads}" if args.worker_class == "gthread" else "")
        )
        print(
            f"throughput: {result['mb_per_s']:,.0f} MB/s ({result['requests_per_s']:,.1f} ranges/s, "
            f"p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms), errors: {len(errors)}"
        )
        print(
            f"server RSS: {result['rss_baseline_mb']:.0f} MB in {len(pids)} workers after warm-up; growth "
            f"{growth_peak_mb:+.1f} MB at peak, {growth_after_mb:+.1f} MB after (all workers summed); "
            f"{growth_cold_mb:+.1f} MB counted from before the warm-up"
        )
        print(
            f"CPU per GB served: server {result['server_cpu_s_per_gb']:.2f} s, client "
            f"{result['client_cpu_s_per_gb']:.2f} s; load average {load_before:.2f} -> {load_after:.2f}"
        )
        print(
            f"upload of {size / MB:,.0f} MB: {result['upload_mb_per_s']:,.0f} MB/s, "
            f"peak worker RSS growth {upload_growth_mb:+.1f} MB"
        )
        print(
            f"bytes recorded in media_deliveries: {recorded:,} in {recorded_requests:,} requests; "
            f"received by the clients: {total:,} in {requests:,} requests"
        )
        for e in errors[:5]:
            print(f"   error: {e}")
        ok = (
            not errors
            and result["mb_per_s"] >= TARGET_MB_S
            and growth_peak_mb <= TARGET_RSS_GROWTH_MB
            and recorded == total
        )
        print(
            f"target ({TARGET_MB_S} MB/s, <= {TARGET_RSS_GROWTH_MB} MB growth, bytes recorded = bytes "
            f"received): {'met' if ok else 'MISSED'}"
        )
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(
                    {
                        "result": result,
                        "settings": {k: v for k, v in vars(args).items() if k != "json"},
                        "target_met": ok,
                    },
                    fh,
                    indent=2,
                )
        return 0 if ok else 1
    finally:
        common.stop_server(server)
        if cluster is not None:
            common.stop_postgres(cluster)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
