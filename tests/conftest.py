"""Shared fixtures: a full application on a fresh data dir, as a test client.

Every response a test receives through these clients is checked against the OpenAPI
document the application publishes; a mismatch fails the test at teardown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fittracker.app import build_app
from fittracker.config import build_schema, load_settings
from fittracker.plugins import discover
from fittracker.runtime import RUNTIME
from fittracker.system import OPENAPI
from tests.spec import spec_checking_middleware

# The redis_server / private_redis fixtures for the Redis backend tests.
pytest_plugins = ["tests.redis_server", "tests.deployments"]

TEST_PLUGINS_DIR = Path(__file__).parent / "plugins"

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


def _merge(
    base: dict[str, dict[str, Any]], extra: dict[str, dict[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    merged = {section: dict(values) for section, values in base.items()}
    for section, values in (extra or {}).items():
        merged.setdefault(section, {}).update(values)
    return merged


def make_test_app(
    data_dir: Path,
    plugins: Iterable[str] | None = None,
    config: dict[str, dict[str, Any]] | None = None,
    extra: Iterable[Any] = (),
    violations: list[str] | None = None,
) -> web.Application:
    environ = {"FITTRACKER_PLUGINS": ",".join(plugins)} if plugins is not None else {}
    found = discover(extra=extra, environ=environ)
    base: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(data_dir)},
        "ratelimit": {"enabled": False},
        "log": {"format": "text"},
    }
    settings = load_settings(
        build_schema(found.config_defaults()), environ={}, overrides=_merge(base, config)
    )
    app = build_app(settings, found)
    if violations is not None:
        app.middlewares.append(spec_checking_middleware(lambda: app[OPENAPI], violations))
    return app


@pytest.fixture
def spec_violations() -> Iterable[list[str]]:
    found: list[str] = []
    yield found
    assert not found, "responses that do not match the OpenAPI spec:\n" + "\n".join(found)


@pytest.fixture
async def make_client(aiohttp_client: Any, tmp_path: Path, spec_violations: list[str]) -> MakeClient:
    """``await make_client(plugins=["users"], config={"section": {"key": value}})``."""
    count = 0

    async def factory(
        plugins: Iterable[str] | None = None,
        config: dict[str, dict[str, Any]] | None = None,
        extra: Iterable[Any] = (),
        data_dir: Path | None = None,
    ) -> TestClient[Any, Any]:
        nonlocal count
        count += 1
        app = make_test_app(data_dir or tmp_path / f"data{count}", plugins, config, extra, spec_violations)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        app[RUNTIME].services.base_url = str(client.make_url("")).rstrip("/")
        return client

    return factory


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    """The whole application, every installed plug-in, fresh data."""
    return await make_client()


@pytest.fixture
def installed_test_plugins(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install tests/plugins as a third-party distribution: a dist-info with entry points.

    ``notes`` loads like any plug-in; ``broken`` fails to import and must be skipped.
    Returns the site directory (also usable as PYTHONPATH for subprocesses).
    """
    site = tmp_path_factory.mktemp("site")
    dist = site / "fittracker_test_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fittracker-test-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[fittracker]\nnotes = notes_plugin\nbroken = broken_plugin\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(TEST_PLUGINS_DIR))
    return site
