"""Pure arithmetic of strength training: estimated 1RM, volume and what one session achieved.

Estimated one-rep max (e1RM) uses Epley's formula::

    e1RM = w x (1 + reps / 30)    for 2 ≤ reps ≤ 12
    e1RM = w                      for reps = 1 (a single IS a one-rep max)
    none                          for reps = 0, reps > 12 or w = 0

Why Epley: it is the most widely used estimate, and it agrees with Brzycki
(``w x 36 / (37 - reps)``) to within about 2 % up to ten reps, so the choice barely matters in
the range where estimates are trustworthy. Above 12 reps every formula drifts apart (the set
tests endurance more than strength), so such sets get no estimate rather than a misleading one.
Values are rounded to 0.01 kg: 100 kg x 5 → 116.67 kg.

Volume is Σ weight_kg x reps over the sets that count. Warm-up sets never count toward
volume or records; normal, drop and failure sets do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

E1RM_MAX_REPS = 12
COUNTING = frozenset({"normal", "drop", "failure"})
RECORD_TYPES = ("heaviest_weight", "best_e1rm", "most_reps", "session_volume")
RECORD_UNITS = {"heaviest_weight": "kg", "best_e1rm": "kg", "most_reps": "reps", "session_volume": "kg"}

E1RM_DESCRIPTION = (
    "Estimated 1RM uses Epley: e1RM = weight x (1 + reps/30) for 2-12 reps, the weight itself for "
    "a single, and no estimate for 0 reps, 0 kg or more than 12 reps. Epley and Brzycki agree "
    "within ~2 % up to 10 reps; beyond 12 reps estimates are unreliable. Warm-up sets never count."
)


def e1rm(weight_kg: float, reps: int) -> float | None:
    """Epley's estimated one-rep max in kg (2 decimals), or None when no estimate is sound."""
    if reps <= 0 or weight_kg <= 0 or reps > E1RM_MAX_REPS:
        return None
    if reps == 1:
        return round(weight_kg, 2)
    return round(weight_kg * (1 + reps / 30), 2)


def counts(s: Mapping[str, Any]) -> bool:
    """Whether a set counts toward volume and records (every type but warm-up)."""
    return s.get("set_type", "normal") in COUNTING


def set_volume(s: Mapping[str, Any]) -> float:
    return float(s["weight_kg"]) * int(s["reps"]) if counts(s) else 0.0


def volume(sets: Iterable[Mapping[str, Any]]) -> float:
    """Σ weight x reps of the counting sets, in kg (4 decimals, like stored weights, so that
    volumes of sets entered in pounds convert back to whole pounds)."""
    return round(sum(set_volume(s) for s in sets), 4)


def _mark(s: Mapping[str, Any], value: float, **extra: Any) -> dict[str, Any]:
    return {"value": value, "set_id": s["id"], "achieved_at": s["logged_at"], **extra}


def set_candidates(s: Mapping[str, Any]) -> dict[str, Any]:
    """What one set may claim: heaviest weight, best e1RM, most reps at its weight.

    Returns ``{"heaviest_weight": mark | None, "best_e1rm": mark | None, "most_reps": mark | None}``
    where a mark is ``{value, set_id, achieved_at}`` (most_reps also carries ``weight_kg``).
    """
    out: dict[str, Any] = {"heaviest_weight": None, "best_e1rm": None, "most_reps": None}
    if not counts(s) or s["reps"] < 1:
        return out
    weight, reps = float(s["weight_kg"]), int(s["reps"])
    if weight > 0:
        out["heaviest_weight"] = _mark(s, weight, reps=reps)
    estimate = e1rm(weight, reps)
    if estimate is not None:
        out["best_e1rm"] = _mark(s, estimate, weight_kg=weight, reps=reps)
    out["most_reps"] = _mark(s, reps, weight_kg=weight)
    return out


def session_stats(sets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One exercise's part of one workout, summarised (sets in logged order).

    Ties keep the earlier set, the same rule record detection uses.
    """
    work = [s for s in sets if counts(s)]
    heaviest: dict[str, Any] | None = None
    best: dict[str, Any] | None = None
    best_set: dict[str, Any] | None = None
    reps_at: dict[float, dict[str, Any]] = {}
    for s in work:
        marks = set_candidates(s)
        if marks["heaviest_weight"] and (
            heaviest is None or marks["heaviest_weight"]["value"] > heaviest["value"]
        ):
            heaviest = marks["heaviest_weight"]
        if marks["best_e1rm"] and (best is None or marks["best_e1rm"]["value"] > best["value"]):
            best = marks["best_e1rm"]
        rep_mark = marks["most_reps"]
        if rep_mark is not None:
            held = reps_at.get(rep_mark["weight_kg"])
            if held is None or rep_mark["value"] > held["value"]:
                reps_at[rep_mark["weight_kg"]] = rep_mark
        # The best set: highest e1RM; without estimates, the heaviest then the most reps.
        key = (e1rm(s["weight_kg"], s["reps"]) or -1.0, s["weight_kg"], s["reps"])
        if best_set is None or key > best_set["_key"]:
            best_set = {"_key": key, "set_id": s["id"], "weight_kg": s["weight_kg"], "reps": s["reps"]}
    if best_set is not None:
        best_set["e1rm"] = e1rm(best_set["weight_kg"], best_set["reps"])
        best_set.pop("_key")
    return {
        "sets": len(sets),
        "work_sets": len(work),
        "reps": sum(int(s["reps"]) for s in work),
        "volume_kg": volume(work),
        "best_set": best_set,
        "heaviest_weight": heaviest,
        "best_e1rm": best,
        "most_reps": sorted(reps_at.values(), key=lambda m: m["weight_kg"]),
    }
