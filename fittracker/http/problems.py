"""Every error becomes RFC 9457 ``application/problem+json``: ours, aiohttp's and crashes."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from fittracker.errors import PROBLEM_BASE, ProblemError
from fittracker.http.responses import dumps
from fittracker.log import current_request_id
from fittracker.storage.base import StorageUnavailable

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger("fittracker.http")

# aiohttp raises these itself (router, body limit); give them stable types and plain words.
_AIOHTTP_DETAIL: dict[int, tuple[str, str]] = {
    404: ("not-found", "no such resource"),
    405: ("method-not-allowed", "this method is not allowed on this resource"),
    413: ("payload-too-large", "the request body is too large"),
    400: ("bad-request", "the request is malformed"),
}


STORAGE_RETRY_AFTER_S = "10"


def storage_trouble(message: str) -> str:
    """Plain words for a storage failure, without the backend's internals (paths, hosts)."""
    lowered = message.lower()
    if "full" in lowered:
        return "the server's disk is full"
    if "readonly" in lowered or "read-only" in lowered:
        return "the server's data files are read-only"
    if "i/o" in lowered:
        return "the server's disk failed a read or a write"
    if "locked" in lowered or "busy" in lowered:
        return "the database is busy"
    return "the database cannot be reached"


def problem_response(
    status: int,
    title: str,
    detail: str,
    type_: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": current_request_id(),
        **(extra or {}),
    }
    if errors is not None:
        body["errors"] = errors
    return web.Response(status=status, body=dumps(body), headers=headers, content_type=PROBLEM_TYPE)


def from_problem(exc: ProblemError) -> web.Response:
    return problem_response(
        exc.status, exc.title, exc.detail, exc.type, errors=exc.errors, headers=exc.headers, extra=exc.extra
    )


def from_http_exception(exc: web.HTTPException) -> web.Response:
    slug, default_detail = _AIOHTTP_DETAIL.get(exc.status, ("http-error", exc.reason))
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else default_detail
    headers = {
        k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after", "www-authenticate"}
    }
    return problem_response(exc.status, exc.reason, detail, PROBLEM_BASE + slug, headers=headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ProblemError as exc:
        return from_problem(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are not problems
        return from_http_exception(exc)
    except StorageUnavailable as exc:
        # A full or read-only disk, or a database that cannot be reached: the operator must
        # act, the client can only retry. Logged without a traceback; the cause says enough.
        log.error("storage unavailable in %s %s: %s", request.method, request.path, exc)
        return problem_response(
            503,
            "Service Unavailable",
            f"{storage_trouble(str(exc))}; the request was not completed, try again later",
            PROBLEM_BASE + "storage-unavailable",
            headers={"Retry-After": STORAGE_RETRY_AFTER_S},
        )
    except Exception:
        # The traceback goes to the log with the request id; the client sees neither.
        log.exception(
            "unhandled error in %s %s",
            request.method,
            request.path,
            extra={"request_id": current_request_id()},
        )
        return problem_response(
            500,
            "Internal Server Error",
            "something went wrong on our side; quote the request_id when reporting it",
            PROBLEM_BASE + "internal",
        )
