"""The access log: one line per request, written without the logging machinery's overhead.

A request's line goes through ``logging`` like any other record only when something besides
FitTracker's own handler listens (a test's ``caplog``, a handler an operator added). Otherwise
it is serialised here, in the same shape the handler would give it (JSON or text), and the
lines of one event-loop iteration are written together. That path is a quarter of the cost:
``logging`` creates a record, looks up the caller's frame, runs the filters and the formatter
and flushes the stream for every line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from pythonjsonlogger.orjson import OrjsonFormatter

from fittracker.log import HANDLER_NAME, ContextFilter, redact

LOGGER = "fittracker.access"
_logger = logging.getLogger(LOGGER)


class _Clock:
    """``logging``'s ``asctime`` ("2026-11-22 08:59:37,985"), its seconds formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        stamp = time.time()
        second = int(stamp)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._prefix},{int((stamp - second) * 1000):03d}"


class AccessLog:
    """Writes access lines: straight to FitTracker's handler when it is the only listener."""

    def __init__(self) -> None:
        self._clock = _Clock()
        self._pending: list[str] = []
        self._handler: logging.StreamHandler[Any] | None = None

    def write(self, message: str, fields: dict[str, Any]) -> None:
        if not _logger.isEnabledFor(logging.INFO):
            return
        handler = self._sole_handler()
        if handler is None:
            _logger.info(message, extra=fields)  # someone else listens: give them a real record
            return
        # The path and method are the only free text the client chose (the request id is
        # validated, the rest are numbers, ids and addresses); a path could carry a token.
        fields["path"], fields["method"] = redact(fields["path"]), redact(fields["method"])
        time_s = self._clock.now()
        if isinstance(handler.formatter, OrjsonFormatter):
            line = orjson.dumps(
                {"time": time_s, "level": "INFO", "logger": LOGGER, "message": redact(message), **fields}
            ).decode()
        else:
            line = f"{time_s} INFO {LOGGER} [{fields.get('request_id')}] {redact(message)}"
        if not self._pending:
            self._handler = handler
            asyncio.get_running_loop().call_soon(self.flush)  # after this iteration's requests
        self._pending.append(line)

    def flush(self) -> None:
        lines, self._pending = self._pending, []
        handler = self._handler
        if not lines or handler is None:
            return
        handler.acquire()
        try:
            handler.stream.write("\n".join(lines) + "\n")
            handler.flush()
        except Exception:  # a closed or broken stream: report it as logging would, never fail a request
            handler.handleError(logging.makeLogRecord({"msg": "access log write failed"}))
        finally:
            handler.release()

    @staticmethod
    def _sole_handler() -> logging.StreamHandler[Any] | None:
        """FitTracker's stream handler, if every line would reach it and nothing else."""
        logger: logging.Logger | None = _logger
        found: logging.StreamHandler[Any] | None = None
        while logger is not None:
            if logger.filters:
                return None
            for handler in logger.handlers:
                if found is not None or handler.get_name() != HANDLER_NAME:
                    return None
                if not isinstance(handler, logging.StreamHandler) or handler.level > logging.INFO:
                    return None
                if not all(isinstance(f, ContextFilter) for f in handler.filters):
                    return None
                found = handler
            if not logger.propagate:
                break
            logger = logger.parent
        return found
