"""One msgid, one translation: the plugins' catalogues are merged over the core's at run time.

Flask-Babel merges every translation directory into one catalogue, the later over the
earlier, so a plugin that translates a core msgid differently changes the core's pages
too (the anti-idle day table's "Time" = 时长 turned the log browser's 时间 column into
时长; the credit bank's "Name" = 姓名 renamed org units' 名称). A plugin that means
something else uses its own msgid; one that means the same leaves the core's translation.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "lms_core/translations/zh_Hans_CN/LC_MESSAGES/messages.po"


def _catalogue(path: Path) -> dict[str, str]:
    with path.open("rb") as f:
        return {m.id: m.string for m in read_po(f) if isinstance(m.id, str) and m.id and m.string}


def test_no_catalogue_translates_another_ones_msgid_differently() -> None:
    catalogues = {"core": _catalogue(CORE)}
    for po in sorted(ROOT.glob("plugins/*/translations/zh_Hans_CN/LC_MESSAGES/messages.po")):
        catalogues[po.parts[-5]] = _catalogue(po)
    clashes = []
    names = list(catalogues)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for msgid in catalogues[a].keys() & catalogues[b].keys():
                if catalogues[a][msgid] != catalogues[b][msgid]:
                    clashes.append(f"{msgid!r}: {a} {catalogues[a][msgid]} / {b} {catalogues[b][msgid]}")
    assert not clashes, "\n".join(sorted(clashes))


#: One thing, one Chinese name, wherever the pages show it: the review queue said 疑点分数,
#: the evidence line 复核分 and the day picture 审核分 for the same number.
TERMS = {"review score": "审核分"}


def test_a_term_has_one_chinese_name_in_every_catalogue() -> None:
    paths = [CORE, *sorted(ROOT.glob("plugins/*/translations/zh_Hans_CN/LC_MESSAGES/messages.po"))]
    odd = [
        f"{path.parts[-5]}: {msgid!r} = {msgstr}"
        for path in paths
        for msgid, msgstr in _catalogue(path).items()
        for term, name in TERMS.items()
        if term in msgid.lower() and name not in msgstr
    ]
    assert not odd, "\n".join(odd)
