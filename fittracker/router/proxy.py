"""The router's reverse proxy for one plug-in: HTTP (streamed both ways) and WebSockets.

One :class:`PluginProxy` fronts one :class:`UpstreamPool`. Per request it asks the circuit
breaker, picks a ready upstream (balancer), forwards, and on a failure that provably sent
nothing (connect refused, no socket, connect timeout) retries on another upstream within
the retry budget. A request that may have reached an upstream is never re-sent (unless
``retry_idempotent_sent`` allows it for bodiless GET/HEAD/OPTIONS). Failures end as
problem+json: 503 with ``Retry-After`` (nothing ready, circuit open, or the worker went
away: could not connect, or the connection broke before an answer; for a sent request that
changes something the detail says it may or may not have been applied), 502 (the worker's
answer was not valid HTTP), 504 (timeout).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from yarl import URL

from fittracker.router.balancer import Balancer, Strategy
from fittracker.router.body import BadClientBody, ClientBody
from fittracker.router.breaker import CircuitBreaker
from fittracker.router.failures import MAYBE_APPLIED, ClientGone, ProxyFailure, classify, proxy_problem
from fittracker.router.headers import (
    SKIP_AUTO_HEADERS,
    forward_request_headers,
    request_id_of,
    response_headers,
)
from fittracker.router.health import HealthProber
from fittracker.router.pool import Upstream, UpstreamPool
from fittracker.router.retry import RetryBudget
from fittracker.router.sessions import UpstreamSessions
from fittracker.router.websocket import WebSocketRelay, is_websocket

log = logging.getLogger("fittracker.router")

T = TypeVar("T")
# Responses up to this size are read whole and sent in one write: cheaper than streaming.
BUFFER_LIMIT = 1024 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NO_BODY_STATUSES = frozenset({204, 304})


class PluginProxy:
    """Forwards requests for one plug-in to its pool of upstreams."""

    def __init__(
        self,
        pool: UpstreamPool,
        *,
        probe_path: str,
        balance: Strategy = "round_robin",
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 30.0,
        eject_after: int = 3,
        retry_budget: float = 0.2,
        retry_min_per_s: float = 1.0,
        retry_window_s: float = 10.0,
        max_retries: int = 2,
        retry_idempotent_sent: bool = False,
        secret: str | None = None,
        probe_interval_s: float = 2.0,
        probe_timeout_s: float = 2.0,
        breaker_failures: int = 5,
        breaker_cooldown_s: float = 5.0,
        ws_heartbeat_s: float = 25.0,
        ws_max_msg_size: int = 4 * 1024 * 1024,
        connections_per_upstream: int = 256,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.pool = pool
        self.plugin = pool.plugin
        self.max_retries = max_retries
        self.retry_idempotent_sent = retry_idempotent_sent
        self.secret = secret or None
        self.balancer = Balancer(balance)
        self.breaker = CircuitBreaker(
            failure_threshold=breaker_failures,
            cooldown_s=breaker_cooldown_s,
            trial_timeout_s=connect_timeout_s + read_timeout_s,
        )
        self.budget = RetryBudget(retry_budget, min_per_s=retry_min_per_s, window_s=retry_window_s)
        self.sessions = UpstreamSessions(
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=connect_timeout_s,
                sock_connect=connect_timeout_s,
                sock_read=read_timeout_s,
            ),
            connections_per_upstream=connections_per_upstream,
        )
        self.prober = HealthProber(
            pool,
            self.sessions.for_upstream,
            probe_path=probe_path,
            interval_s=probe_interval_s,
            timeout_s=probe_timeout_s,
            eject_after=eject_after,
            secret=self.secret,
            on_readmit=lambda _upstream: self.breaker.pool_recovered(),
            # Workers come and go (restarts, rolling deploys): drop their sockets' sessions.
            after_round=lambda: self.sessions.prune(pool.all()),
        )
        self.websockets = WebSocketRelay(
            secret=self.secret, heartbeat_s=ws_heartbeat_s, max_msg_size=ws_max_msg_size
        )
        self._retry_after_s = max(1, math.ceil(probe_interval_s))

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the health prober (client sessions are made on first use)."""
        self.prober.start()

    async def close(self) -> None:
        """Stop probing, close open WebSockets with 1001 (going away), close the sessions."""
        await self.prober.stop()
        await self.websockets.close_all()
        await self.sessions.close()

    async def probe(self, upstream: Upstream) -> bool:
        """One active health probe of ``upstream`` (the supervisor uses it for readiness)."""
        return await self.prober.probe(upstream)

    def describe(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "breaker": self.breaker.describe(),
            "retry_budget": self.budget.describe(),
            "websockets": self.websockets.open_count,
            "upstreams": self.pool.describe(),
        }

    # -- requests ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forward ``request`` (HTTP or a WebSocket upgrade) to one of the plug-in's upstreams."""
        request_id = request_id_of(request)
        if self.pool.ready():
            self.breaker.pool_recovered()
        if not self.breaker.allow():
            why = (
                f"no worker of the {self.plugin} plug-in is ready"
                if self.breaker.opened_for_an_empty_pool
                else f"the {self.plugin} plug-in is failing; the router stopped sending it requests for now"
            )
            return proxy_problem(
                503,
                why,
                request_id,
                slug="circuit-open",
                retry_after_s=self.breaker.retry_after_s(),
            )
        verdict_given = False

        def verdict(ok: bool, reason: str = "") -> None:
            nonlocal verdict_given
            if not verdict_given:
                verdict_given = True
                if ok:
                    self.breaker.success()
                else:
                    self.breaker.failure(reason)

        try:
            if is_websocket(request):
                ws = self.websockets
                return await self._dispatch(
                    request,
                    request_id,
                    verdict,
                    lambda u: ws.open(request, u, self.sessions.for_websocket(u), request_id),
                    lambda u, opened: ws.relay(request, u, opened),
                )
            return await self._dispatch(
                request,
                request_id,
                verdict,
                lambda u: self._open_http(request, u, request_id),
                lambda u, response: self._relay_http(request, u, response),
            )
        except ProxyFailure as failure:
            if failure.upstream_fault and _in_rotation(failure.upstream):
                verdict(False, failure.reason)
            detail = f"{failure.reason} (plug-in {self.plugin})"
            if failure.sent and request.method not in SAFE_METHODS:
                detail = f"{detail}; {MAYBE_APPLIED}"
            # Unsent, or the worker went away: a repeat after a probe interval finds one ready.
            retry_after = self._retry_after_s if failure.status == 503 or not failure.sent else None
            return proxy_problem(failure.status, detail, request_id, retry_after_s=retry_after)
        except ClientGone:
            return web.Response(status=499)
        except BadClientBody as exc:  # the client's fault: nothing counts against the upstream
            refusal = proxy_problem(
                400, f"the request body cannot be read: {exc}", request_id, slug="bad-request"
            )
            refusal.force_close()  # the rest of the body cannot be read: nor can a next request
            return refusal
        finally:
            if not verdict_given:
                self.breaker.release()

    async def _dispatch(
        self,
        request: web.Request,
        request_id: str,
        verdict: Callable[[bool], None],
        open_: Callable[[Upstream], Awaitable[T]],
        relay: Callable[[Upstream, T], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Pick, open (retrying unsent failures elsewhere), then relay the answer."""
        self.budget.record_request()
        tried: set[str] = set()
        last: ProxyFailure | None = None
        while True:
            upstream = self.balancer.pick(self.pool.ready(), exclude=tried)
            if upstream is None:
                if last is not None:
                    raise last
                self.breaker.trip()
                raise ProxyFailure(
                    503, "no worker of this plug-in is ready", sent=False, upstream_fault=False
                )
            tried.add(upstream.id)
            upstream.in_flight += 1
            try:
                try:
                    opened = await open_(upstream)
                except ProxyFailure as failure:
                    failure.upstream, last = upstream, failure
                    self._log_failure(upstream, failure, request, request_id)
                    if failure.upstream_fault:
                        self.prober.report_failure(upstream, failure.cause)
                    if not self._may_retry(failure, request, len(tried)):
                        raise
                    continue
                self.prober.report_success(upstream)
                verdict(True)
                return await relay(upstream, opened)
            finally:
                upstream.in_flight -= 1

    def _may_retry(self, failure: ProxyFailure, request: web.Request, attempts: int) -> bool:
        if attempts > self.max_retries:
            return False
        # RFC 9110 lets a client repeat a safe request; only without a body, which is gone.
        resendable = self.retry_idempotent_sent and request.method in SAFE_METHODS and not request.body_exists
        if failure.sent and not resendable:
            return False
        return self.budget.try_spend()

    def _log_failure(
        self, upstream: Upstream, failure: ProxyFailure, request: web.Request, request_id: str
    ) -> None:
        log.warning(
            "%s %s to %s failed: %s",
            request.method,
            request.path,
            upstream.id,
            failure.cause,
            extra={"request_id": request_id, "upstream": upstream.id, "plugin": self.plugin},
        )

    # -- HTTP ----------------------------------------------------------------------------

    async def _open_http(
        self, request: web.Request, upstream: Upstream, request_id: str
    ) -> aiohttp.ClientResponse:
        """Send the request line, headers and (streamed) body; return once headers arrive."""
        path_qs = request.rel_url.raw_path_qs
        session = self.sessions.for_upstream(upstream)
        body = ClientBody(request.content) if request.body_exists else None
        try:
            return await session.request(
                request.method,
                URL(upstream.base_url + path_qs, encoded=True),
                headers=forward_request_headers(request, path_qs, request_id, self.secret),
                data=body.chunks() if body is not None else None,
                skip_auto_headers=SKIP_AUTO_HEADERS,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if body is not None and body.error is not None:
                raise BadClientBody(body.error) from exc  # e.g. a "gzip" body that is not gzip
            if _client_gone(request):
                raise ClientGone from exc  # the upload broke on the client's side
            raise classify(exc) from exc

    async def _relay_http(
        self, request: web.Request, upstream: Upstream, upstream_response: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        """Pass the upstream's answer back: whole when small, chunk by chunk otherwise."""
        try:
            status, reason = upstream_response.status, upstream_response.reason
            length = upstream_response.content_length
            if request.method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
                out = web.StreamResponse(
                    status=status,
                    reason=reason,
                    headers=response_headers(upstream_response.headers, keep_length=True),
                )
                await out.prepare(request)
                await out.write_eof()
                return out
            if length is not None and length <= BUFFER_LIMIT:
                try:
                    body = await upstream_response.read()
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.prober.report_failure(upstream, str(exc) or type(exc).__name__)
                    raise classify(exc) from exc
                return web.Response(
                    status=status,
                    reason=reason,
                    headers=response_headers(upstream_response.headers, keep_length=False),
                    body=body,
                )
            return await self._stream(request, upstream, upstream_response)
        finally:
            upstream_response.release()

    async def _stream(
        self, request: web.Request, upstream: Upstream, upstream_response: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        out = web.StreamResponse(
            status=upstream_response.status,
            reason=upstream_response.reason,
            headers=response_headers(upstream_response.headers, keep_length=True),
        )
        try:
            await out.prepare(request)
        except ConnectionError:
            upstream_response.close()
            return out
        while True:
            try:
                chunk = await upstream_response.content.readany()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                # Headers are gone already: the only honest signal left is a cut connection,
                # so the client sees a truncated body rather than a complete-looking one.
                self.prober.report_failure(upstream, f"response body broke off: {type(exc).__name__}")
                log.warning(
                    "response from %s broke off mid-body", upstream.id, extra={"upstream": upstream.id}
                )
                if request.transport is not None:
                    request.transport.close()
                return out
            if not chunk:
                break
            try:
                await out.write(chunk)
            except ConnectionError:
                upstream_response.close()  # the client left; do not reuse a half-read connection
                return out
        with contextlib.suppress(ConnectionError):
            await out.write_eof()
        return out


def _in_rotation(upstream: Upstream | None) -> bool:
    """Whether a failure of ``upstream`` is the plug-in's, for the circuit breaker.

    One that left the rotation (ejected by this very failure, or stopped by the supervisor)
    failed on its own: a worker killed with a handful of requests in flight must not stop
    the router sending to its healthy siblings. Were none left, the empty pool trips the
    circuit anyway.
    """
    return upstream is None or upstream.state == "ready"


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()
