"""The one exception type the LRS services raise for a client error."""

from __future__ import annotations


class XapiError(Exception):
    """A request the LRS rejects: ``status`` is the HTTP code the spec requires."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> XapiError:
    return XapiError(400, message)
