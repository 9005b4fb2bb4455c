"""The HR import parser, property-based: what a CSV writer wrote is read back unchanged.

No application or database: the parser is a pure function of the file's bytes.
"""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from lms_core.accounts.importer import _parse_rows, decode

NAME_CHARS = st.sampled_from(
    list("张王李赵刘陈杨黄周吴伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂") + list("abcXYZ ·-,\"';")
)
RANKS = ["乡科级", "一般干部", "县处级及以上", "township", "general", ""]
PARTY = ["中共党员", "群众", "是", "否", ""]


@st.composite
def hr_rows(draw):
    count = draw(st.integers(min_value=1, max_value=8))
    usernames = draw(
        st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True), min_size=count, max_size=count, unique=True)
    )
    rows = []
    for username in usernames:
        name = draw(st.text(NAME_CHARS, min_size=1, max_size=12).filter(lambda s: s.strip()))
        rows.append(
            [
                username,
                name,
                draw(st.sampled_from(["360121", "360121001"])),
                draw(st.sampled_from(RANKS)),
                draw(st.sampled_from(PARTY)),
            ]
        )
    return rows


@settings(max_examples=150, deadline=None)
@given(rows=hr_rows(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk"]), delimiter=st.sampled_from([",", "\t"]))
def test_parser_reads_back_what_a_csv_writer_wrote(rows, encoding, delimiter):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(["用户名", "姓名", "单位代码", "职级", "政治面貌"])
    writer.writerows(rows)
    text, _enc = decode(buffer.getvalue().encode(encoding))
    parsed, errors = _parse_rows(text)
    assert errors == []
    assert [(r.values["username"], r.values["full_name"], r.values["org_code"]) for r in parsed] == [
        (u, n.strip(), c) for u, n, c, _r, _p in rows
    ]
    assert [r.values["party_member"] for r in parsed] == [p in ("中共党员", "是") for *_x, p in rows]
