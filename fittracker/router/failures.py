"""What can go wrong between the router and an upstream, and how the client hears of it.

Every failure is sorted by one question first: could any byte of the request have reached
the upstream? Only failures while connecting (refused, no such socket, connect timeout) are
known to be unsent, so only they may be retried on another upstream whatever the method.

Then by what the client should do about it:

- 503 + ``Retry-After``: the worker went away (could not connect; the connection was reset or
  closed before a complete answer). Another worker, or this one restarted, will serve a
  repeat; for a request already sent, a write may or may not have been applied.
- 502: the worker answered, but not with valid HTTP.
- 504: the worker did not answer in time (or could not be reached in time).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus

import aiohttp
from aiohttp import web

from fittracker.errors import PROBLEM_BASE
from fittracker.http.problems import problem_response
from fittracker.http.requestid import HEADER as REQUEST_ID_HEADER
from fittracker.router.pool import Upstream

SLUGS = {502: "bad-gateway", 503: "upstream-unavailable", 504: "gateway-timeout"}
WENT_AWAY = "the worker went away before answering"
# Appended to a failure's detail when a request that changes something may have arrived.
MAYBE_APPLIED = (
    "the request was sent, so the write may or may not have been applied; "
    "retry it with the same Idempotency-Key where the operation takes one"
)


class ProxyFailure(Exception):
    """An attempt that got no usable answer from an upstream."""

    def __init__(
        self, status: int, reason: str, *, sent: bool, upstream_fault: bool = True, cause: str = ""
    ) -> None:
        super().__init__(reason)
        self.status = status
        # ``reason`` is for the client; ``cause`` (addresses, OS errors) only for the log.
        self.reason = reason
        self.cause = cause or reason
        # False only when the request provably never left the router (a connect failure).
        self.sent = sent
        # Whether it counts against the upstream's health (passive ejection, breaker).
        self.upstream_fault = upstream_fault
        # The upstream of the failed attempt (set by the proxy; None before one was picked).
        self.upstream: Upstream | None = None


class ClientGone(Exception):
    """The client went away mid-request: nobody to answer, nothing to blame the upstream for."""


def classify(exc: BaseException) -> ProxyFailure:
    """Sort a client-session exception raised while sending a request or awaiting its answer."""
    cause = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ProxyFailure(504, "timed out connecting to a worker", sent=False, cause=cause)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProxyFailure(503, "the worker went away: could not connect to it", sent=False, cause=cause)
    if isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return ProxyFailure(504, "the worker did not answer in time", sent=True, cause=cause)
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError) or _cut_short(exc):
        return ProxyFailure(503, WENT_AWAY, sent=True, cause=cause)
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return ProxyFailure(502, "the worker sent an invalid response", sent=True, cause=cause)
    return ProxyFailure(502, "the connection to the worker failed", sent=True, cause=cause)


def _cut_short(exc: BaseException) -> bool:
    """A response body that ended with the connection (not one that was malformed)."""
    return isinstance(exc, aiohttp.ClientPayloadError) and str(exc).startswith(
        "Response payload is not completed"
    )


def proxy_problem(
    status: int,
    detail: str,
    request_id: str,
    *,
    slug: str | None = None,
    retry_after_s: int | None = None,
    extra_headers: dict[str, str] | None = None,
) -> web.Response:
    """A problem+json answer from the router itself, carrying the request id."""
    headers = {REQUEST_ID_HEADER: request_id, **(extra_headers or {})}
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return problem_response(
        status,
        title,
        detail,
        PROBLEM_BASE + (slug or SLUGS.get(status, "upstream-error")),
        headers=headers,
        extra={"request_id": request_id},
    )
