"""Build the shipped exercise catalog from the public-domain Free Exercise DB.

    python scripts/build_catalog.py ../shared/data/exercises.json

Writes ``plugins/workouts/data/catalog.json`` with the factual fields only (no instruction
text, no images). Bump ``CATALOG_REVISION`` when the output changes, so running servers
upgrade their stored catalog on the next start.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

CATALOG_REVISION = 1
OUT = Path(__file__).resolve().parents[1] / "plugins" / "workouts" / "data" / "catalog.json"
FIELDS = ("name", "category", "level", "force", "mechanic", "equipment")


def convert(raw: dict[str, Any]) -> dict[str, Any]:
    exercise = {"id": raw["id"], **{field: raw.get(field) for field in FIELDS}}
    exercise["primary_muscles"] = sorted(raw.get("primaryMuscles") or [])
    exercise["secondary_muscles"] = sorted(raw.get("secondaryMuscles") or [])
    return exercise


def main(source: str) -> None:
    data = Path(source).read_bytes()
    exercises = sorted((convert(raw) for raw in json.loads(data)), key=lambda e: e["id"])
    ids = [e["id"] for e in exercises]
    assert len(ids) == len(set(ids)), "exercise ids must be unique"
    digest = hashlib.sha256(json.dumps(exercises, sort_keys=True).encode()).hexdigest()[:12]
    catalog = {
        "version": f"{CATALOG_REVISION}-{digest}",
        "source": "Free Exercise DB (yuhonas/free-exercise-db), public domain (The Unlicense)",
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "exercises": exercises,
    }
    # One exercise per line: small diffs when the catalog changes.
    head = {k: v for k, v in catalog.items() if k != "exercises"}
    lines = [json.dumps(e, ensure_ascii=False) for e in exercises]
    body = json.dumps(head, ensure_ascii=False)[:-1] + ', "exercises": [\n' + ",\n".join(lines) + "\n]}\n"
    OUT.write_text(body, encoding="utf-8")
    print(f"wrote {len(exercises)} exercises, version {catalog['version']}, to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/exercises.json")
