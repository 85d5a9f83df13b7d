"""The one exception request handling raises: an answer other than 200."""

from __future__ import annotations


class HTTPError(Exception):
    """Rendered as ``{"error": message}`` with ``status_code``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class LoadError(Exception):
    """The model cannot be served; the message says what to change. Ends the server."""


class OutputMismatch(Exception):
    """``predict`` returned something other than its declared outputs, one per input: a 500."""
