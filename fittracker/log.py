"""Structured logging: JSON lines, the current request id on every line, secrets redacted."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

# A context variable, not module state: each request's task sees its own value.
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fittracker_request_id", default=None
)

# Field names whose values are never written to a log line.
SECRET_KEYS = frozenset(
    {
        "password",
        "new_password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
        "cookie",
    }
)
# The name of the one handler ``configure_logging`` installs on the root logger.
HANDLER_NAME = "fittracker"
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret fields replaced, for anything headed to a log."""
    if isinstance(value, dict):
        return {k: "[redacted]" if str(k).lower() in SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _BEARER.sub(r"\1[redacted]", value) if _may_hold_bearer(value) else value
    return value


def _may_hold_bearer(text: str) -> bool:
    # A cheap test first: this runs on every string of every log line (the access log included).
    return "earer" in text or "EARER" in text


# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    """Adds ``request_id`` to every record and scrubs secrets from messages and extras.

    Bearer tokens are removed from the formatted message (its arguments included); fields
    passed through ``extra`` whose names are secret (``password``, ``token``, …) are replaced,
    at any depth.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            message = None
        if message is not None and _may_hold_bearer(message):
            record.msg, record.args = _BEARER.sub(r"\1[redacted]", message), None
        fields = vars(record)
        for name in fields.keys() - _RECORD_ATTRS:  # only what came in through ``extra``
            value = fields[name]
            if name.lower() in SECRET_KEYS:
                setattr(record, name, "[redacted]")
            elif isinstance(value, dict | list | tuple | str):
                setattr(record, name, redact(value))
        return True


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Install one handler on the root logger (idempotent: replaces what it installed before)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    if fmt == "json":
        handler.setFormatter(
            OrjsonFormatter(  # orjson: the access line is written for every request
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's own access logger is replaced by ours (fittracker.access).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
