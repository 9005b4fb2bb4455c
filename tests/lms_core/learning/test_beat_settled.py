"""``beat_batch._Settled``: what the writer settles for a beat awaited on an event loop.

It stands where a ``concurrent.futures.Future`` stood (``_Request.future``), so it answers as one
does for what the writer and ``_settle`` ask of it: settled once, a result or an exception.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor

import pytest

from lms_core.learning import beat_batch

ANSWER = (200, [(b"Content-Type", b"application/json")], b"{}\n")


@pytest.mark.parametrize("make", [beat_batch._Settled, Future])
def test_settled_once_like_a_future(make):
    done = make()
    assert not done.done()
    done.set_result(ANSWER)
    assert done.done() and done.result() == ANSWER and done.exception() is None
    with pytest.raises(InvalidStateError):
        done.set_result(None)
    with pytest.raises(InvalidStateError):
        done.set_exception(RuntimeError("late"))
    failed = make()
    failed.set_exception(RuntimeError("the group failed"))
    assert failed.done() and isinstance(failed.exception(), RuntimeError)
    with pytest.raises(RuntimeError, match="the group failed"):
        failed.result()


def test_the_loop_gets_the_writers_answer_or_error():
    """``_wake`` / ``_settle`` hand settled beats to their waiters on the loop, result or exception."""

    async def run() -> tuple[object, BaseException | None]:
        loop = asyncio.get_running_loop()
        ok = beat_batch._Request(None, beat_batch._Settled(), loop, loop.create_future())  # type: ignore[arg-type]
        bad = beat_batch._Request(None, beat_batch._Settled(), loop, loop.create_future())  # type: ignore[arg-type]
        ok.future.set_result(ANSWER)
        bad.future.set_exception(RuntimeError("commit failed"))
        beat_batch._wake([ok, bad])  # one call into the loop for both
        assert ok.waiter is not None and bad.waiter is not None
        answer = await ok.waiter
        assert bad.waiter.done()  # settled by the same call
        return answer, bad.waiter.exception()

    # On a thread of its own: a browser test earlier in the session leaves Playwright's loop
    # marked as running in this thread, where ``asyncio.run`` refuses (as test_beat_asgi.py).
    with ThreadPoolExecutor(1) as pool:
        answer, error = pool.submit(asyncio.run, run()).result()
    assert answer == ANSWER
    assert isinstance(error, RuntimeError) and str(error) == "commit failed"


def test_the_writers_one_call_into_the_loop_calls_each_beats_callback():
    """``beat_batch.then``'s beats (the HTTP fast path's): no future each; the group's one call
    into the loop calls each callback there with its answer, ``None`` for an error, and a
    callback that raises is reported to the loop's handler without keeping the others'."""

    async def run() -> tuple[list[tuple[str, object]], list[dict[str, object]]]:
        loop = asyncio.get_running_loop()
        got: list[tuple[str, object]] = []
        reported: list[dict[str, object]] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        here = asyncio.Event()

        def callback(name: str) -> object:
            def called(answer: object) -> None:
                assert asyncio.get_running_loop() is loop  # on the loop, not the writer's thread
                got.append((name, answer))
                if name == "raises":
                    raise ValueError("the answer's write failed")
                if name == "last":
                    here.set()

            return called

        requests = [
            beat_batch._Request(None, beat_batch._Settled(), loop, None, None, callback(name))  # type: ignore[arg-type]
            for name in ("ok", "raises", "bad", "last")
        ]
        ok, raises, bad, last = (req.future for req in requests)
        ok.set_result(ANSWER)
        raises.set_result(ANSWER)
        bad.set_exception(RuntimeError("commit failed"))
        last.set_result(ANSWER)
        with ThreadPoolExecutor(1) as writer:  # from another thread, as the writer calls
            writer.submit(beat_batch._wake, requests).result()
        await asyncio.wait_for(here.wait(), 10)
        return got, reported

    with ThreadPoolExecutor(1) as pool:
        got, reported = pool.submit(asyncio.run, run()).result()
    assert got == [("ok", ANSWER), ("raises", ANSWER), ("bad", None), ("last", ANSWER)]
    assert [str(context["exception"]) for context in reported] == ["the answer's write failed"]
