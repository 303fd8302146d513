"""The core's middlewares, outermost first: request context, problems, auth, rate limit."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_urldispatcher import AbstractResource

from fittracker.auth import AUTH_ERROR, PRINCIPAL, bearer_token
from fittracker.context import CONTEXT
from fittracker.errors import TooManyRequests, Unauthorized
from fittracker.http.accesslog import AccessLog
from fittracker.http.problems import problem_middleware
from fittracker.http.requestid import HEADER, accept_or_make
from fittracker.log import reset_request_id, set_request_id
from fittracker.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID = web.RequestKey("fittracker.request_id", str)
CLIENT_IP = web.RequestKey("fittracker.client_ip", str)
# Paths the infrastructure polls; never rate limited (nor is each plug-in's <prefix>/health).
UNLIMITED = frozenset({"/health", "/health/services", "/metrics"})


def client_ip(request: web.Request) -> str:
    """The client's IP address, from ``X-Forwarded-For`` only when the peer is a trusted proxy."""
    return request.get(CLIENT_IP) or request.remote or "unknown"


def owning_plugin(request: web.Request) -> str | None:
    """The plug-in whose sub-app matched this request, or None for core routes."""
    for app in reversed(request.match_info.apps):
        ctx = app.get(CONTEXT)
        if ctx is not None:
            return ctx.name
    return None


def is_unlimited(request: web.Request) -> bool:
    """Health probes and metrics scrapes: polled by the infrastructure, never rate limited."""
    path = request.path
    if path in UNLIMITED:
        return True
    if not path.endswith("/health"):
        return False
    for app in request.match_info.apps:
        ctx = app.get(CONTEXT)
        if ctx is not None and any(path == f"{prefix}/health" for prefix in ctx.info.prefixes):
            return True
    return False


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """What the middlewares need to know about a matched route, worked out once per route."""

    plugin: str  # the owning plug-in, or "core"
    label: str  # the metrics label: the route template, or "unmatched"


class RouteInfos:
    """``RouteInfo`` per resource, cached: routes are fixed once the app runs."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[AbstractResource, RouteInfo]] = {}

    def of(self, request: web.Request) -> RouteInfo:
        route = request.match_info.route
        resource = route.resource if route is not None else None
        if resource is None:  # unmatched paths: their sub-app still names the plug-in
            return RouteInfo(owning_plugin(request) or "core", "unmatched")
        hit = self._known.get(id(resource))
        if hit is not None and hit[0] is resource:
            return hit[1]
        info = RouteInfo(owning_plugin(request) or "core", resource.canonical)
        self._known[id(resource)] = (resource, info)
        return info


def make_middlewares(runtime: Runtime) -> list[Middleware]:
    stats = runtime.metrics.http
    access = AccessLog() if runtime.settings.section("log")["access_log"] else None
    routes = RouteInfos()

    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = accept_or_make(request.headers.get(HEADER))
        request[REQUEST_ID] = request_id
        request[CLIENT_IP] = runtime.client_address.of(request)
        token = set_request_id(request_id)
        started = time.perf_counter()
        stats.in_flight += 1
        status = 500
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers[HEADER] = request_id
            return response
        except web.HTTPException as exc:
            # Only non-errors get past the problem middleware (redirects, 304): aiohttp turns
            # them into the response, so log and count their real status, and tag them too.
            status = exc.status
            exc.headers[HEADER] = request_id
            raise
        finally:
            stats.in_flight -= 1
            elapsed = time.perf_counter() - started
            info = routes.of(request)
            stats.finished(info.plugin, request.method, info.label, status, elapsed)
            if access is not None:
                principal = request.get(PRINCIPAL)
                access.write(
                    f"{request.method} {request.path} {status}",
                    {
                        "method": request.method,
                        "path": request.path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "plugin": info.plugin,
                        "user_id": principal.user_id if principal else None,
                        "request_id": request_id,
                        "remote": request[CLIENT_IP],
                    },
                )
            reset_request_id(token)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = bearer_token(request)
        if token is not None:
            try:
                request[PRINCIPAL] = runtime.auth.verify(token)
            except Unauthorized as exc:
                request[AUTH_ERROR] = exc  # raised only where a handler asks for the user
        return await handler(request)

    middlewares: list[Middleware] = [request_context, problem_middleware, authenticate]

    limiter = runtime.limiter
    if limiter is not None:

        @web.middleware
        async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.method == "OPTIONS" or is_unlimited(request):
                return await handler(request)
            principal = request.get(PRINCIPAL)
            client = f"u:{principal.user_id}" if principal else f"ip:{request[CLIENT_IP]}"
            plugin = routes.of(request).plugin
            verdict, scope = await limiter.check(client, None if plugin == "core" else plugin)
            if not verdict.allowed:
                runtime.metrics.rate_limited.labels(scope=scope).inc()
                raise TooManyRequests(
                    f"rate limit of {verdict.limit} requests per {limiter.window_s} s reached ({scope})",
                    headers=verdict.headers(),
                )
            response = await handler(request)
            if not response.prepared:
                response.headers.update(verdict.headers())
            return response

        middlewares.append(rate_limit)
    return middlewares
