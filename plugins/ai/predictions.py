"""e1RM projection for one exercise: a robust straight line through the user's sessions.

Points are (day, e1RM) per session (Epley, the best work set; see :mod:`.progression`).

- Slope: Theil-Sen, the median of the slopes between every pair of sessions; intercept: the
  median of ``e1RM - slope x day``. One bad day (or a mis-typed set) barely moves either,
  unlike least squares.
- Band: ``sigma = 1.4826 x median(|residual|)`` (a robust standard deviation) and
  ``half_width = 2 x sigma x sqrt(1 + days_ahead / days_of_history)``: about 95 % of sessions
  around the trend, widening the further the projection reaches past the data.
- Refusal: fewer than 6 sessions or under 21 days of history is too little for a trend; the
  answer is a 422 that says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from statistics import median
from typing import Any

from fittracker_plugins.ai.progression import Session

MIN_SESSIONS = 6
MIN_DAYS = 21
MAD_TO_SIGMA = 1.4826
BAND_SIGMAS = 2.0


@dataclass(frozen=True, slots=True)
class Line:
    slope: float  # kg per day
    intercept: float
    sigma: float


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> Line:
    slopes = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    ]
    slope = median(slopes) if slopes else 0.0
    intercept = median(y - slope * x for x, y in zip(xs, ys, strict=True))
    residuals = [abs(y - (intercept + slope * x)) for x, y in zip(xs, ys, strict=True)]
    return Line(slope, intercept, MAD_TO_SIGMA * median(residuals))


def refusal(sessions: Sequence[Session]) -> str | None:
    """Why no projection is made from these sessions, or None when there is enough data."""
    if len(sessions) < MIN_SESSIONS:
        return f"only {len(sessions)} session(s) with an e1RM; a projection needs at least {MIN_SESSIONS}"
    days = (sessions[-1].at - sessions[0].at).days
    if days < MIN_DAYS:
        return f"the history spans {days} days; a projection needs at least {MIN_DAYS} days (3 weeks)"
    return None


def project(sessions: Sequence[Session], weeks: int) -> dict[str, Any]:
    """History, trend and a weekly projection ``weeks`` ahead (call :func:`refusal` first)."""
    first, last = sessions[0].at, sessions[-1].at
    xs = [(s.at - first).total_seconds() / 86400 for s in sessions]
    ys = [s.e1rm for s in sessions]
    line = theil_sen(xs, ys)
    span = xs[-1]
    points = []
    for week in range(1, weeks + 1):
        ahead = 7.0 * week
        x = span + ahead
        centre = line.intercept + line.slope * x
        half = BAND_SIGMAS * line.sigma * math.sqrt(1 + ahead / span)
        points.append(
            {
                "week": week,
                "date": (last + timedelta(days=ahead)).date().isoformat(),
                "e1rm_kg": round(centre, 2),
                "low_kg": round(centre - half, 2),
                "high_kg": round(centre + half, 2),
            }
        )
    per_week = round(line.slope * 7, 2)
    trend = "flat" if abs(per_week) < 0.25 else ("rising" if per_week > 0 else "falling")
    end = points[-1]
    reason = (
        f"{len(sessions)} sessions over {span:.0f} days: e1RM is {trend} at {per_week:+g} kg/week (median of "
        f"pairwise slopes); in {weeks} week(s) about {end['e1rm_kg']:g} kg "
        f"({end['low_kg']:g}-{end['high_kg']:g} kg) if training continues the same way"
    )
    return {
        "history": [{"date": s.at.date().isoformat(), "e1rm_kg": s.e1rm} for s in sessions],
        "slope_kg_per_week": per_week,
        "sigma_kg": round(line.sigma, 2),
        "projection": points,
        "reason": reason,
    }
