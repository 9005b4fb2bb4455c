"""Settings: defaults, then ``LMS_*`` environment variables, then ``test_config``.

Every setting the core reads is declared in :data:`DEFAULTS`; unknown ``LMS_*``
variables are ignored so that a typo does not crash a server, but the values that
are read are converted and checked here, in one place.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Declared core settings and their defaults.
DEFAULTS: dict[str, Any] = {
    "LMS_DATABASE_URL": None,  # None: SQLite file in the instance folder
    "LMS_PLUGINS": [],
    "LMS_THEME": "default",
    "LMS_INLINE_JOBS": True,  # run background jobs right after commit (development, tests)
    #: Progressive sign-in delays (lms_core.accounts.throttle): wrong passwords allowed
    #: before the wait starts doubling from 1 s, per (username, IP) and per username.
    "LMS_LOGIN_FREE_FAILURES": 3,
    "LMS_LOGIN_DELAY_MAX_SECONDS": 900,
    "LMS_LOGIN_ACCOUNT_FREE_FAILURES": 20,
    "LMS_LOGIN_ACCOUNT_DELAY_MAX_SECONDS": 60,
    #: None: lms_core.security_headers.DEFAULT_POLICY (see docs/security.md).
    "LMS_CONTENT_SECURITY_POLICY": None,
    "LMS_LOGIN_IP_LIMIT": 30,  # failed logins per IP per window
    "LMS_LOGIN_IP_WINDOW_MINUTES": 10,
    "LMS_IMPORT_MAX_BYTES": 20 * 1024 * 1024,
    #: HR files with more data lines than this are imported by a worker, with a status
    #: page, instead of inside the upload request (about 4 s per 10,000 lines).
    "LMS_IMPORT_BACKGROUND_LINES": 5000,
    "LMS_PASSWORD_MIN_LENGTH": 8,
    "LMS_SESSION_COOKIE_SECURE": True,
    "LMS_JOB_MAX_ATTEMPTS": 8,
    "LMS_PAGE_SIZE": 50,
    #: Seconds after which a page reading the hours rollup (lms_core/reports/monthly.py) queues
    #: its rebuild; the page always shows the time its figures were read.
    "LMS_REPORT_ROLLUP_MAX_AGE": 600,
    #: A pooled database connection idle for longer than this is pinged before use
    #: (0: ping on every checkout). See lms_core.db.install_idle_ping.
    "LMS_DB_PING_IDLE_SECONDS": 10,
    #: Reverse proxies in front of the app that set X-Forwarded-For/-Proto/-Host/-Port/-Prefix
    #: (nginx: 1). 0 trusts none of those headers. Behind a proxy it must be set, or every
    #: client has the proxy's address and the per-IP login throttle locks out everyone.
    "LMS_TRUSTED_PROXIES": 0,
    # xAPI emission (lms_core/xapi): statements go through the xapi_outbox table to this LRS.
    "LMS_XAPI_ENABLED": True,  # False: no statement is queued at all
    "LMS_XAPI_ENDPOINT": "http://127.0.0.1:5000/xapi",  # the embedded LRS by default
    "LMS_XAPI_KEY": "",  # LRS client credential (Basic auth); `flask lms lrs client create`
    "LMS_XAPI_SECRET": "",
    "LMS_XAPI_BATCH_SIZE": 100,  # statements per POST
    "LMS_XAPI_TIMEOUT": 10,  # seconds per LRS request
    "LMS_XAPI_CREDENTIALS_FILE": "",  # empty: <instance>/xapi_credentials.json (flask lms xapi connect-embedded)
    "LMS_PLATFORM_URL": "http://127.0.0.1:5000",  # base of activity ids and of the actors' account homePage
    "LMS_MEDIA_DIR": "",  # empty: <instance>/media (content-addressed files ab/cd/<sha256>)
    "LMS_UPLOAD_MAX_BYTES": 2 * 1024**3,  # largest accepted upload, enforced while streaming
    "LMS_MEDIA_URL_TTL": 4 * 3600,  # lifetime in seconds of a signed media URL
    "LMS_UPLOAD_ALLOWED": ["mp4", "webm", "pdf", "png", "jpeg"],  # content types accepted (by magic bytes)
    "LMS_BEAT_MAX_GAP_SECONDS": 60,  # longest server-time gap one heartbeat can earn credit for
    # How long a worker trusts a user's sign-in version and status on the heartbeat path
    # (lms_core/accounts/principal.py): the bound on how late a revocation reaches beats.
    "LMS_AUTH_CACHE_SECONDS": 5,
    # Ordinary heartbeats are answered by a lean WSGI layer before Flask
    # (lms_core/learning/beat_front.py); off: every beat goes through the Flask view.
    "LMS_LEAN_BEAT": True,
    # The ASGI front (lms_core/learning/beat_asgi.py) records the beats that arrive together
    # in one transaction and one COMMIT, up to this many (lms_core/learning/beat_batch.py);
    # 0: each beat in its own transaction. 256: a group only takes what waits, so the bound
    # matters once the writer is behind, and then larger groups catch up (64 was the bound in
    # every overloaded 2,000/s run: 1,421/s at 0.82 ms per beat against 1,702/s at 0.73;
    # docs/benchmarks.md, "sched").
    "LMS_BEAT_GROUP_MAX": 256,
    # A group of fewer beats than LMS_BEAT_GROUP_ENOUGH waits this long (µs; 0: never) once for
    # the beats about to arrive (lms_core/learning/beat_batch.py). A round has a fixed cost
    # (its sign-in read, the core's and the plugin's reads and writes, COMMIT: ~6 round trips)
    # that the live workers at 2,000 beats/s shared among only 4-7 beats (docs/benchmarks.md,
    # "lead": CPU per beat 0.84 ms at 5 beats a COMMIT, 0.70 ms at 15.6). A few ms of wait
    # per beat, against a 100 ms p99 target, buys fewer rounds for the same beats.
    "LMS_BEAT_GROUP_LINGER_US": 4_000,
    "LMS_BEAT_GROUP_ENOUGH": 16,
    # Writer threads per process recording those groups. One: with two or four, groups were
    # smaller and p99 had multi-second tails (docs/benchmarks.md, the ASGI front).
    "LMS_BEAT_WRITERS": 1,
    # The heartbeat route's fast path inside uvicorn's HTTP protocol (lms_core/learning/beat_http.py,
    # gunicorn -k lms_core.learning.beat_http.BeatWorker): off, every request goes uvicorn's way.
    "LMS_BEAT_HTTP_FAST": True,
    # A directory: the ASGI front notes each beat's times along its path there, one file per
    # worker (lms_core/learning/beat_trace.py, read by bench/beat_tail.py); empty: off.
    "LMS_BEAT_TRACE": "",
    # A directory: each ASGI worker notes its rare events there as JSON lines (stalls-<pid>.jsonl:
    # full collections, the event loop late, slow writer groups, the writer's seconds), cheap
    # enough to leave on in a timed window (lms_core/learning/beat_stalls.py); empty: off.
    "LMS_BEAT_STALL_LOG": "",
    # The ASGI front's worker, at start-up (lms_core/learning/beat_asgi.py, tune_gc): every
    # object made so far (modules, the app, SQLAlchemy's tables) is moved out of the garbage
    # collector's reach with gc.freeze(), so a full collection no longer walks them (~110 →
    # ~30 ms of CPU, the GIL held, every beat in flight waiting; docs/benchmarks.md, "tail").
    "LMS_BEAT_GC_FREEZE": True,
    # ...and the collector's first threshold (allocations between young collections; Python's
    # 700; 0 leaves it): a group's objects die young instead of being promoted and piling up
    # for full collections. 20,000: the workers' collections took ~0.19 → ~0.04 ms of CPU per beat.
    "LMS_BEAT_GC_GEN0": 20_000,
    # ...and how long (µs) a thread holding the GIL runs before one that waits for it may take
    # it (sys.setswitchinterval; Python's 5,000; 0 leaves it): the writer coming back from
    # PostgreSQL waits up to this long for the event loop to let go (docs/benchmarks.md, "tail").
    # 1,000: the lower p99 in all four A/B pairs on the quiet machine at the same CPU per beat
    # (docs/benchmarks.md, "Quiet machine, the lead's runs, 2026-12-06 19:56–21:31").
    "LMS_BEAT_SWITCH_INTERVAL_US": 1_000,
    # ...and after each full collection what survived it is frozen too, so the keep-alive
    # connections opened after start-up are walked once, not by every full collection
    # (~100 ms of CPU, the GIL held, at 10,000 connections a worker; once an hour a full
    # collection walks the frozen objects too; docs/benchmarks.md, "tail").
    "LMS_BEAT_GC_REFREEZE": True,
    # Beats made (by the player's claimed time, `at`) longer ago than this are refused and
    # kept as evidence; the player keeps queued beats on the device as long.
    "LMS_BEAT_LATE_WINDOW_HOURS": 24,
    #: Learners (people with no other role) may create API tokens only if this is on:
    #: a token page is a needless door for most cadres.
    "LMS_LEARNER_API_TOKENS": False,
    "LMS_YEARLY_REQUIRED_HOURS": 50,  # shown against the learner's year until the credit bank sets rules
}

_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _convert(key: str, raw: str) -> Any:
    default = DEFAULTS[key]
    if isinstance(default, bool):
        low = raw.strip().lower()
        if low in _BOOL_TRUE:
            return True
        if low in _BOOL_FALSE:
            return False
        raise ValueError(f"{key} must be a boolean, got {raw!r}")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """Declared settings found in ``environ``, converted to their types."""
    return {key: _convert(key, environ[key]) for key in DEFAULTS if key in environ}


def load_secret_key(instance_path: str) -> str:
    """Read the secret key from the instance folder, creating it on first run.

    The key is never committed: each installation generates its own, and several
    app nodes share it by sharing the instance folder (or ``LMS_SECRET_KEY``).
    """
    env_key = os.environ.get("LMS_SECRET_KEY")
    if env_key:
        return env_key
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def database_url(config: Mapping[str, Any], instance_path: str) -> str:
    """The SQLAlchemy URL; psycopg 3 is the PostgreSQL driver."""
    url = config.get("LMS_DATABASE_URL")
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "lms.sqlite3")
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return str(url)
