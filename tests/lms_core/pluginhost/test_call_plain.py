"""``manager.call_plain``: a per-beat hook called without pluggy's per-call work answers as pluggy does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pluggy
import pytest

from lms_core.pluginhost.manager import call_plain

spec = pluggy.HookspecMarker("calltest")
impl = pluggy.HookimplMarker("calltest")


class Specs:
    @spec
    def beat(self, session_id: str, body: bytes) -> Any:
        """A hook of two arguments."""

    @spec(firstresult=True)
    def first(self, session_id: str) -> Any:
        """A hook whose first answer wins."""


def _manager(*plugins: object) -> tuple[pluggy.PluginManager, list[tuple[str, tuple[Any, ...]]]]:
    pm = pluggy.PluginManager("calltest")
    pm.add_hookspecs(Specs)
    calls: list[tuple[str, tuple[Any, ...]]] = []
    for n, plugin in enumerate(plugins):
        plugin.calls = calls  # type: ignore[attr-defined]
        pm.register(plugin, name=f"p{n}")
    return pm, calls


class Both:
    @impl
    def beat(self, session_id: str, body: bytes) -> Any:
        self.calls.append(("both", (session_id, body)))  # type: ignore[attr-defined]
        return f"both {session_id}"


class OnlyBody:
    @impl
    def beat(self, body: bytes) -> Any:
        self.calls.append(("body", (body,)))  # type: ignore[attr-defined]
        return None


class Last:
    @impl(tryfirst=True)
    def beat(self, session_id: str) -> Any:
        self.calls.append(("first", (session_id,)))  # type: ignore[attr-defined]
        return 3

    @impl
    def first(self, session_id: str) -> Any:
        return "one"


class Wrapper:
    @impl(wrapper=True)
    def beat(self) -> Iterator[None]:
        self.calls.append(("wrapper", ()))  # type: ignore[attr-defined]
        answers = yield
        return [*answers, "wrapped"]

    @impl
    def first(self, session_id: str) -> Any:
        return "two"


def test_same_implementations_order_arguments_and_answers_as_pluggy() -> None:
    pm, calls = _manager(Both(), OnlyBody(), Last())
    expected = pm.hook.beat(session_id="s1", body=b"{}")
    through_pluggy = list(calls)
    calls.clear()
    assert call_plain(pm.hook.beat, session_id="s1", body=b"{}") == expected == [3, "both s1"]
    assert calls == through_pluggy == [("first", ("s1",)), ("body", (b"{}",)), ("both", ("s1", b"{}"))]


def test_no_implementation_answers_an_empty_list() -> None:
    pm, _calls = _manager()
    assert call_plain(pm.hook.beat, session_id="s1", body=b"") == []


def test_a_wrapper_goes_through_pluggy() -> None:
    pm, calls = _manager(Both(), Wrapper())
    assert call_plain(pm.hook.beat, session_id="s1", body=b"") == ["both s1", "wrapped"]
    assert [name for name, _args in calls] == ["wrapper", "both"]


def test_firstresult_goes_through_pluggy() -> None:
    pm, _calls = _manager(Last(), Wrapper())
    assert call_plain(pm.hook.first, session_id="s1") == pm.hook.first(session_id="s1") == "two"


def test_an_exception_propagates_and_later_implementations_do_not_run() -> None:
    class Raises:
        @impl(tryfirst=True)
        def beat(self, session_id: str) -> Any:
            raise LookupError(session_id)

    pm, calls = _manager(Both(), Raises())
    with pytest.raises(LookupError):
        call_plain(pm.hook.beat, session_id="s1", body=b"")
    assert calls == []
