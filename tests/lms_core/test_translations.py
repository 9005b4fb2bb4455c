"""Translation catalogues are complete and safe to format; the sign-in page is fully Chinese by default.

The catalogue checks are plain unit tests on the committed ``.po`` files (core,
plugins and the LRS, whichever have a ``translations`` folder). The page tests
render ``/login`` through the app, which reads the compiled ``.mo`` files
(``make translations`` / ``pybabel compile``).
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import PYTHON_FORMAT, Catalog, Message
from babel.messages.checkers import python_format
from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parents[2]
CORE_TRANSLATIONS = REPO / "lms_core" / "translations"
TRANSLATION_DIRS = [CORE_TRANSLATIONS, *sorted(REPO.glob("plugins/*/translations")), REPO / "lrs" / "translations"]
PO_FILES = sorted(po for d in TRANSLATION_DIRS if d.is_dir() for po in d.glob("*/LC_MESSAGES/*.po"))


def _po_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def _read(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f)


def _messages(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id]  # the first entry (empty id) is the header


def _strings(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if isinstance(value, (tuple, list)):
        return list(value)
    return [value or ""]


def _placeholders(text: str) -> Counter[str]:
    """Every %-conversion (``%(name)s``, ``%d``, ``%%``), counted, as written."""
    return Counter(m.group(0) for m in PYTHON_FORMAT.finditer(text))


def test_the_core_chinese_catalogue_is_found():
    # Guards the parametrised tests below against silently checking nothing.
    assert CORE_TRANSLATIONS / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po" in PO_FILES


@pytest.mark.parametrize("po", PO_FILES, ids=_po_id)
def test_every_message_is_translated_and_not_fuzzy(po: Path):
    catalog = _read(po)
    untranslated = [m.id for m in _messages(catalog) if not all(s.strip() for s in _strings(m.string))]
    fuzzy = [m.id for m in _messages(catalog) if m.fuzzy]
    assert untranslated == [], f"{len(untranslated)} untranslated in {_po_id(po)}"
    assert fuzzy == [], f"{len(fuzzy)} fuzzy in {_po_id(po)}"
    assert not catalog.fuzzy, "the catalogue header is marked fuzzy"


@pytest.mark.parametrize("po", PO_FILES, ids=_po_id)
def test_placeholders_are_kept_exactly(po: Path):
    problems = []
    for m in _messages(_read(po)):
        try:
            python_format(None, m)  # babel's own check: kinds and types compatible
        except Exception as exc:  # TranslationError, or a parse error on a malformed string
            problems.append(f"{m.id!r}: {exc}")
        ids = _strings(m.id)
        for text in _strings(m.string):
            # Stricter than babel, which accepts a translation dropping a named placeholder.
            if _placeholders(text) != _placeholders(ids[0]) and (
                len(ids) < 2 or _placeholders(text) != _placeholders(ids[1])
            ):
                problems.append(f"{m.id!r}: {sorted(_placeholders(ids[0]))} vs {sorted(_placeholders(text))}")
    assert problems == []


@pytest.mark.parametrize("po", PO_FILES, ids=_po_id)
def test_python_format_translations_format_like_their_source(po: Path):
    """Formatting each translation with the arguments its msgid takes must not raise."""
    samples: dict[str, object] = {"d": 7, "i": 7, "s": "x", "r": "x", "f": 1.5}
    for m in _messages(_read(po)):
        if "python-format" not in m.flags:
            continue
        conversions = [(name, kind) for name, _flags, kind in PYTHON_FORMAT.findall(_strings(m.id)[0])]
        if any(name for name, _kind in conversions):
            args: object = {name: samples.get(kind, 7) for name, kind in conversions if name}
        else:
            args = tuple(samples.get(kind, 7) for _name, kind in conversions if kind != "%")
        for text in _strings(m.string):
            try:
                text % args
            except (KeyError, TypeError, ValueError) as exc:
                pytest.fail(f"{m.id!r} -> {text!r}: {exc!r}")


TEMPLATED = [(po, po.parents[2] / "messages.pot") for po in PO_FILES if (po.parents[2] / "messages.pot").is_file()]


def test_the_core_template_is_found():
    assert (
        CORE_TRANSLATIONS / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po",
        CORE_TRANSLATIONS / "messages.pot",
    ) in TEMPLATED


@pytest.mark.parametrize(("po", "pot"), TEMPLATED, ids=[_po_id(po) for po, _pot in TEMPLATED])
def test_catalogue_covers_its_template(po: Path, pot: Path):
    """Every msgid extracted into ``messages.pot`` has an entry (run ``pybabel update`` after extracting)."""
    missing = {m.id for m in _messages(_read(pot))} - {m.id for m in _messages(_read(po))}
    assert sorted(missing, key=str) == []


class _VisibleText(HTMLParser):
    """Collects what a reader sees or hears: text, labels and placeholders, skipping one language's islands.

    Elements carrying ``lang=<skip_lang>`` (the link to switch language is written in
    the other language on purpose) are left out with everything inside them.
    """

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    )
    SPOKEN_ATTRS = ("aria-label", "placeholder", "title", "alt")

    def __init__(self, skip_lang: str) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_lang = skip_lang
        self.stack: list[tuple[str, bool]] = []  # (tag, hidden)
        self.texts: list[str] = []

    def _hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        hidden = self._hidden() or a.get("lang") == self.skip_lang or tag in ("script", "style", "head")
        if tag == "title":
            hidden = False  # the tab title is read out and shown, although it sits in <head>
        if not hidden:
            self.texts.extend(a[k] or "" for k in self.SPOKEN_ATTRS if a.get(k))
            if tag == "input" and a.get("type") in ("submit", "button"):
                self.texts.append(a.get("value") or "")
        if tag not in self.VOID:
            self.stack.append((tag, hidden))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self._hidden() and data.strip():
            self.texts.append(data.strip())


def _visible(html: str, skip_lang: str) -> list[str]:
    parser = _VisibleText(skip_lang)
    parser.feed(html)
    parser.close()
    return parser.texts


LATIN = re.compile(r"[A-Za-z]")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def test_sign_in_page_is_chinese_by_default(client):
    r = client.get("/login")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    texts = _visible(html, skip_lang="en")
    for expected in ("登录 · 干部网络学院", "干部网络学院", "用户名", "密码", "登录", "菜单"):
        assert expected in texts, expected
    assert [t for t in texts if LATIN.search(t)] == []
    # The way back to English is offered, in English.
    assert 'lang="en">English</a>' in html


def test_sign_in_page_is_english_with_the_language_cookie(client):
    client.set_cookie("lms_lang", "en")
    r = client.get("/login")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<html lang="en">' in html
    texts = _visible(html, skip_lang="zh-CN")
    for expected in (
        "Sign in · Cadre Online Academy",
        "Cadre Online Academy",
        "Username",
        "Password",
        "Sign in",
        "Menu",
    ):
        assert expected in texts, expected
    assert [t for t in texts if CJK.search(t)] == []
    assert 'lang="zh-CN">中文</a>' in html


@pytest.mark.parametrize(("lang", "expected"), [("zh_Hans_CN", "阅读时长："), ("en", "Reading time: ")])
def test_a_label_takes_the_colon_of_the_page_language(app, lang, expected):
    """``|colon`` after a label: full-width on a Chinese page, ASCII and a space on an English one."""
    from flask_babel import force_locale, gettext

    with app.test_request_context("/"), force_locale(lang):
        assert app.jinja_env.from_string("{{ _('Reading time')|colon }}").render() == expected
        assert gettext("Reading time") in expected
