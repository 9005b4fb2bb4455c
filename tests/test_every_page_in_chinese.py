"""Every page of every role renders in Chinese: no English sentence, no internal code.

Two checks, both over whatever is registered (core, the LRS and every installed
plugin, all enabled here), so pages that land later are checked too:

1. Catalogues: every msgid the code and templates use (extracted with Babel's own
   extractors, as ``make extract-messages`` does) has a zh_Hans_CN translation, in
   its package's catalogue or the core one. A string added without a translation
   fails here even if no page below happens to show it.
2. Pages: every GET route in the app's URL map is rendered for an anonymous visitor,
   a learner, an instructor, a county auditor, an org admin and a site admin (with
   data: a course with every lesson kind, enrolments, an attempt, survey answers, an
   assignment, events, an LRS client, a media file), and the visible text is scanned
   for English words and for raw enum values, event names and ``table:id`` objects.

A route whose URL takes an argument this test does not know how to fill fails the
test, naming the argument: add it to ``ARGUMENTS`` so the new page is checked.
"""

from __future__ import annotations

import collections
import importlib.metadata
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask import Flask

from lms_core.accounts.models import RankBand, Role, User, UserStatus
from lms_core.courses.models import LessonKind
from lms_core.extensions import db
from lms_core.orgs.models import OrgKind
from lms_core.quizzes.models import QuestionKind
from tests.factories import UserFactory, grant
from tests.lms_core.test_translations import _VisibleText

REPO = Path(__file__).resolve().parents[1]
PLUGINS = sorted(ep.name for ep in importlib.metadata.entry_points(group="lms.plugins"))
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "_l": None,
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
}
BABEL_METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]


# 1. Catalogues -------------------------------------------------------------------------


def _catalogue(folder: Path) -> dict[str, bool]:
    po = folder / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return {}
    with po.open("rb") as fh:
        catalog = read_po(fh)
    return {
        (m.id[0] if isinstance(m.id, tuple) else m.id): bool(m.string if isinstance(m.string, str) else all(m.string))
        for m in catalog
        if m.id and not m.fuzzy
    }


def _used_msgids(folder: Path) -> Iterator[tuple[str, str]]:
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(folder),
        method_map=BABEL_METHODS,
        keywords=KEYWORDS,
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.do"}},
    ):
        msgid = message[0] if isinstance(message, (tuple, list)) else message
        if msgid:
            yield f"{folder.name}/{filename}", msgid


def _packages() -> list[tuple[Path, Path]]:
    """(source folder, its catalogue folder): the core catalogue serves lms_core, themes and lrs."""
    core = REPO / "lms_core" / "translations"
    found = [(REPO / "lms_core", core), (REPO / "themes", core), (REPO / "lrs", core)]
    for plugin in sorted((REPO / "plugins").iterdir()):
        if (plugin / "__init__.py").is_file():
            found.append((plugin, plugin / "translations"))
    return found


def test_the_scan_finds_the_core_and_the_plugins() -> None:
    names = {src.name for src, _ in _packages()}
    assert {"lms_core", "themes", "lrs", "demo_panel"} <= names
    assert len(list(_used_msgids(REPO / "themes"))) > 100


@pytest.mark.parametrize(("source", "catalogue"), _packages(), ids=lambda p: p.name)
def test_every_msgid_used_has_a_chinese_translation(source: Path, catalogue: Path) -> None:
    core = _catalogue(REPO / "lms_core" / "translations")
    own = _catalogue(catalogue) if catalogue != REPO / "lms_core" / "translations" else {}
    missing = sorted(
        {f"{where}: {msgid!r}" for where, msgid in _used_msgids(source) if not (own.get(msgid) or core.get(msgid))}
    )
    assert missing == [], (
        f"{len(missing)} strings without a zh_Hans_CN translation (make extract-messages):\n" + "\n".join(missing[:80])
    )


# 2. Pages ------------------------------------------------------------------------------

#: Latin text that is not English: product and format names, units, a user's own data.
ALLOWED_LATIN = {
    "xAPI",
    "LRS",
    "CSV",
    "PDF",
    "MP4",
    "WebM",
    "PNG",
    "JPEG",
    "API",
    "ID",
    "IP",
    "Token",
    "English",
    "URL",
    "s",
    "ms",
    "KB",
    "MB",
    "GB",
    "KiB",
    "MiB",
    "GiB",
    "h",
    "min",
    "Bearer",
    "JSON",
    "HTTP",
    "HTTPS",
    "Basic",
    "cmi5",
    "SHA",
    "UTC",
    "GBK",
    "UTF",
    "XLSX",
    "Excel",
    "WPS",
    "WEBM",
    "GET",
    "HEAD",
    "POST",
    "SQLite",
    "PostgreSQL",
    "RFC",
    "Ed25519",
    "QR",
}
#: Data this test seeds in Latin letters: usernames, codes, file names, keys.
DATA_LATIN = re.compile(
    r"^(liming|wangjs|audit_nl|zzb|root|lizhong|lms_\w+…|B-\d+|[\w.-]+\.(pdf|webm|mp4|png|csv)|[0-9a-f]{16,}|[\w-]{40,})$"
)
ENUM_CODES = {str(v) for e in (OrgKind, RankBand, UserStatus, Role, LessonKind, QuestionKind) for v in e} | {
    "read_write",
    "not_started",
    "in_progress",
    "true_false",
}
EVENT_CODE = re.compile(r"\b[a-z_]+\.[a-z_]+(\.[a-z_]+)*\b")
OBJECT_CODE = re.compile(r"\b[a-z_]+:\d+\b")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['’][A-Za-z]+)*")
URL_PATH = re.compile(r"(?<![\w.])/[a-z][\w/.-]*")
FILENAME = re.compile(r"[\w-]*\.(pdf|webm|mp4|png|jpe?g|csv|xlsx|ico|json)\b")


class _PageText(_VisibleText):
    """Visible text, with technical islands kept apart.

    ``<code>``/``<kbd>``/``<samp>`` hold identifiers on purpose (a command, a key, a
    migration revision): only raw enum values and event codes are refused there, so
    the event log's old ``<code>course.enrolled</code>`` would still fail. ``<pre>`` and
    ``<textarea>`` hold raw data an admin edits (a JSON policy) and are not scanned.
    """

    TECHNICAL = ("code", "kbd", "samp")
    RAW = ("pre", "textarea")

    def __init__(self) -> None:
        super().__init__(skip_lang="en")
        self.technical: list[str] = []
        self.depth = {"technical": 0, "raw": 0}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.TECHNICAL:
            self.depth["technical"] += 1
        if tag in self.RAW:
            self.depth["raw"] += 1
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.TECHNICAL:
            self.depth["technical"] = max(0, self.depth["technical"] - 1)
        if tag in self.RAW:
            self.depth["raw"] = max(0, self.depth["raw"] - 1)
        super().handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.depth["raw"]:
            return
        if self.depth["technical"]:
            if not self._hidden() and data.strip():
                self.technical.append(data.strip())
            return
        super().handle_data(data)


def page_texts(html: str) -> tuple[list[str], list[str]]:
    parser = _PageText()
    parser.feed(html)
    parser.close()
    return parser.texts, parser.technical


def raw_codes(texts: list[str], events: set[str]) -> list[str]:
    """In a technical island only enum values, known event codes and ``table:id`` objects are refused."""
    return [t for t in texts if t in ENUM_CODES or t in events or OBJECT_CODE.fullmatch(t)]


def untranslated(texts: list[str]) -> list[str]:
    """Visible strings that carry English words or internal codes."""
    bad = []
    for text in texts:
        if CJK.search(text) is None and DATA_LATIN.match(text.strip()):
            continue
        shown, text = text, URL_PATH.sub("", FILENAME.sub("", text))
        words = [w for w in WORD.findall(text) if w not in ALLOWED_LATIN and not DATA_LATIN.match(w)]
        codes = [w for w in re.findall(r"[a-z_]+", text) if w in ENUM_CODES]
        if (
            (len(words) >= 1 and any(len(w) > 1 for w in words))
            or codes
            or EVENT_CODE.search(text)
            or OBJECT_CODE.search(text)
        ):
            bad.append(shown)
    return bad


CJK = re.compile(r"[\u3400-\u9fff]")

#: Routes that are no page: machine APIs (xAPI is English by specification, JSON
#: endpoints), file delivery, the language switch (a redirect), static files.
ASSET = re.compile(r'<(?:link|script|img)\b[^>]*?(?:href|src)="(/[^"?#]*)')
NOT_PAGES = ("/static/", "/xapi/", "/api/", "/media/s/", "/lang/", "/static")


def _is_page(rule: Any) -> bool:
    return (
        "GET" in rule.methods
        and not any(rule.rule.startswith(p) for p in NOT_PAGES)
        and not rule.endpoint.endswith(".static")
        and "beat" not in rule.rule
        and not rule.rule.endswith(".csv")
        and not rule.rule.endswith(".xlsx")  # exports: their Chinese is checked in the tests of each view
    )


@pytest.fixture
def world(app: Flask, tree: Any, tmp_path: Path) -> dict[str, Any]:
    """A small but complete site: one course with every lesson kind and some of everything."""
    from lms_core.accounts import services as accounts
    from lms_core.courses import services as courses
    from lms_core.demo.media import DOCUMENTS, DemoVideo, make_pdf, make_video
    from lms_core.enrolments import services as enrolments
    from lms_core.learning import feedback
    from lms_core.media.services import store_upload
    from lms_core.quizzes import services as quizzes

    site = UserFactory(username="root", full_name="系统管理员", org_unit=tree.city)
    grant(site, Role.SITE_ADMIN, tree.city)
    org_admin = UserFactory(username="zzb", full_name="组织部管理员", org_unit=tree.city)
    grant(org_admin, Role.ORG_ADMIN, tree.city)
    auditor = UserFactory(username="audit_nl", full_name="南岭审计员", org_unit=tree.county_a)
    grant(auditor, Role.AUDITOR, tree.county_a)
    teacher = UserFactory(username="wangjs", full_name="王讲师", org_unit=tree.city)
    grant(teacher, Role.INSTRUCTOR, tree.city)
    learner = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a, rank_band=RankBand.TOWNSHIP)
    db.session.commit()

    video = make_video(tmp_path / "clip.webm", DemoVideo("clip.webm", "测试视频", 2, 1, (40, 80, 160), 300))
    pdf = make_pdf(tmp_path / "doc.pdf", DOCUMENTS[1])
    with video.open("rb") as fh:
        video_media = store_upload(fh, "clip.webm", teacher)
    with pdf.open("rb") as fh:
        pdf_media = store_upload(fh, "doc.pdf", teacher)
    course = courses.create_course(
        teacher,
        code="B-01",
        title="乡村振兴实践案例",
        topic="乡村振兴",
        nominal_hours_centi=150,
        required=True,
        description="案例学习。",
    )
    section = courses.add_section(teacher, course, "第一单元")
    lessons = {
        LessonKind.VIDEO: courses.add_lesson(
            teacher, section, title="案例讲座", kind=LessonKind.VIDEO, media=video_media
        ),
        LessonKind.DOCUMENT: courses.add_lesson(
            teacher, section, title="学习材料", kind=LessonKind.DOCUMENT, media=pdf_media, min_read_seconds=30
        ),
        LessonKind.QUIZ: courses.add_lesson(teacher, section, title="案例测验", kind=LessonKind.QUIZ),
        LessonKind.SURVEY: courses.add_lesson(
            teacher, section, title="学情评估", kind=LessonKind.SURVEY, required=False
        ),
    }
    quizzes.add_question(
        teacher,
        lessons[LessonKind.QUIZ],
        kind=QuestionKind.SINGLE,
        text="首要任务是？",
        options=["产业振兴", "拆村并居"],
        correct=[0],
    )
    quizzes.add_question(
        teacher,
        lessons[LessonKind.QUIZ],
        kind=QuestionKind.TRUE_FALSE,
        text="乡村振兴很重要。",
        options=[],
        correct=[0],
    )
    courses.set_published(teacher, course, True)
    draft = courses.create_course(teacher, code="B-02", title="草稿课程", topic="乡村振兴", nominal_hours_centi=100)
    db.session.commit()
    enrolment = enrolments.enrol(learner, course)
    db.session.commit()
    attempt = quizzes.open_attempt(learner, lessons[LessonKind.QUIZ], enrolment)
    db.session.commit()
    questions = quizzes.questions(lessons[LessonKind.QUIZ])
    quizzes.submit(learner, attempt, {str(q.id): 1 for q in questions})
    feedback.submit_feedback(learner, lessons[LessonKind.SURVEY], enrolment, 4, "很有收获")
    import datetime as dt

    from lms_core.db import utcnow

    enrolments.assign(org_admin, course, tree.county_a, deadline=utcnow() + dt.timedelta(days=30), note="调训")
    from lms_core.accounts.models import TokenScope

    token, _plain = accounts.create_token(learner, "我的脚本", scope=TokenScope.READ)
    accounts.set_status(
        site, UserFactory(username="lizhong", full_name="李忠", org_unit=tree.town_a), UserStatus.DISABLED
    )
    db.session.commit()
    # Study the platform credits only in part: the audit page explains why, in Chinese.
    from lms_core.learning import services as learning

    session = learning.start_session(learner, lessons[LessonKind.VIDEO], enrolment)
    db.session.commit()
    learning.record_beat(
        session.id, learner, {"seq": 1, "event": "heartbeat", "position": 2, "segments": [[0, 2]], "visible_ms": 2000}
    )
    db.session.commit()
    world: dict[str, Any] = {
        "users": {
            "learner": learner,
            "instructor": teacher,
            "auditor": auditor,
            "org_admin": org_admin,
            "site_admin": site,
        },
        "course_id": course.id,
        "draft_id": draft.id,
        "section_id": section.id,
        "lesson_ids": [lesson.id for lesson in lessons.values()],
        "quiz_id": lessons[LessonKind.QUIZ].id,
        "user_id": learner.id,
        "unit_id": tree.county_a.id,
        "media_id": pdf_media.id,
        "token_id": token.id,
        "attempt_id": attempt.id,
    }
    if "lrs" in PLUGINS:
        from lrs.clients import create_client

        client, _secret = create_client("学习平台", ["statements/write", "statements/read/mine"], created_by="root")
        db.session.commit()
        from lrs.audit import learner_agent
        from lrs.clients import authority_for
        from lrs.statements import Caller, store

        with app.test_request_context():
            actor = learner_agent(learner)
        store(
            [
                {
                    "actor": actor,
                    "verb": {
                        "id": "http://adlnet.gov/expapi/verbs/completed",
                        "display": {"en-US": "completed", "zh-CN": "完成"},
                    },
                    "object": {
                        "id": "https://lms.example/courses/1",
                        "definition": {"name": {"zh-CN": "乡村振兴实践案例"}},
                    },
                    "result": {"completion": True, "score": {"scaled": 0.9}},
                }
            ],
            Caller(client_id=client.id, authority=authority_for(client), scopes=frozenset({"all"})),
        )
        db.session.commit()

        world["client_id"] = client.id
    return world


#: How to fill each URL argument: a list of values (every lesson kind has its own page).
ARGUMENTS: dict[str, Any] = {
    "course_id": lambda w: [w["course_id"], w["draft_id"]],
    "lesson_id": lambda w: w["lesson_ids"],
    "section_id": lambda w: [w["section_id"]],
    "user_id": lambda w: [w["user_id"]],
    "unit_id": lambda w: [w["unit_id"]],
    "media_id": lambda w: [w["media_id"]],
    "token_id": lambda w: [w["token_id"]],
    "attempt_id": lambda w: [w["attempt_id"]],
    "client_id": lambda w: [w.get("client_id", 1)],
    "run_id": lambda w: [1],
    "assignment_id": lambda w: [1],
    "sheet_id": lambda w: [1],
    "claim_id": lambda w: [1],  # credit_bank evidence of a claim (none seeded: its 404 page is checked)
    # credit_bank's public verification page and PDF: an unknown credential (its 404 page is checked).
    "credential_id": lambda w: ["CB-unknown"],
    # reports: the page itself (its CSV and XLSX are the same table, checked in tests/lms_core/reports).
    "fmt": lambda w: ["html"],
    # the day picture (audit and the learner's own): today, when the world's learner studied.
    "day": lambda w: [_today()],
}


def _today() -> str:
    from lms_core.db import utcnow
    from lms_core.i18n import SHANGHAI

    return utcnow().astimezone(SHANGHAI).date().isoformat()


def _urls(app: Flask, world: dict[str, Any]) -> Iterator[str]:
    import itertools

    unknown = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not _is_page(rule):
            continue
        missing = [a for a in rule.arguments if a not in ARGUMENTS]
        if missing:
            unknown.update(f"{rule.rule}: {a}" for a in missing)
            continue
        names = sorted(rule.arguments)
        for values in itertools.product(*(ARGUMENTS[a](world) for a in names)):
            with app.test_request_context():
                from flask import url_for

                yield url_for(rule.endpoint, **dict(zip(names, values, strict=True)))
    assert not unknown, f"add these URL arguments to ARGUMENTS so their pages are checked: {sorted(unknown)}"


ELEMENT_ID = re.compile(r"""<[a-zA-Z][^>]*?\sid=["']([^"']+)["']""")


def duplicate_ids(html: str) -> list[str]:
    """The ids used by more than one element of the page."""
    seen = collections.Counter(ELEMENT_ID.findall(html))
    return sorted(i for i, n in seen.items() if n > 1)


def test_duplicate_ids_are_found() -> None:
    page = '<form><input id="title" name="title"></form><input type="text" id="title"><p id="x" data-id="title">'
    assert duplicate_ids(page) == ["title"]
    assert duplicate_ids('<input id="a"><input id="b"><a data-id="a">') == []


@pytest.mark.app_config(LMS_PLUGINS=PLUGINS)
def test_every_page_of_every_role_is_chinese(app: Flask, world: dict[str, Any]) -> None:
    from lms_core.events.names import known_events
    from tests.conftest import login

    with app.test_request_context():
        events = set(known_events())
    problems: dict[str, list[str]] = {}
    assets: set[str] = set()
    pages: dict[tuple[str, str], str] = {}
    seen_ok = 0
    for role in ["anonymous", *world["users"]]:
        client = app.test_client()
        if role != "anonymous":
            user: User = world["users"][role]
            assert login(client, user.username).status_code == 302
        for url in _urls(app, world):
            r = client.get(url)
            if r.status_code in (301, 302, 303):
                continue
            if r.mimetype != "text/html":
                continue
            seen_ok += r.status_code == 200
            html = r.get_data(as_text=True)
            assert '<html lang="zh-CN">' in html, (role, url)
            texts, technical = page_texts(html)
            bad = untranslated(texts) + raw_codes(technical, events)
            if bad:
                problems[f"{role} {url} ({r.status_code})"] = bad
            assets.update(ASSET.findall(html))
            pages[(role, url)] = html
    assert seen_ok > 30, "too few pages rendered: the data or the sign-in broke"
    # The data reached the pages that explain it (so the scan above read real rows).
    learner_id = world["user_id"]
    assert "只按实际时间计入" in pages[("auditor", f"/audit/users/{learner_id}/learning")]
    # The world's beat is sent by the service, not signed by the player: with anti_idle on, its
    # envelope rule voids it (R03e); the core alone credits the real time only.
    verdict = "不予认定" if "anti_idle" in PLUGINS else "部分认定"
    assert verdict in pages[("auditor", f"/audit/users/{learner_id}/learning")]
    assert "下达调训" in pages[("org_admin", "/audit/events")]
    if "lrs" in PLUGINS:
        assert "乡村振兴实践案例" in pages[("auditor", f"/lrs/learners/{learner_id}/statements")]
    lesson_page = pages[("learner", f"/learn/lessons/{world['lesson_ids'][0]}")]
    assert 'data-text-completed="已完成"' in lesson_page
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())
    # An id is unique on every page (a label's ``for`` and a script's lookup find one element).
    repeated = {f"{role} {url}": dupes for (role, url), html in pages.items() if (dupes := duplicate_ids(html))}
    assert repeated == {}, "\n".join(f"{k}: {v}" for k, v in repeated.items())
    # Every stylesheet, script and icon the pages link to is there (no 404 on any page).
    assert {"/favicon.ico", "/static/css/app.css", "/static/js/player.js"} <= assets
    missing = [a for a in sorted(assets) if app.test_client().get(a).status_code != 200]
    assert missing == []


# 3. Service errors ---------------------------------------------------------------------

#: Errors whose message a user reads (flashed on a page, or sent to the player).
USER_FACING_ERRORS = {
    "CourseError",
    "QuizError",
    "OrgError",
    "EnrolmentError",
    "AccountError",
    "FeedbackError",
    "BeatError",
    "ClientError",
    "ImportFileError",
    "QueryError",
    "UploadRejected",
    "ProbeError",
}
GETTEXT = {"_", "_l", "gettext", "lazy_gettext", "ngettext", "str"}


def _untranslated_raises(path: Path) -> list[str]:
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
            continue
        func = node.exc.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name not in USER_FACING_ERRORS:
            continue
        for arg in node.exc.args:
            if isinstance(arg, ast.JoinedStr) or (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node.exc)}")
    return found


def test_user_facing_errors_are_raised_with_translatable_messages() -> None:
    """A service error a user reads is a catalogued message, never an English literal or f-string."""
    sources = [
        p
        for top in ("lms_core", "lrs", "plugins")
        for p in sorted((REPO / top).rglob("*.py"))
        if "migrations" not in p.parts
    ]
    assert len(sources) > 50
    problems = [problem for p in sources for problem in _untranslated_raises(p)]
    assert problems == [], "\n".join(problems)


def test_service_errors_are_chinese(app: Flask, tree: Any) -> None:
    from lms_core.courses import services as courses

    teacher = UserFactory(username="wangjs", org_unit=tree.city)
    grant(teacher, Role.INSTRUCTOR, tree.city)
    courses.create_course(teacher, code="C-1", title="课程")
    with app.test_request_context(), pytest.raises(courses.CourseError) as err:
        courses.create_course(teacher, code="C-1", title="课程")
    assert str(err.value) == "课程代码 C-1 已存在"
    from flask_babel import refresh

    with app.test_request_context(headers={"Cookie": "lms_lang=en"}), pytest.raises(courses.CourseError) as err:
        refresh()  # the app context the fixture keeps cached the first request's locale
        courses.create_course(teacher, code="C-1", title="课程")
    assert str(err.value) == "course code C-1 already exists"


def test_scripts_take_their_words_from_the_page() -> None:
    """Scripts hold no user-facing text of their own: it comes translated from the page (data-text-*)."""
    scripts = sorted(REPO.glob("themes/*/static/**/*.js")) + sorted(REPO.glob("plugins/*/static/**/*.js"))
    assert any(p.name == "player.js" for p in scripts)
    vendored = ("vendor", ".min.js")
    offenders = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for p in scripts
        if not any(v in str(p) for v in vendored)
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if CJK.search(line)
    ]
    assert offenders == []
    assert "data-text-completed=" in (REPO / "themes/default/templates/learn/_frame.html").read_text()


def test_favicon_is_served(client: Any) -> None:
    for url in ("/favicon.ico", "/static/favicon.ico"):
        r = client.get(url)
        assert r.status_code == 200 and r.data[:4] == b"\x00\x00\x01\x00", url  # an ICO file
    r = client.get("/static/apple-touch-icon.png")
    assert r.status_code == 200 and r.data.startswith(b"\x89PNG")
