"""lms_core.jsonsafe: JSON the databases can store, for every request.get_json() in the app."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from lms_core import jsonsafe
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory

DEEP = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize(
    "text, why",
    [
        ("NaN", "NaN"),
        ('{"a": Infinity}', "Infinity"),
        ("[-Infinity]", "-Infinity"),
        ("[1e400]", "out of range"),
        ('{"a": ["x\\u0000"]}', "NUL"),
        ('{"a\\ud800": 1}', "surrogate"),
        ('"\\udfff"', "surrogate"),
        (DEEP, "deeper"),
        ("[" * 101 + "]" * 101, "deeper"),
        ('{"a":' * 101 + "1" + "}" * 101, "deeper"),
        ("1" + "0" * 5000, "not valid JSON"),
        ("{", "not valid JSON"),
        (b"\xff", "UTF-8"),
    ],
)
def test_refused(text, why):
    with pytest.raises(jsonsafe.JSONRefused, match=why):
        jsonsafe.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "[1]",
        "[" * 100 + "]" * 100,
        '"\\ud83d\\ude00"',
        '{"a": "\\\\u0000"}',
        '["[[[[[[", "{{{{"]',
        "1e308",
        '{"学": "习"}',
    ],
)
def test_accepted(text):
    assert jsonsafe.loads(text) == json.loads(text)


STORABLE_TEXT = hst.text(alphabet=hst.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(max_examples=200)
@given(
    hst.recursive(
        hst.none()
        | hst.booleans()
        | hst.integers()
        | hst.floats(allow_nan=False, allow_infinity=False)
        | STORABLE_TEXT,
        lambda c: hst.lists(c, max_size=3) | hst.dictionaries(STORABLE_TEXT, c, max_size=3),
        max_leaves=20,
    )
)
def test_storable_json_round_trips(value):
    text = json.dumps(value, ensure_ascii=False)
    assert jsonsafe.loads(text.encode()) == json.loads(text)


@given(hst.text(max_size=40))
def test_never_raises_anything_but_refused(text):
    with contextlib.suppress(jsonsafe.JSONRefused):
        jsonsafe.loads(text)


def test_the_app_parses_request_json_strictly(app):
    for text in ("NaN", DEEP, '{"a": "\\u0000"}'):
        with pytest.raises(ValueError):
            app.json.loads(text)


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
@pytest.mark.parametrize("body", [DEEP, '{"answer": NaN, "trusted": true}', '{"answer": "\\u0000", "trusted": true}'])
def test_a_plugins_get_json_answers_400_not_500(app, client, tree, body):
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    login(client, "liming")
    r = client.post("/anti-idle/checks/no-such-token/answer", data=body, content_type="application/json")
    assert r.status_code == 400 and r.is_json
