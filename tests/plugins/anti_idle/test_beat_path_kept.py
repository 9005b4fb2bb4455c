"""What the beat path keeps between beats instead of recomputing it (issue 8, ingestion):
the defaults' policy version and its ELS parameters, and the round read's JSON decoder.
Each must give exactly what recomputing gives, also after the inputs change."""

from __future__ import annotations

import json

import pytest

from plugins.anti_idle import els, policy, state_pg


def test_the_defaults_version_is_kept_while_the_defaults_stay_the_same(monkeypatch):
    first = policy.in_force(None)
    assert policy.in_force(None) is first  # kept: its els_params are computed once
    assert first.els_params == els.params_of(first.params)
    assert first.els_params is first.els_params
    monkeypatch.setitem(policy.DEFAULTS, "hidden_grace_seconds", 7)
    changed = policy.in_force(None)
    assert changed is not first and changed["hidden_grace_seconds"] == 7
    assert changed.els_params.grace_us == 7_000_000 == els.params_of(changed.params).grace_us


def test_a_list_changed_in_place_in_the_defaults_is_seen(monkeypatch):
    monkeypatch.setitem(policy.DEFAULTS, "allowed_rates", list(policy.DEFAULTS["allowed_rates"]))
    before = policy.in_force(None)
    policy.DEFAULTS["allowed_rates"].append(9.0)
    after = policy.in_force(None)
    assert after is not before and after.els_params.max_rate == 9.0
    assert 9.0 not in before["allowed_rates"]  # the kept version has its own copy


@pytest.mark.parametrize(
    "text",
    [
        b'{"tally": {"claimed_ms": 1, "cuts": {"R04": 2}}, "lessons": {"7": [1, 2, 3]}, "dirty": true}',
        b'[["abc", null, "heartbeat", 4, 100, 200, [[0, 1000]]]]',
        b'{"big": 123456789012345678901234567890, "f": 0.1, "e": 1.5e300}',
        b'"\\ud800"',  # a lone surrogate: msgspec refuses it, json.loads reads it
        b"[1e400]",  # beyond a float: json.loads gives inf
    ],
)
def test_the_round_reads_json_as_json_loads_does(text):
    assert state_pg._json_loads(text) == json.loads(text)
    assert state_pg._json_loads(text.decode()) == json.loads(text)
