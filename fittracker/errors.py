"""Errors that become RFC 9457 ``application/problem+json`` responses.

Handlers raise these; the problem middleware (``fittracker.http.problems``) turns them into
responses with ``type, title, status, detail, request_id`` and, for validation, ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_BASE = "https://fittracker.dev/problems/"


class ProblemError(Exception):
    """An error the client should see, with an HTTP status and a stable problem type."""

    status = 500
    title = "Internal Server Error"
    slug = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = [dict(e) for e in errors] if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class BadRequest(ProblemError):
    status, title, slug = 400, "Bad Request", "bad-request"


class ValidationFailed(ProblemError):
    status, title, slug = 422, "Validation Failed", "validation"


class Unauthorized(ProblemError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="fittracker"'})
        super().__init__(detail, **kwargs)


class Forbidden(ProblemError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(ProblemError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(ProblemError):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(ProblemError):
    status, title, slug = 413, "Payload Too Large", "payload-too-large"


class UnsupportedMediaType(ProblemError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class TooManyRequests(ProblemError):
    status, title, slug = 429, "Too Many Requests", "rate-limited"


class ServiceUnavailable(ProblemError):
    status, title, slug = 503, "Service Unavailable", "unavailable"


class ConfigError(Exception):
    """Invalid configuration: the message names the key and what is valid."""
