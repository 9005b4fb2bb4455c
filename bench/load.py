#!/usr/bin/env python3
"""A small HTTP load tool: threads of keep-alive clients against a running server.

Each thread owns one client (one ``http.client`` connection, its own cookies) and
sends requests back to back. After a warm-up, every response time is recorded;
the run stops after a fixed duration or a fixed number of requests and prints
requests/s, p50/p95/p99 and the error count (a response with an unexpected
status, a missing ``--expect-text`` or a connection failure is an error).

Clients can first sign in as different users through the login form (CSRF token
read from the page), so each has its own session cookie::

    python bench/load.py http://127.0.0.1:8000 --path /dashboard -c 16 -d 30 \\
        --login 'bench{i:06d}' --password Bench-2026 --expect-text 'id="nav-toggle"'

``http.client`` rather than requests in the measuring loop: the load generator
shares the machine's cores with the server, and requests costs several times more
CPU per call; ``requests`` is still fine for scripts that only set up data.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from common import percentile  # noqa: F401 - bench/ scripts import each other; load.percentile stays

CSRF_RE = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')


class LoadError(RuntimeError):
    """Setting up a client failed (server down, login refused ...)."""


class Client:
    """One keep-alive HTTP connection with a cookie jar.

    Reconnects transparently when the server closed the connection (gunicorn's
    sync workers close after every response; idle keep-alive connections time out).
    """

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise LoadError(f"only http://host:port URLs are supported, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        hdrs = {"Host": f"{self.host}:{self.port}", "Accept-Encoding": "identity"}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        hdrs.update(headers or {})
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
                http.client.CannotSendRequest,
                http.client.ResponseNotReady,
            ):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        for value in resp.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(value)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return resp.status, resp.headers, data

    def login(self, username: str, password: str, login_path: str = "/login") -> None:
        """Sign in through the HTML form, as a browser would (CSRF token included)."""
        status, _headers, page = self.request("GET", login_path)
        if status != 200:
            raise LoadError(f"GET {login_path} answered {status}")
        match = CSRF_RE.search(page)
        form = {"username": username, "password": password}
        if match:
            form["csrf_token"] = match.group(1).decode()
        status, headers, _body = self.request(
            "POST",
            login_path,
            body=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        location = headers.get("Location", "")
        if status not in (302, 303) or "/login" in location:
            raise LoadError(f"login as {username!r} failed: HTTP {status} {location}")

    def close(self) -> None:
        self.conn.close()


@dataclass
class Result:
    url: str
    clients: int
    duration_s: float
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    warmup_s: float
    error_samples: list[str] = field(default_factory=list)


def run(
    clients: list[Client],
    path: str,
    *,
    duration: float | None = 30.0,
    total: int | None = None,
    warmup: float = 5.0,
    expect_status: int = 200,
    expect_text: bytes | None = None,
    progress: bool = True,
    url: str = "",
    on_measure_start: Callable[[], object] | None = None,
    on_measure_end: Callable[[], object] | None = None,
) -> Result:
    """Hammer ``path`` with every client at once; returns the measured figures.

    Warm-up requests (the first ``warmup`` seconds) are sent but not counted.
    With ``total`` the measured phase stops after that many requests, otherwise
    after ``duration`` seconds.
    """
    latencies: list[list[float]] = [[] for _ in clients]
    errors = [0] * len(clients)
    samples: list[str] = []
    issued = itertools.count()  # next() is atomic under the GIL
    stop = threading.Event()
    measuring = threading.Event()

    def worker(idx: int, client: Client) -> None:
        mine = latencies[idx]
        while not stop.is_set():
            if measuring.is_set() and total is not None and next(issued) >= total:
                break
            start = time.perf_counter()
            problem = None
            try:
                status, _h, body = client.request("GET", path)
                if status != expect_status:
                    problem = f"HTTP {status}"
                elif expect_text is not None and expect_text not in body:
                    problem = "expected text missing"
            except Exception as exc:  # noqa: BLE001 - any failure is an error to count, not a crash
                problem = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - start
            if measuring.is_set():
                mine.append(elapsed)
                if problem:
                    errors[idx] += 1
                    if len(samples) < 5 and problem not in samples:
                        samples.append(problem)

    threads = [threading.Thread(target=worker, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    if warmup > 0:
        if progress:
            print(f"warming up for {warmup:g}s ...", file=sys.stderr, flush=True)
        time.sleep(warmup)
    for lst in latencies:
        lst.clear()
    if on_measure_start:
        on_measure_start()
    measuring.set()
    started = time.perf_counter()
    last_report = started
    while True:
        time.sleep(0.2)
        now = time.perf_counter()
        done = sum(len(lst) for lst in latencies)
        elapsed = now - started
        finished = (
            (duration is not None and total is None and elapsed >= duration)
            or (total is not None and done >= total)
            or not any(t.is_alive() for t in threads)
        )
        if progress and (now - last_report >= 1.0 or finished):
            last_report = now
            goal = f"{done:,}/{total:,} req" if total is not None else f"{elapsed:5.1f}/{duration:g}s"
            print(
                f"\r  {goal}  {done / max(elapsed, 1e-9):8.1f} req/s  errors {sum(errors)}   ",
                end="",
                file=sys.stderr,
                flush=True,
            )
        if finished:
            break
    stop.set()
    if on_measure_end:
        on_measure_end()
    for t in threads:
        t.join(timeout=60)
    wall = time.perf_counter() - started
    if progress:
        print(file=sys.stderr)
    values = sorted(v * 1000 for lst in latencies for v in lst)
    count = len(values)
    return Result(
        url=url,
        clients=len(clients),
        duration_s=round(wall, 2),
        requests=count,
        errors=sum(errors),
        requests_per_s=round(count / wall, 1) if wall else 0.0,
        p50_ms=round(percentile(values, 50), 2),
        p95_ms=round(percentile(values, 95), 2),
        p99_ms=round(percentile(values, 99), 2),
        max_ms=round(values[-1], 2) if values else 0.0,
        mean_ms=round(sum(values) / count, 2) if count else 0.0,
        warmup_s=warmup,
        error_samples=samples,
    )


def make_clients(
    base_url: str, count: int, *, login: str | None = None, password: str = "", offset: int = 0, progress: bool = True
) -> list[Client]:
    """``count`` clients; with ``login`` (a ``str.format`` pattern over ``i``) each signs in."""
    clients = []
    for i in range(count):
        client = Client(base_url)
        if login:
            client.login(login.format(i=i + offset), password)
            if progress:
                print(f"\r  signed in {i + 1}/{count} clients", end="", file=sys.stderr, flush=True)
        clients.append(client)
    if login and progress:
        print(file=sys.stderr)
    return clients


def speed_probe(rounds: int = 5) -> float:
    """Milliseconds of CPU for a fixed pure-Python loop (best of ``rounds``; lower is faster).

    The benchmark machine is a shared VM whose speed drifts by up to ~40 % within
    minutes, for the same code and an idle machine. Printed next to every figure, this
    says which phase a run met; the load generator's own CPU per request (unchanged
    code) drifts the same way.
    """
    best = math.inf
    for _ in range(rounds):
        started = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i * i
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def report(result: Result) -> str:
    lines = [
        f"URL:          {result.url}",
        f"clients:      {result.clients}",
        f"measured:     {result.duration_s:.1f} s after {result.warmup_s:g} s warm-up",
        f"requests:     {result.requests:,}  ({result.errors:,} errors)",
        f"throughput:   {result.requests_per_s:.1f} requests/s",
        f"latency (ms): p50 {result.p50_ms:.1f}  p95 {result.p95_ms:.1f}  p99 {result.p99_ms:.1f}  "
        f"max {result.max_ms:.1f}  mean {result.mean_ms:.1f}",
    ]
    if result.error_samples:
        lines.append("first errors: " + "; ".join(result.error_samples))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--path", default="/", help="path to request (GET)")
    parser.add_argument("-c", "--clients", type=int, default=16, help="concurrent clients (threads)")
    parser.add_argument("-d", "--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("-n", "--requests", type=int, help="measured requests (instead of --duration)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of unmeasured warm-up")
    parser.add_argument("--login", help="sign each client in as this username pattern, e.g. 'bench{i:06d}'")
    parser.add_argument("--login-offset", type=int, default=0, help="first i for --login")
    parser.add_argument("--password", default="", help="password for --login")
    parser.add_argument("--expect-status", type=int, default=200)
    parser.add_argument("--expect-text", help="a response without this text counts as an error")
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON ('-' for stdout)")
    args = parser.parse_args(argv)
    if args.clients < 1:
        parser.error("--clients must be at least 1")
    try:
        clients = make_clients(
            args.base_url, args.clients, login=args.login, password=args.password, offset=args.login_offset
        )
    except (LoadError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = args.base_url.rstrip("/") + args.path
    result = run(
        clients,
        args.path,
        duration=args.duration,
        total=args.requests,
        warmup=args.warmup,
        expect_status=args.expect_status,
        expect_text=args.expect_text.encode() if args.expect_text else None,
        url=url,
    )
    for c in clients:
        c.close()
    if args.json == "-":
        print(json.dumps(asdict(result), indent=2))
    else:
        print(report(result))
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(asdict(result), fh, indent=2)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
