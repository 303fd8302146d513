"""Stored workout data as the API shows it, in kg always and in pounds when asked.

Weights are stored in kg. When the display unit is ``lb`` a set gains ``weight`` and ``units``,
and other kg quantities gain an ``_lb`` sibling (``volume_lb``, ``value_lb``); kg values are
always present so clients never have to convert back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fittracker_plugins.workouts.strength import session_stats, volume
from fittracker_plugins.workouts.units import Units, from_kg

from fittracker.storage import Document

SET_FIELDS = (
    "id",
    "exercise_id",
    "reps",
    "weight_kg",
    "rpe",
    "duration_s",
    "distance_m",
    "set_type",
    "logged_at",
    "updated_at",
)


def set_view(item: Mapping[str, Any], units: Units) -> Document:
    out = {key: item.get(key) for key in SET_FIELDS}
    if units == "lb":
        out["weight"] = from_kg(item["weight_kg"], "lb")
        out["units"] = "lb"
    return out


def record_view(mark: Mapping[str, Any], units: Units) -> Document:
    out = dict(mark)
    if units == "lb" and mark["unit"] == "kg":
        out["value_lb"] = from_kg(mark["value"], "lb")
    return out


def _with_volume(out: Document, volume_kg: float, units: Units) -> Document:
    if units == "lb":
        out["volume_lb"] = from_kg(volume_kg, "lb")
        out["units"] = "lb"
    return out


def item_view(doc: Mapping[str, Any], units: Units) -> Document:
    """A workout without its sets (lists)."""
    out: Document = {
        "id": doc["_id"],
        **{
            key: doc.get(key)
            for key in (
                "user_id",
                "name",
                "notes",
                "status",
                "started_at",
                "finished_at",
                "routine_id",
                "day_index",
                "created_at",
                "updated_at",
            )
        },
        "set_count": len(doc["sets"]),
        "volume_kg": volume(doc["sets"]),
    }
    return _with_volume(out, out["volume_kg"], units)


def workout_view(doc: Mapping[str, Any], units: Units) -> Document:
    out = item_view(doc, units)
    out["plan"] = doc.get("plan")
    out["sets"] = [set_view(s, units) for s in doc["sets"]]
    summary = doc.get("summary")
    out["summary"] = summary_view(summary, units) if summary else None
    return out


def summary_view(summary: Mapping[str, Any], units: Units) -> Document:
    out = dict(summary)
    out["records"] = [record_view(r, units) for r in summary["records"]]
    return _with_volume(out, summary["volume_kg"], units)


def best_of(achievements: list[Mapping[str, Any]]) -> list[Document]:
    """One entry per record a workout moved: its final value, with the value held before the workout."""
    merged: dict[tuple[Any, ...], Document] = {}
    for mark in achievements:
        key = (mark["exercise_id"], mark["record_type"], mark.get("weight_kg"))
        first = merged.get(key)
        merged[key] = {**mark, "previous": first["previous"] if first else mark["previous"]}
    return list(merged.values())


def build_summary(doc: Mapping[str, Any], names: Mapping[str, str]) -> Document:
    """The finish summary of a workout document, in kg."""
    by_exercise: dict[str, list[Mapping[str, Any]]] = {}
    for item in doc["sets"]:
        by_exercise.setdefault(item["exercise_id"], []).append(item)
    exercises = []
    for exercise_id, sets in by_exercise.items():
        stats = session_stats(sets)
        exercises.append(
            {
                "exercise_id": exercise_id,
                "exercise_name": names.get(exercise_id, exercise_id),
                "sets": stats["sets"],
                "work_sets": stats["work_sets"],
                "reps": stats["reps"],
                "volume_kg": stats["volume_kg"],
                "best_set": stats["best_set"],
            }
        )
    started = datetime.fromisoformat(doc["started_at"])
    finished_at = doc.get("finished_at")
    duration = (datetime.fromisoformat(finished_at) - started).total_seconds() if finished_at else 0.0
    return {
        "workout_id": doc["_id"],
        "status": doc["status"],
        "started_at": doc["started_at"],
        "finished_at": finished_at,
        "duration_s": max(0, int(duration)),
        "sets": len(doc["sets"]),
        "work_sets": sum(e["work_sets"] for e in exercises),
        "volume_kg": volume(doc["sets"]),
        "exercises": exercises,
        "records": best_of(doc.get("achievements") or []),
    }
