"""Moving one item of an ordered list (quiz and survey questions) one place up or down."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class Positioned(Protocol):
    position: int


T = TypeVar("T", bound=Positioned)


def move_one_place(active: Sequence[T], item: T, step: int) -> bool:
    """Move ``item`` by ``step`` (-1 up, +1 down) within ``active``; False at either end.

    The whole list is renumbered 1..n: positions may tie after imports, migrations or
    concurrent adds, and a swap of two tied positions would change nothing.
    """
    items = list(active)
    index = items.index(item) + step
    if not 0 <= index < len(items):
        return False
    items[index], items[index - step] = items[index - step], items[index]
    for position, each in enumerate(items, start=1):
        each.position = position
    return True
