"""Requests refused by the HTTP parser, answered as problems like every other error.

A 100 KB header, raw bytes that are not UTF-8 in the path or a Content-Length that is not a
number never reach the application: aiohttp's parser refuses them and its connection handler
answers by itself, in plain text, without the security headers, and logs the parser's error
with a traceback at ERROR level, which a hostile client could use to fill the log. Here the
handler answers an RFC 9457 problem with the security headers and a request id, and logs
one line at INFO. The detail is a fixed phrase per kind of error, never the parser's message,
which can quote the bytes that were sent (an Authorization header among them).

``answer_parse_errors_with_problems(runner)`` installs it on a runner after ``setup()``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import cast

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from fittracker.errors import PROBLEM_BASE
from fittracker.http.problems import problem_response
from fittracker.http.requestid import HEADER, accept_or_make
from fittracker.log import reset_request_id, set_request_id

log = logging.getLogger("fittracker.http")

# Most specific first: LineTooLong is a BadHttpMessage too.
_DETAIL: tuple[tuple[type[Exception], str], ...] = (
    (http_exceptions.LineTooLong, "the request line or a header is longer than the server accepts"),
    (http_exceptions.InvalidHeader, "a header is not valid HTTP (name, value or Content-Length)"),
    (http_exceptions.BadHttpMethod, "the request method is not valid HTTP"),
    (http_exceptions.InvalidURLError, "the request target is not a valid URL"),
    (http_exceptions.BadStatusLine, "the request line is not valid HTTP/1.1"),
    (http_exceptions.BadHttpMessage, "the request is not valid HTTP/1.1"),
)


def _detail(exc: BaseException | None) -> str:
    for kind, detail in _DETAIL:
        if isinstance(exc, kind):
            return detail
    return "the request is not valid HTTP/1.1"


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, with its own error answers turned into problems."""

    security: Mapping[str, str]  # set by the server that makes it

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            # Our middlewares answer every application error; what is left here is aiohttp's own
            # failure, or a response already on the wire: keep aiohttp's handling of those.
            return super().handle_error(request, status, exc, message)
        request_id = accept_or_make(None)
        token = set_request_id(request_id)
        try:
            detail = _detail(exc)
            log.info("refused by the HTTP parser: %s", detail, extra={"status": status})
            phrase = HTTPStatus(status).phrase
            # The connection is closed after this answer (its bytes cannot be trusted): say so.
            headers = {**self.security, HEADER: request_id, "Connection": "close"}
            response = problem_response(status, phrase, detail, PROBLEM_BASE + "bad-http", headers=headers)
        finally:
            reset_request_id(token)
        response.force_close()
        return response


class _ProblemServer(web.Server):
    security: Mapping[str, str]

    def __call__(self) -> RequestHandler:
        handler = ProblemRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.security = self.security
        return handler


def answer_parse_errors_with_problems(runner: web.BaseRunner, security: Mapping[str, str]) -> None:
    """Make ``runner``'s connections answer parser errors as problems with ``security`` headers.

    Call after ``setup()`` and before any site starts: each connection takes its handler class
    from the server when it opens.
    """
    server = runner.server
    if server is None:
        raise RuntimeError("answer_parse_errors_with_problems needs a runner that has been set up")
    # aiohttp builds the Server itself; only the class that makes connection handlers changes.
    server.__class__ = _ProblemServer
    cast(_ProblemServer, server).security = dict(security)
