"""Per-muscle recovery from the user's recent work sets — the formula, in full.

Fatigue. Each work set (every set type but warm-up) adds ``effort`` fatigue units to each of
its exercise's primary muscles and ``0.5 x effort`` to each secondary muscle, where::

    effort = RPE / 10          (RPE 10 -> 1.0, RPE 8 -> 0.8, RPE 6 -> 0.6; missing RPE counts as 7)

Recovery. Fatigue decays exponentially with time constant ``tau`` (36 h by default)::

    F(t) = sum over sets of  units x exp(-(t - t_set) / tau)
    recovery_pct = 100 x (1 - F / capacity), clamped to 0..100     (capacity 10 units by default)

With the defaults a typical hard session — 8 sets at RPE 8 on one muscle, 6.4 units — leaves
the muscle 36 % recovered at once, 83 % after 48 h, 91 % after 72 h and 99.4 % after 7 days.
A muscle is *ready* at 90 %: ``ready_at = t_last + tau x ln(F(t_last) / (0.1 x capacity))``
(now when it already is). Sets older than 7 days are ignored (they add under 1 % of their
load). The parameters are returned with every answer.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DEFAULT_RPE = 7.0
SECONDARY_SHARE = 0.5
READY_PCT = 90.0
WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class RecoveryParams:
    time_constant_h: float = 36.0
    capacity: float = 10.0

    def describe(self) -> dict[str, Any]:
        return {
            "time_constant_h": self.time_constant_h,
            "capacity": self.capacity,
            "default_rpe": DEFAULT_RPE,
            "secondary_share": SECONDARY_SHARE,
            "ready_pct": READY_PCT,
            "window_days": WINDOW.days,
            "formula": "fatigue = sum(share x RPE/10 x exp(-hours_since/time_constant_h)); "
            "recovery_pct = 100 x (1 - fatigue/capacity)",
        }


def effort(rpe: float | None) -> float:
    return (DEFAULT_RPE if rpe is None else float(rpe)) / 10.0


def recovery_pct(fatigue: float, params: RecoveryParams) -> float:
    return round(min(100.0, max(0.0, 100.0 * (1.0 - fatigue / params.capacity))), 1)


def decayed(units: float, hours: float, params: RecoveryParams) -> float:
    return units * math.exp(-max(hours, 0.0) / params.time_constant_h)


@dataclass(slots=True)
class _Muscle:
    fatigue: float = 0.0
    sets: float = 0.0  # primary sets count 1, secondary 0.5
    last: datetime | None = None


def muscle_report(
    sets: Iterable[Mapping[str, Any]], now: datetime, params: RecoveryParams
) -> list[dict[str, Any]]:
    """One entry per muscle trained in the last 7 days, least recovered first."""
    muscles: dict[str, _Muscle] = defaultdict(_Muscle)
    for s in sets:
        if s.get("set_type") == "warmup":
            continue
        at = datetime.fromisoformat(str(s["logged_at"]))
        if at > now or now - at > WINDOW:
            continue
        units = decayed(effort(s.get("rpe")), (now - at).total_seconds() / 3600, params)
        shares = [(m, 1.0) for m in s.get("primary_muscles") or []]
        shares += [(m, SECONDARY_SHARE) for m in s.get("secondary_muscles") or []]
        for name, share in shares:
            entry = muscles[name]
            entry.fatigue += share * units
            entry.sets += share
            entry.last = at if entry.last is None or at > entry.last else entry.last
    out = [_item(name, entry, now, params) for name, entry in muscles.items()]
    return sorted(out, key=lambda item: (item["recovery_pct"], item["muscle"]))


def _item(name: str, entry: _Muscle, now: datetime, params: RecoveryParams) -> dict[str, Any]:
    assert entry.last is not None
    pct = recovery_pct(entry.fatigue, params)
    threshold = params.capacity * (1 - READY_PCT / 100)
    wait_h = (
        params.time_constant_h * math.log(entry.fatigue / threshold) if entry.fatigue > threshold else 0.0
    )
    ready_at = now + timedelta(hours=wait_h)
    ago_h = (now - entry.last).total_seconds() / 3600
    sets = f"{entry.sets:g} set{'s' if entry.sets != 1 else ''}"
    when = "ready now" if wait_h <= 0 else f"ready in about {_hours(wait_h)}"
    last = "the last just now" if ago_h < 1 else f"the last {_hours(ago_h)} ago"
    reason = f"{name}: {sets} in the last 7 days, {last} — about {pct:.0f} % recovered; {when}"
    return {
        "muscle": name,
        "recovery_pct": pct,
        "fatigue": round(entry.fatigue, 3),
        "last_trained_at": entry.last.isoformat(),
        "ready_at": ready_at.isoformat(),
        "reason": reason,
    }


def _hours(h: float) -> str:
    return f"{h:.0f} h" if h < 48 else f"{h / 24:.1f} days"
