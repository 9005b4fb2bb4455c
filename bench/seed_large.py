#!/usr/bin/env python3
"""Bulk-load a large org tree and user base into PostgreSQL for benchmarks.

Defaults: 5,000 org units (one city, 10 counties, 100 townships, departments,
villages) and 100,000 users spread over them, all with the same password
(hashed once: scrypt per row would take minutes). Rows go in with ``COPY``
through psycopg 3, so the whole load takes seconds. The schema must exist
(``flask db upgrade heads``); seeding twice is refused rather than duplicated.

    python bench/seed_large.py postgresql://postgres@127.0.0.1:5432/lms

Usernames are ``bench000000`` ... ``bench099999``; ``bench_admin`` is a site
admin and ``bench_county00`` ... org admins of each county.

So that the dashboard shows what a cadre really sees, ``--courses`` published
courses (5 lessons each) are created through the ORM and the first
``--assigned`` of them are assigned (调训) to the whole city, with the learners
already enrolled (``COPY`` again): every learner has that many required courses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD = "Bench-2026"  # noqa: S105 - a throwaway benchmark database
CODE_PREFIX = "B36"  # codes of bench units, distinct from the demo city's
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌海波宁辉鹏"
COUNTIES = 10
TOWNSHIPS_PER_COUNTY = 10
CITY_DEPARTMENTS = 39


class SeedError(RuntimeError):
    pass


@dataclass
class Unit:
    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    path: str
    depth: int


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.started = self.last = time.monotonic()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= 0.25 or self.done >= self.total:
            self.last = now
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            rate = self.done / max(now - self.started, 1e-9)
            print(
                f"\r  {self.label:<12} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done:,}/{self.total:,}  {rate:,.0f}/s",
                end="",
                file=sys.stderr,
                flush=True,
            )
            if self.done >= self.total:
                print(file=sys.stderr)


def plan_units(total: int, first_id: int) -> list[Unit]:
    """A realistic tree of exactly ``total`` units, ids from ``first_id``."""
    fixed = 1 + COUNTIES + COUNTIES * TOWNSHIPS_PER_COUNTY + CITY_DEPARTMENTS
    if total < fixed + 1:
        raise SeedError(f"need at least {fixed + 1} units")
    units: list[Unit] = []
    next_id = iter(range(first_id, first_id + total))

    def add(code: str, name: str, kind: str, parent: Unit | None) -> Unit:
        uid = next(next_id)
        path = f"{parent.path if parent else '/'}{uid}/"
        depth = parent.depth + 1 if parent else 0
        unit = Unit(uid, code, name, kind, parent.id if parent else None, path, depth)
        units.append(unit)
        return unit

    city = add(CODE_PREFIX, "基准市", "city", None)
    for d in range(CITY_DEPARTMENTS):
        add(f"{CODE_PREFIX}D{d:03d}", f"市直单位{d + 1}", "department", city)
    townships = []
    for c in range(COUNTIES):
        county = add(f"{CODE_PREFIX}{c:02d}", f"基准{c + 1}县", "county", city)
        for t in range(TOWNSHIPS_PER_COUNTY):
            townships.append(add(f"{county.code}{t:03d}", f"{county.name}第{t + 1}镇", "township", county))
    villages = total - fixed
    for v in range(villages):
        town = townships[v % len(townships)]
        n = v // len(townships)
        add(f"{town.code}{n:03d}", f"{town.name}{n + 1}村", "village", town)
    return units


def user_rows(count: int, units: list[Unit], password_hash: str, now: dt.datetime) -> Iterator[tuple[object, ...]]:
    """Users spread round-robin over the units, with varied rank bands and names."""
    for i in range(count):
        unit = units[i % len(units)]
        name = SURNAMES[i % len(SURNAMES)] + GIVEN[(i // len(SURNAMES)) % len(GIVEN)] + GIVEN[(i // 7) % len(GIVEN)]
        rank = "county_and_above" if i % 50 == 0 else "township" if i % 7 == 0 else "general"
        yield (
            f"bench{i:06d}",
            name,
            password_hash,
            unit.id,
            rank,
            i % 3 != 0,
            "active",
            "科员" if rank == "general" else "科长",
            0,
            1,
            False,
            now,
        )


def seed(url: str, *, users: int = 100_000, units: int = 5_000, progress: bool = True) -> dict[str, int]:
    """Load the data into the database at ``url``; returns the counts written."""
    import psycopg
    from werkzeug.security import generate_password_hash

    url = url.replace("postgresql+psycopg://", "postgresql://")
    password_hash = generate_password_hash(PASSWORD)
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM org_units WHERE code = %s", (CODE_PREFIX,))
        if cur.fetchone():
            raise SeedError("this database is already seeded (unit B36 exists)")
        cur.execute("SELECT coalesce(max(id), 0) FROM org_units")
        first_id = int(cur.fetchone()[0]) + 1  # type: ignore[index]
        plan = plan_units(units, first_id)

        bar = Progress("org units", len(plan))
        with cur.copy(
            "COPY org_units (id, code, name, kind, parent_id, path, depth, active, created_at) FROM STDIN"
        ) as copy:
            for u in plan:
                copy.write_row((u.id, u.code, u.name, u.kind, u.parent_id, u.path, u.depth, True, now))
                bar.step()
        cur.execute("SELECT setval(pg_get_serial_sequence('org_units', 'id'), (SELECT max(id) FROM org_units))")

        bar = Progress("users", users)
        with cur.copy(
            "COPY users (username, full_name, password_hash, org_unit_id, rank_band, party_member, "
            "status, position, failed_logins, session_version, must_change_password, created_at) "
            "FROM STDIN"
        ) as copy:
            for row in user_rows(users, plan, password_hash, now):
                copy.write_row(row)
                bar.step()

        city, counties = plan[0], [u for u in plan if u.kind == "county"]
        admins = [("bench_admin", "基准管理员", city, "site_admin")] + [
            (f"bench_county{i:02d}", f"{c.name}管理员", c, "org_admin") for i, c in enumerate(counties)
        ]
        for username, full_name, unit, role in admins:
            cur.execute(
                "INSERT INTO users (username, full_name, password_hash, org_unit_id, rank_band, "
                "party_member, status, failed_logins, session_version, must_change_password, created_at) "
                "VALUES (%s, %s, %s, %s, 'general', true, 'active', 0, 1, false, %s) RETURNING id",
                (username, full_name, password_hash, unit.id, now),
            )
            user_id = cur.fetchone()[0]  # type: ignore[index]
            cur.execute(
                "INSERT INTO role_assignments (user_id, role, org_unit_id, created_at) VALUES (%s, %s, %s, %s)",
                (user_id, role, unit.id, now),
            )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        if progress:
            print("  analyzing ...", file=sys.stderr, flush=True)
        conn.execute("ANALYZE")
    return {"org_units": len(plan), "users": users + len(admins), "role_assignments": len(admins)}


def seed_study(
    url: str,
    *,
    courses: int = 20,
    assigned: int = 3,
    progress: bool = True,
    video: Path | None = None,
    video_courses: int = 0,
    media_dir: str | None = None,
) -> dict[str, int]:
    """Courses (through the ORM, so model defaults apply) and city-wide assignments.

    Every bench user gets an assigned enrolment for each of the first ``assigned``
    courses, written with ``COPY``; nobody is left for ``ensure_assigned`` to do.

    The last ``video_courses`` courses teach VIDEO lessons playing ``video`` (a real MP4,
    e.g. :func:`make_lecture`), stored through the media service as an upload is (content
    checks, probed duration) into ``media_dir``, the server's ``LMS_MEDIA_DIR``; the others
    DOCUMENT lessons without media, as before.
    """
    import uuid

    import psycopg

    from lms_core import create_app
    from lms_core.courses.models import Course, Lesson, LessonKind, Section
    from lms_core.enrolments.models import Assignment
    from lms_core.extensions import db

    if video_courses and video is None:
        raise SeedError("video courses need a video file")
    sa_url = url if "+psycopg" in url else url.replace("postgresql://", "postgresql+psycopg://")
    config: dict[str, object] = {
        "SQLALCHEMY_DATABASE_URI": sa_url,
        "SECRET_KEY": "seed",
        "LMS_PLUGINS": [],
        "LMS_INLINE_JOBS": False,
    }
    if media_dir:
        config["LMS_MEDIA_DIR"] = media_dir
    app = create_app(config)
    now = dt.datetime.now(dt.UTC)
    deadline = now + dt.timedelta(days=90)
    with app.app_context():
        city_id = db.session.execute(
            db.text("SELECT id FROM org_units WHERE code = :c"), {"c": CODE_PREFIX}
        ).scalar_one()
        media = _store_video(video, city_id) if video_courses and video is not None else None
        made = []
        for i in range(courses):
            on_video = media is not None and i >= courses - video_courses
            course = Course(
                code=f"BC{i:03d}",
                title=f"基准课程{i + 1}：学习贯彻专题第{i + 1}讲",
                published=True,
                owner_unit_id=city_id,
                required=i < assigned,
                nominal_hours_centi=200,
            )
            section = Section(course=course, title="第一章", position=0)
            for n in range(5):
                db.session.add(
                    Lesson(
                        section=section,
                        course=course,
                        title=f"第{n + 1}节",
                        kind=LessonKind.VIDEO if on_video else LessonKind.DOCUMENT,
                        media_id=media.id if on_video and media is not None else None,
                        position=n,
                    )
                )
            db.session.add(course)
            made.append(course)
        db.session.flush()
        assignments = [
            Assignment(course_id=c.id, org_unit_id=city_id, deadline=deadline, note="基准调训") for c in made[:assigned]
        ]
        db.session.add_all(assignments)
        db.session.commit()
        pairs = [(a.id, a.course_id) for a in assignments]
        db.engine.dispose()
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT u.id FROM users u JOIN org_units o ON o.id = u.org_unit_id WHERE o.path LIKE %s ORDER BY u.id",
            (f"/{city_id}/%",),
        )
        user_ids = [r[0] for r in cur.fetchall()]
        bar = Progress("enrolments", len(user_ids) * len(pairs))
        with cur.copy(
            "COPY enrolments (user_id, course_id, registration, source, assignment_id, deadline, "
            "enrolled_at) FROM STDIN"
        ) as copy:
            for assignment_id, course_id in pairs:
                for uid in user_ids:
                    copy.write_row((uid, course_id, str(uuid.uuid4()), "assigned", assignment_id, deadline, now))
                    bar.step()
        conn.commit()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return {"courses": courses, "assignments": len(pairs), "enrolments": len(user_ids) * len(pairs)}


#: The bench lecture's picture: small (the rules need real bytes and a real duration, not a
#: sharp picture), as bench/anti_idle_detection.py's, in MP4 (H.264/AAC) as most uploads are.
LECTURE_RASTER = {"width": 160, "height": 96, "fps": 4, "bit_rate": 60_000}


def make_lecture(path: Path, seconds: int) -> Path:
    """A real MP4 lecture of ``seconds`` at :data:`LECTURE_RASTER`, encoded by the demo's
    ``make_video`` (PyAV; a few seconds of CPU for ten minutes), kept at ``path``."""
    from lms_core.demo.media import DemoVideo, Raster, make_video

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        lecture = DemoVideo(path.name, "基准讲座", seconds, 9, (60, 60, 60), 300)
        make_video(path, lecture, raster=Raster(**LECTURE_RASTER))  # type: ignore[arg-type]
    return path


def _store_video(path: Path, city_id: int) -> Any:
    """``path`` stored as an upload is (``media.services.store``: type and content checks, the
    probed duration), uploaded by a bench instructor of the city; the caller commits."""
    from lms_core.accounts.models import User
    from lms_core.extensions import db
    from lms_core.media.services import store

    teacher = User(
        username="bench_teacher",
        full_name="基准讲师",
        password_hash="!",  # cannot sign in: it only uploads the lecture
        org_unit_id=city_id,
    )
    db.session.add(teacher)
    db.session.flush()
    with path.open("rb") as fh:
        media = store(fh, path.name, teacher).media
    if not media.duration_ms:
        raise SeedError(f"{path}: no duration probed")
    return media


def settle(url: str, *, progress: bool = True) -> None:
    """Bring a freshly bulk-loaded database to its steady state before measuring.

    Rows written by ``COPY`` still need their first vacuum (visibility map, hint
    bits) and fresh statistics; autovacuum starts on them within a minute and then
    works for tens of seconds, on the same two cores as the measured run (observed:
    the dashboard sinking from 286 to about 200 pages/s during one 30 s run). A
    production database is not measured the minute after a bulk load, so the benches
    run that maintenance first, explicitly, and flush it to disk with a checkpoint.
    """
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.monotonic()
    with psycopg.connect(plain, autocommit=True) as conn:
        if progress:
            print("  VACUUM (ANALYZE) and CHECKPOINT ...", end="", file=sys.stderr, flush=True)
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
    if progress:
        print(f" {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)


def warm_wal(url: str, megabytes: int = 640, *, progress: bool = True) -> int:
    """Give a fresh cluster the recycled WAL segments a running one has; returns pg_wal's segments.

    PostgreSQL makes each new 16 MB WAL segment by writing it full of zeros and syncing it,
    holding the WAL write lock: every COMMIT waits meanwhile (0.25–0.4 s on this machine's disk,
    measured with ``dd bs=8k count=2048 conv=fsync``). A fresh cluster does that for every
    segment, one every ~3 s at 2,000 beats/s, which put ~10 % of the beats 0.3–0.5 s late
    (docs/benchmarks.md, "sched"). A cluster that has run through checkpoints instead renames
    the segments a checkpoint frees into the next ones (up to ``min_wal_size``, or the WAL of a
    checkpoint cycle), so a production server rarely makes one. Here ``megabytes`` of WAL are
    written and checkpointed away with ``min_wal_size`` raised to keep them; a ``CHECKPOINT``
    between runs recycles a run's own segments the same way.
    """
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.monotonic()
    with psycopg.connect(plain, autocommit=True) as conn:
        if progress:
            print(f"  WAL: {megabytes} MB written and recycled ...", end="", file=sys.stderr, flush=True)
        # Raised, never lowered (the cluster may run docs/deployment.md's recommended settings).
        low, high = conn.execute(
            "SELECT max(setting::int) FILTER (WHERE name = 'min_wal_size'),"
            " max(setting::int) FILTER (WHERE name = 'max_wal_size') FROM pg_settings"
        ).fetchone()
        conn.execute(f"ALTER SYSTEM SET min_wal_size = '{max(int(megabytes), low)}MB'")
        conn.execute(f"ALTER SYSTEM SET max_wal_size = '{max(2 * int(megabytes), 1024, high)}MB'")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(
            "CREATE TABLE bench_wal_warm AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, %s) g",
            (int(megabytes) * 1000,),
        )
        conn.execute("DROP TABLE bench_wal_warm")
        conn.execute("CHECKPOINT")
        segments = conn.execute("SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'").fetchone()[0]
    if progress:
        print(f" {time.monotonic() - started:.1f}s, {segments} segments", file=sys.stderr, flush=True)
    return int(segments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="PostgreSQL URL of a migrated database")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--units", type=int, default=5_000)
    parser.add_argument("--courses", type=int, default=20, help="published courses (0: none)")
    parser.add_argument("--assigned", type=int, default=3, help="of which assigned to the whole city")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        counts = seed(args.url, users=args.users, units=args.units)
        if args.courses:
            counts.update(seed_study(args.url, courses=args.courses, assigned=min(args.assigned, args.courses)))
        settle(args.url)
    except SeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"seeded {counts} in {time.monotonic() - started:.1f}s (password {PASSWORD!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
