"""The access log's direct path: the same lines the logging handler would write, batched."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fittracker.log import configure_logging
from tests.conftest import MakeClient
from tests.helpers import auth

NOTES = "/api/v1/notes"


@pytest.fixture(autouse=True)
def _notes_installed(installed_test_plugins: Path) -> None:
    """The small fixture plug-in: fast to start, has routes to hit."""


@contextmanager
def sole_handler(fmt: str) -> Iterator[io.StringIO]:
    """FitTracker's own handler alone on the root logger, as in production; restored after."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    for handler in handlers:
        root.removeHandler(handler)
    stream = io.StringIO()
    configure_logging("INFO", fmt, stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


async def test_json_lines_written_directly(make_client: MakeClient) -> None:
    with sole_handler("json") as stream:
        client = await make_client(plugins=["notes"])
        for n in range(3):
            resp = await client.get(f"{NOTES}/stats", headers={"X-Request-ID": f"direct-line-{n:04d}"})
            assert resp.status == 200
        await client.get("/health", headers=auth("not.a.valid-token"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if '"fittracker.access"' in line]
    assert [line["request_id"] for line in lines[:3]] == [f"direct-line-{n:04d}" for n in range(3)]
    first = lines[0]
    assert first["level"] == "INFO" and first["message"] == f"GET {NOTES}/stats 200"
    assert first["plugin"] == "notes" and first["status"] == 200 and first["path"] == f"{NOTES}/stats"
    assert isinstance(first["duration_ms"], float) and "time" in first and first["remote"]
    assert "not.a.valid-token" not in stream.getvalue()


async def test_text_lines_written_directly(make_client: MakeClient) -> None:
    with sole_handler("text") as stream:
        client = await make_client(plugins=["notes"])
        await client.get("/health", headers={"X-Request-ID": "text-line-0001"})
    line = next(line for line in stream.getvalue().splitlines() if "fittracker.access" in line)
    assert line.endswith(" INFO fittracker.access [text-line-0001] GET /health 200"), line
