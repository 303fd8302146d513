"""The client's request body on its way to an upstream.

The router's own server decodes a body sent with ``Content-Encoding: gzip`` (or deflate, br,
zstd: aiohttp's ``auto_decompress``), so what it streams upstream is the decoded body, and it
must say so: without that ``Content-Encoding`` and without the client's (encoded) length. A
body the router cannot read (a "gzip" body that is not gzip, a broken chunked encoding) is the
client's fault: a 400, which never counts against the upstream's health.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import StreamReader, hdrs, web

from fittracker.http.body import unreadable

# The content codings aiohttp's server decodes before a handler reads the body.
DECODED_CODINGS = frozenset({"gzip", "deflate", "br", "zstd"})


class BadClientBody(Exception):
    """The client's request body could not be read; the detail says why."""


def decoded_by_router(request: web.BaseRequest) -> bool:
    """Whether the body the router reads is already decoded from the client's content coding."""
    return request.headers.get(hdrs.CONTENT_ENCODING, "").lower() in DECODED_CODINGS


class ClientBody:
    """The client's body as the upstream request's data; remembers why reading it failed."""

    def __init__(self, content: StreamReader) -> None:
        self._content = content
        self.error: str | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._content.iter_any():
                yield chunk
        except web.RequestPayloadError as exc:
            self.error = unreadable(exc)
            raise
