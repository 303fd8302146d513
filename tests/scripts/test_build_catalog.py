"""The shipped catalog is exactly what scripts/build_catalog.py makes from the source data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT.parent / "shared" / "data" / "exercises.json"
SHIPPED = ROOT / "plugins" / "workouts" / "data" / "catalog.json"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_catalog", ROOT / "scripts" / "build_catalog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_catalog_has_factual_fields_only() -> None:
    catalog = json.loads(SHIPPED.read_text(encoding="utf-8"))
    exercises = catalog["exercises"]
    assert len(exercises) == 873
    assert len({e["id"] for e in exercises}) == 873
    allowed = {"id", "name", "category", "level", "force", "mechanic", "equipment"}
    allowed |= {"primary_muscles", "secondary_muscles"}
    for exercise in exercises:
        assert set(exercise) == allowed, exercise["id"]
    assert "instructions" not in SHIPPED.read_text(encoding="utf-8")


@pytest.mark.skipif(not SOURCE.exists(), reason="the source data set is not beside the repository")
def test_shipped_catalog_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script()
    out = tmp_path / "catalog.json"
    monkeypatch.setattr(script, "OUT", out)
    script.main(str(SOURCE))
    assert out.read_text(encoding="utf-8") == SHIPPED.read_text(encoding="utf-8")
