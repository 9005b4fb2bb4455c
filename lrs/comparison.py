"""Statement comparison (xAPI-Data 2.3.1.s9): are two statements "the same"?

Its own module because both the store (a re-sent id must match what is stored)
and the signature check (the signed payload must match the statement) need it,
and the store calls the signature check.
"""

from __future__ import annotations

from typing import Any

from lrs import validation

_LRS_SET = ("authority", "stored", "version", "id")


def _normalise(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if key in ("mbox",) and isinstance(value, str):
        return value.lower()
    if key in ("timestamp",) and isinstance(value, str):
        try:
            return validation.parse_timestamp(value)
        except validation.ValidationError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def same_statement(received: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Statement comparison (xAPI-Data 2.3.1.s9): ignore what the LRS may set."""
    a = {k: v for k, v in received.items() if k not in _LRS_SET}
    b = {k: v for k, v in stored.items() if k not in _LRS_SET}
    if "timestamp" not in a:
        b.pop("timestamp", None)
    return bool(_normalise(a) == _normalise(b))
