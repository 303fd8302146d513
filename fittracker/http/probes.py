"""The liveness probe, answered before routing.

Load balancers and orchestrators poll ``GET /health`` on every instance, often many times a
second. Its answer is the same for everyone (the process is up, and which version it runs)
and needs nothing the request pipeline offers: no token, no rate limit (it is exempt), no
sub-app routing, no handler-specific errors. So the server answers it in front of the
application, which costs a quarter of what the full pipeline does (``docs/performance.md``).

The response is the one the routed handler gives: the same body, the security headers and
an ``X-Request-ID``. Probes are counted in the request metrics under the same labels. They are
not access-logged unless ``log.access_log_probes`` is on (then they take the full pipeline,
which writes the line): a probe every second would otherwise be most of the log.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.web_request import BaseRequest

from fittracker.http.requestid import HEADER, accept_or_make
from fittracker.metrics import RequestStats

PROBE_PATH = "/health"
AppHandler = Callable[[BaseRequest], Awaitable[web.StreamResponse]]


class ProbeLane:
    """A request handler for ``web.Server``: answers ``GET /health`` itself, passes the rest on."""

    def __init__(
        self,
        app_handler: AppHandler,
        body: Callable[[], bytes],
        headers: Mapping[str, str],
        stats: RequestStats,
    ) -> None:
        self._app_handler = app_handler
        self._body = body
        self._headers = dict(headers)
        self._stats = stats

    async def __call__(self, request: BaseRequest) -> web.StreamResponse:
        if request.path != PROBE_PATH or request.method != "GET":
            return await self._app_handler(request)
        started = time.perf_counter()
        headers = dict(self._headers)
        headers[HEADER] = accept_or_make(request.headers.get(HEADER))
        response = web.Response(body=self._body(), headers=headers, content_type="application/json")
        self._stats.finished("core", "GET", PROBE_PATH, 200, time.perf_counter() - started)
        return response


def answer_probes_first(
    runner: web.AppRunner, body: Callable[[], bytes], headers: Mapping[str, str], stats: RequestStats
) -> None:
    """Put a ``ProbeLane`` in front of ``runner``'s application; call after ``setup()``, before
    any site starts (each connection takes the server's handler when it opens)."""
    server = runner.server
    if server is None:
        raise RuntimeError("answer_probes_first needs a runner that has been set up")
    server.request_handler = ProbeLane(server.request_handler, body, headers, stats)
