"""The beat fast path as it was before issue 8's loop work, for A/B runs.

``beat_http.BeatHttpProtocol`` keeps a connection's keep-alive timer armed across requests
and checks idleness when it fires, and lets go of an answered beat's objects;
:class:`EagerProtocol` puts back uvicorn's way (the timer cancelled when data arrives and made
anew after each answer; the last request's scope, headers and cycle kept on the connection
until the next; every request target parsed by ``httptools.parse_url``), all else the same. Select it
in the ingest bench with ``--worker-class bench.beat_http_eager.EagerWorker`` (run from the
repository's root, as the bench runs gunicorn), or in ``bench/beat_http_micro.py``.
"""

from __future__ import annotations

from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lms_core.learning.beat_http import BeatHttpProtocol, BeatWorker


class EagerProtocol(BeatHttpProtocol):
    """The fast path with uvicorn's keep-alive timer (cancelled and re-made per request) and
    the last beat kept on its connection."""

    _unset_keepalive_if_required = HttpToolsProtocol._unset_keepalive_if_required
    on_response_complete = HttpToolsProtocol.on_response_complete
    timeout_keep_alive_handler = HttpToolsProtocol.timeout_keep_alive_handler

    def connection_lost(self, exc: Exception | None) -> None:
        HttpToolsProtocol.connection_lost(self, exc)

    def _let_go(self, beat: Any) -> None:
        pass

    @staticmethod
    def _split_url(url: bytes) -> tuple[bytes, bytes]:
        parsed = httptools.parse_url(url)
        return parsed.path, parsed.query or b""


class EagerWorker(BeatWorker):
    """:class:`BeatWorker` with :class:`EagerProtocol`."""

    CONFIG_KWARGS: dict[str, Any] = {**BeatWorker.CONFIG_KWARGS, "http": "bench.beat_http_eager:EagerProtocol"}
