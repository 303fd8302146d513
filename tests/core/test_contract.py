"""The plug-in contract: every hook documented and exercised; discovery like a third party."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import pytest

from fittracker import hookspecs
from fittracker.errors import ConfigError
from fittracker.plugins import PluginInfo, discover

TESTS = Path(__file__).resolve().parents[1]
HOOKS = sorted(
    name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("fittracker_")
)


def test_the_contract_has_hooks() -> None:
    assert "fittracker_setup" in HOOKS and "fittracker_plugin_info" in HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert len(doc.splitlines()) >= 3, f"{name} needs a docstring"
    assert "Called" in doc, f"{name}: say when the hook is called"
    assert ":returns:" in doc, f"{name}: say what the hook returns"
    hints = inspect.get_annotations(getattr(hookspecs, name))
    assert "return" in hints, f"{name}: annotate the return type"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_tested(name: str) -> None:
    """A hook counts as tested when a test plug-in implements it or a test calls it."""
    here = Path(__file__).resolve()
    users = [p for p in TESTS.rglob("*.py") if p != here and name in p.read_text(encoding="utf-8")]
    assert users, f"no test or test plug-in uses {name}"


def test_third_party_plugin_loads_through_entry_points(installed_test_plugins: Path) -> None:
    found = discover(environ={})
    assert "notes" in found.plugins
    notes = found.plugins["notes"]
    assert notes.distribution == "fittracker-test-plugins"
    assert notes.info.prefixes == ("/api/v1/notes",)
    assert "fittracker_setup" in notes.hooks and "fittracker_event_handlers" in notes.hooks
    assert "users" in found.plugins  # the built-in comes through the same group


def test_broken_plugin_is_logged_and_skipped(
    installed_test_plugins: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="fittracker.plugins"):
        found = discover(environ={})
    assert "broken" in found.failed and "not installed" in found.failed["broken"]
    assert "broken" not in found.plugins
    assert any("broken" in record.getMessage() for record in caplog.records)


def test_required_broken_plugin_is_fatal(installed_test_plugins: Path) -> None:
    with pytest.raises(ConfigError, match="broken"):
        discover(environ={}, required=["broken"])


def test_plugins_filter_env(installed_test_plugins: Path) -> None:
    found = discover(environ={"FITTRACKER_PLUGINS": "notes"})
    assert list(found.plugins) == ["notes"]
    assert "users" in found.skipped


class _Overlapping:
    @staticmethod
    def fittracker_plugin_info() -> PluginInfo:
        return PluginInfo(name="squatter", version="0", prefixes=("/api/v1/auth/login",))


def test_overlapping_prefixes_are_refused() -> None:
    with pytest.raises(ConfigError, match="overlaps"):
        discover(environ={}, extra=[_Overlapping()])


class _BadInfo:
    @staticmethod
    def fittracker_plugin_info() -> Any:
        return {"name": "nope"}


def test_plugin_with_bad_info_is_skipped() -> None:
    found = discover(environ={}, extra=[_BadInfo()])
    assert any("PluginInfo" in reason for reason in found.failed.values())
