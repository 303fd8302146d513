"""Which headers cross the router, in each direction, and which it adds.

Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the message, so they stop
here; so does any header the ``Connection`` header names. The router adds the request id,
``X-Forwarded-For/-Proto/-Host`` and, when a secret is configured, the signed internal header.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, istr

from fittracker import internal_auth
from fittracker.http.requestid import HEADER as REQUEST_ID_HEADER
from fittracker.http.requestid import accept_or_make
from fittracker.log import current_request_id
from fittracker.router.body import decoded_by_router

HOP_BY_HOP = frozenset(
    istr(h)
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)
# Not hop-by-hop, but the router answers or replaces them itself: the Host of the upstream
# connection is aiohttp's to set, and 100-continue was already handled by our server.
_REQUEST_DROP = HOP_BY_HOP | {istr("Host"), istr("Expect")}
# A body our server decoded goes upstream decoded: its coding and encoded length no longer apply.
_DECODED_BODY = frozenset({istr("Content-Encoding"), istr("Content-Length")})
# The WebSocket handshake is redone by the client session towards the upstream.
_WS_HANDSHAKE = frozenset(
    istr(h)
    for h in (
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Accept",
    )
)
# Headers aiohttp's client would otherwise invent: the upstream must see what the client sent.
SKIP_AUTO_HEADERS = ("Accept-Encoding", "User-Agent", "Content-Type")


def _named_by_connection(headers: CIMultiDictProxy[str]) -> set[str]:
    names: set[str] = set()
    for value in headers.getall("Connection", ()):
        names.update(istr(token.strip()) for token in value.split(",") if token.strip())
    return names


def _filtered(headers: CIMultiDictProxy[str], drop: Iterable[str]) -> CIMultiDict[str]:
    dropped = set(drop) | _named_by_connection(headers)
    return CIMultiDict((k, v) for k, v in headers.items() if istr(k) not in dropped)


def request_id_of(request: web.BaseRequest) -> str:
    """The id the request context middleware gave this request, else a valid incoming one."""
    return current_request_id() or accept_or_make(request.headers.get(REQUEST_ID_HEADER))


def forward_request_headers(
    request: web.BaseRequest,
    path_qs: str,
    request_id: str,
    secret: str | None,
    *,
    websocket: bool = False,
) -> CIMultiDict[str]:
    """The headers to send upstream for ``request``, going to ``path_qs`` (path + query)."""
    drop = _REQUEST_DROP | _WS_HANDSHAKE if websocket else _REQUEST_DROP
    if decoded_by_router(request):
        drop |= _DECODED_BODY
    headers = _filtered(request.headers, drop)
    headers[REQUEST_ID_HEADER] = request_id
    peer = request.remote or ""
    previous = ", ".join(request.headers.getall("X-Forwarded-For", ()))
    if peer:
        headers["X-Forwarded-For"] = f"{previous}, {peer}" if previous else peer
    headers["X-Forwarded-Proto"] = request.scheme
    if request.host:
        headers["X-Forwarded-Host"] = request.host
    if secret:
        headers[internal_auth.HEADER] = internal_auth.sign(secret, request.method, path_qs, request_id)
    else:
        headers.popall(internal_auth.HEADER, None)  # never pass a client's own "signature" on
    return headers


def probe_headers(path: str, request_id: str, secret: str | None) -> dict[str, str]:
    """Headers for a health probe: a request id and, when configured, the signature."""
    headers = {REQUEST_ID_HEADER: request_id}
    if secret:
        headers[internal_auth.HEADER] = internal_auth.sign(secret, "GET", path, request_id)
    return headers


def response_headers(headers: CIMultiDictProxy[str], *, keep_length: bool) -> CIMultiDict[str]:
    """The upstream response's headers to pass to the client (duplicates such as Set-Cookie kept).

    ``keep_length`` is False when the router builds the body itself and lets aiohttp count it.
    """
    drop: set[str] = set(HOP_BY_HOP)
    if not keep_length:
        drop.add(istr("Content-Length"))
    return _filtered(headers, drop)
