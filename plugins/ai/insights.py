"""Training insights: plateaus, load spikes, imbalances, consistency and best training times.

Input: the user's work sets (never warm-ups or 0-rep sets) of the last 12 weeks. Each insight
has a severity (info < low < medium < high), a ``reason`` with the numbers and its figures in
``data``. All deterministic; the constants are below and returned by :func:`describe`.

**plateau** (per exercise). Points are (day, best-set Epley e1RM) per session of the last 6
weeks (:mod:`.progression`); needs 4+ sessions spanning 28+ days. Slope: Theil-Sen (median
pairwise slope, :mod:`.predictions`; one odd day fakes no trend) in % of the median e1RM per
week. Under +0.5 %/week (a 100 kg lift gaining < 0.5 kg a week) is a plateau ("falling" below
-0.5 %/week), unless the best e1RM of the history (the first session to reach it) is under 2
weeks old: a fresh best is progress whatever the trend (Theil-Sen reads a recent jump as
outliers). Severity by the age of that best: under 4 weeks low, 4-8 medium, 8+ high.

**load_spike** -- a flag, not a diagnosis. Daily load (in the user's time zone) is::

    load = sum over work sets of reps x (weight_kg, or 1 for bodyweight sets) x RPE/10

(missing RPE counts as 7, as in :mod:`.recovery`; the nominal 1 kg keeps bodyweight-only
training measurable, the ratio being scale-free). Each day's input is the mean load of the
trailing 7 days (days before the first count 0): gym routines are weekly, and on raw daily
loads the acute average swings with the weekday (ratio 0.77-1.18 for a steady Mon/Wed/Fri
lifter, 0.45-1.65 once a week), flagging steady training. Exponentially weighted averages
(Williams et al. 2017, Br J Sports Med 51:209), 0 before the first training day, each day up
to today: ``E = E + lambda x (input - E)``, ``lambda = 2 / (N + 1)``, N = 7 (acute) and 28
(chronic); ``ratio = acute / chronic``. Under 28 days of history the chronic average has not
settled (it starts at 0): an info insight says so. Ratio > 1.5 medium, > 2.0 high, < 0.8 low
("detraining" unless planned), else info.

**imbalance** (last 4 weeks). Upper-body push vs pull: 1 per set whose force is push or pull
and with an upper-body primary muscle (the catalog calls squats "push" and deadlifts "pull";
push:pull balance is about the shoulders). Quadriceps vs hamstrings: primary 1, secondary 0.5
per set. A pair needs 6+ sets; larger:smaller beyond 1.5:1 is low, beyond 2:1 (or nothing on
one side) medium; balanced pairs are not reported.

**consistency**. Sessions (workouts, at their first work set) per rolling week, week 0 being
the 7 days up to now. Over 8 weeks: mean, coefficient of variation (population SD / mean) and
the streak of weeks with a session (within the 12 weeks). The last 2 weeks' mean vs the 6
before: when those averaged 1+ a week, <= 50 % is medium, < 75 % low, else info. With nothing
in 8 weeks it is the only insight (info): empty input gives one insight, "too little data".

**best_times** (12 weeks, 6+ sessions, info). Session starts in the user's time zone: the
weekdays and 3-hour bands (00-03 ... 21-24) with most sessions (ties all named). Performance:
each exercise with 4+ e1RM sessions gets a Theil-Sen trend, each session the mean % its e1RMs
lie off those trends (so progress over time favours no habit); the band with the highest mean
among 2+ bands with 2+ such sessions is the strongest.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from statistics import fmean, median, pstdev
from typing import Any

from fittracker_plugins.ai.predictions import theil_sen
from fittracker_plugins.ai.progression import Session, sessions_of
from fittracker_plugins.ai.recovery import DEFAULT_RPE, effort

Rows = Sequence[Mapping[str, Any]]  # work-set documents, oldest first
HISTORY = timedelta(weeks=12)  # how far back the route reads
SEVERITIES = ("high", "medium", "low", "info")
PLATEAU_WINDOW = timedelta(weeks=6)
PLATEAU_MIN_SESSIONS = 4
PLATEAU_MIN_DAYS = 28
FLAT_PCT_PER_WEEK = 0.5
PLATEAU_FRESH_WEEKS = 2
PLATEAU_MEDIUM_WEEKS = 4
PLATEAU_HIGH_WEEKS = 8
SMOOTH_DAYS = 7
ACUTE_DAYS = 7
CHRONIC_DAYS = 28
LOAD_MIN_DAYS = 28
BODYWEIGHT_NOMINAL_KG = 1.0
SPIKE_RATIO = 1.5
HIGH_SPIKE_RATIO = 2.0
DETRAINING_RATIO = 0.8
IMBALANCE_WINDOW = timedelta(weeks=4)
IMBALANCE_MIN_SETS = 6.0
IMBALANCE_LOW = 1.5
IMBALANCE_MEDIUM = 2.0
SECONDARY_SHARE = 0.5
UPPER_BODY = frozenset(
    {"chest", "shoulders", "triceps", "lats", "middle back", "biceps", "forearms", "traps", "neck"}
)
CONSISTENCY_WEEKS = 8
RECENT_WEEKS = 2
HABIT_PER_WEEK = 1.0
DROP_MEDIUM = 0.5
DROP_LOW = 0.75
BEST_TIMES_MIN_SESSIONS = 6
BAND_HOURS = 3
TREND_MIN_SESSIONS = 4
BAND_MIN_SESSIONS = 2
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def insights(
    sets: Sequence[Mapping[str, Any]], now: datetime, zone: tzinfo, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every insight for these sets (oldest first), most severe first, then by kind."""
    work = [s for s in sets if _is_work(s) and _at(s) <= now]
    found = [*plateaus(work, now, names), *load_spike(work, now, zone), *imbalances(work, now)]
    found += [consistency(work, now), *best_times(work, now, zone)]
    return sorted(found, key=lambda i: (SEVERITIES.index(i["severity"]), i["kind"], i["title"]))


def plateaus(work: Rows, now: datetime, names: Mapping[str, str]) -> list[dict[str, Any]]:
    by_exercise: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for s in work:
        by_exercise[str(s["exercise_id"])].append(s)
    out = []
    for exercise_id, rows in sorted(by_exercise.items()):
        sessions = [x for x in sessions_of(rows) if x.e1rm > 0]  # > 12 reps gives no e1RM
        recent = [x for x in sessions if x.at >= now - PLATEAU_WINDOW]
        if len(recent) < PLATEAU_MIN_SESSIONS or (recent[-1].at - recent[0].at).days < PLATEAU_MIN_DAYS:
            continue
        per_week = theil_sen(_days(recent), [x.e1rm for x in recent]).slope * 7
        typical = median(x.e1rm for x in recent)
        pct = 100 * per_week / typical
        best = max(sessions, key=lambda x: x.e1rm)  # the first session to reach the best
        weeks = (now - best.at).days / 7
        if pct >= FLAT_PCT_PER_WEEK or weeks < PLATEAU_FRESH_WEEKS:
            continue
        grade = "low" if weeks < PLATEAU_MEDIUM_WEEKS else "medium"
        severity = "high" if weeks >= PLATEAU_HIGH_WEEKS else grade
        name = names.get(exercise_id) or exercise_id
        trend = "falling" if pct <= -FLAT_PCT_PER_WEEK else "flat"
        span = (recent[-1].at - recent[0].at).days / 7
        reason = (
            f"{name}: over {len(recent)} sessions in {span:.0f} weeks your e1RM trend is {trend} at "
            f"{per_week:+.2f} kg/week ({pct:+.2f} % of the median {typical:g} kg; under "
            f"+{FLAT_PCT_PER_WEEK:g} % is a plateau), and your best, {best.e1rm:g} kg on "
            f"{best.at.date()}, is {weeks:.1f} weeks old. A deload week or a new rep range often restarts it."
        )
        data = {
            "exercise_id": exercise_id,
            "exercise_name": name,
            "sessions": len(recent),
            "slope_kg_per_week": round(per_week, 2),
            "slope_pct_per_week": round(pct, 2),
            "median_e1rm_kg": round(typical, 2),
            "best_e1rm_kg": best.e1rm,
            "best_date": best.at.date().isoformat(),
            "weeks_since_best": round(weeks, 1),
        }
        title = f"{name}: e1RM {'falling' if trend == 'falling' else 'plateau'}"
        out.append(_insight("plateau", severity, title, reason, data))
    return out


def set_load(s: Mapping[str, Any]) -> float:
    weight = float(s.get("weight_kg") or 0.0)
    return int(s["reps"]) * (weight if weight > 0 else BODYWEIGHT_NOMINAL_KG) * effort(s.get("rpe"))


def load_spike(work: Rows, now: datetime, zone: tzinfo) -> list[dict[str, Any]]:
    if not work:
        return []
    daily: dict[date, float] = defaultdict(float)
    for s in work:
        daily[_at(s).astimezone(zone).date()] += set_load(s)
    first, today = min(daily), now.astimezone(zone).date()
    days = (today - first).days
    if days < LOAD_MIN_DAYS:
        reason = (
            f"Your training history spans {days} day(s); the acute:chronic workload ratio needs "
            f"{LOAD_MIN_DAYS} days before the 28-day average means anything, so no load flag yet."
        )
        return [_insight("load_spike", "info", "Load: not enough history yet", reason, {"days": days})]
    loads = [daily.get(first + timedelta(days=k), 0.0) for k in range(days + 1)]
    acute = chronic = 0.0
    for k in range(days + 1):
        week_mean = sum(loads[max(0, k - SMOOTH_DAYS + 1) : k + 1]) / SMOOTH_DAYS
        acute += 2 / (ACUTE_DAYS + 1) * (week_mean - acute)
        chronic += 2 / (CHRONIC_DAYS + 1) * (week_mean - chronic)
    ratio = acute / chronic if chronic > 0 else 0.0
    data = {"acute": round(acute, 1), "chronic": round(chronic, 1), "ratio": round(ratio, 2), "days": days}
    figures = f"acute (7-day EWMA) load {acute:.0f} vs chronic (28-day EWMA) {chronic:.0f}: ratio {ratio:.2f}"
    if ratio > SPIKE_RATIO:
        severity = "high" if ratio > HIGH_SPIKE_RATIO else "medium"
        title = "Load spike flag (not a diagnosis)"
        reason = (
            f"Your {figures}, above {SPIKE_RATIO:g}: your load jumped well past what you are used to. "
            "This is a flag, not a diagnosis; consider raising load more gradually and watch recovery."
        )
    elif ratio < DETRAINING_RATIO:
        severity, title = "low", "Load well below your norm"
        reason = (
            f"Your {figures}, below {DETRAINING_RATIO:g}: fine for a planned deload or taper, "
            "but kept up it means detraining. This is a flag, not a diagnosis."
        )
    else:
        severity, title = "info", "Load in your usual range"
        reason = f"Your {figures}, within {DETRAINING_RATIO:g}-{SPIKE_RATIO:g}: no sudden change in load."
    return [_insight("load_spike", severity, title, reason, data)]


def imbalances(work: Rows, now: datetime) -> list[dict[str, Any]]:
    sides: dict[str, float] = defaultdict(float)
    for s in work:
        if _at(s) < now - IMBALANCE_WINDOW:
            continue
        primary, secondary = set(s.get("primary_muscles") or []), set(s.get("secondary_muscles") or [])
        if s.get("force") in ("push", "pull") and primary & UPPER_BODY:
            sides[str(s["force"])] += 1
        for muscle in ("quadriceps", "hamstrings"):
            sides[muscle] += 1.0 if muscle in primary else SECONDARY_SHARE if muscle in secondary else 0.0
    pairs = (
        ("push_pull", "upper-body push", "push", "pull", "pulling (rows, pull-ups, face pulls)"),
        ("push_pull", "upper-body pull", "pull", "push", "pushing (presses, push-ups, dips)"),
        ("quads_hamstrings", "quadriceps", "quadriceps", "hamstrings", "hamstring work (leg curls, RDLs)"),
        ("quads_hamstrings", "hamstrings", "hamstrings", "quadriceps", "quadriceps work (squats, lunges)"),
    )
    out = []
    for pair, label, more, less, add in pairs:
        big, small = sides[more], sides[less]
        if big <= small or big + small < IMBALANCE_MIN_SETS:
            continue
        ratio = big / small if small else None
        if ratio is not None and ratio <= IMBALANCE_LOW:
            continue
        severity = "medium" if ratio is None or ratio > IMBALANCE_MEDIUM else "low"
        shown = f"{ratio:.1f}:1" if ratio is not None else f"nothing for {less}"
        reason = (
            f"In the last {IMBALANCE_WINDOW.days // 7} weeks: {big:g} {label} sets vs {small:g} {less} "
            f"sets ({shown}; beyond {IMBALANCE_LOW:g}:1 is an imbalance). Add {add} to even it out."
        )
        rounded = None if ratio is None else round(ratio, 2)
        data = {"pair": pair, "sets": {more: big, less: small}, "ratio": rounded, "more": more, "add": less}
        out.append(_insight("imbalance", severity, f"Imbalance: more {more} than {less}", reason, data))
    return out


def consistency(work: Rows, now: datetime) -> dict[str, Any]:
    weeks = [0] * (HISTORY.days // 7)
    for session in sessions_of(work):
        index = int((now - session.at).total_seconds() // (7 * 86400))
        if 0 <= index < len(weeks):
            weeks[index] += 1
    last8 = weeks[:CONSISTENCY_WEEKS]
    streak = next((k for k, n in enumerate(weeks) if n == 0), len(weeks))
    mean_8 = fmean(last8)
    cv = pstdev(last8) / mean_8 if mean_8 else None
    recent, before = fmean(last8[:RECENT_WEEKS]), fmean(last8[RECENT_WEEKS:])
    data = {
        "sessions_per_week": last8[::-1],  # oldest week first
        "mean_per_week": round(mean_8, 2),
        "cv": None if cv is None else round(cv, 2),
        "streak_weeks": streak,
        "recent_per_week": round(recent, 2),
        "before_per_week": round(before, 2),
    }
    if not mean_8:
        reason = f"No sessions in the last {CONSISTENCY_WEEKS} weeks: too little data for insights yet."
        return _insight("consistency", "info", "No recent training", reason, data)
    figures = f"{recent:.1f} sessions/week in the last {RECENT_WEEKS} weeks vs {before:.1f} in the 6 before"
    run = f"trained {streak} week(s) in a row" if streak else "no session in the last 7 days"
    tail = f"{mean_8:.1f}/week over {CONSISTENCY_WEEKS} weeks (CV {cv:.2f}); {run}."
    if before >= HABIT_PER_WEEK and recent <= DROP_MEDIUM * before:
        severity, title = "medium", "Training frequency dropped sharply"
    elif before >= HABIT_PER_WEEK and recent < DROP_LOW * before:
        severity, title = "low", "Training frequency dropped"
    else:
        severity, title = "info", "Training frequency"
    return _insight("consistency", severity, title, f"{figures}; {tail}", data)


def best_times(work: Rows, now: datetime, zone: tzinfo) -> list[dict[str, Any]]:
    recent = [s for s in work if _at(s) >= now - HISTORY]
    sessions = sessions_of(recent)
    if len(sessions) < BEST_TIMES_MIN_SESSIONS:
        return []
    local = {x.workout_id: x.at.astimezone(zone) for x in sessions}
    by_day = Counter(WEEKDAYS[at.weekday()] for at in local.values())
    by_band = Counter(_band(at.hour) for at in local.values())
    best_days = [d for d in WEEKDAYS if by_day[d] == max(by_day.values())]
    best_bands = sorted(b for b, n in by_band.items() if n == max(by_band.values()))
    scores: dict[str, list[float]] = defaultdict(list)
    for workout_id, score in _vs_trend(recent).items():
        scores[_band(local[workout_id].hour)].append(score)
    banded = {b: round(fmean(v), 2) for b, v in sorted(scores.items()) if len(v) >= BAND_MIN_SESSIONS}
    strongest = max(banded, key=lambda b: banded[b]) if len(banded) >= 2 else None
    reason = (
        f"Of your {len(sessions)} sessions in the last {HISTORY.days // 7} weeks, most fell on "
        f"{_most(best_days, max(by_day.values()))} and in {_most(best_bands, max(by_band.values()))}."
    )
    if strongest is not None:
        reason += f" Your lifts were strongest in {strongest}: e1RM {banded[strongest]:+.1f} % vs your trend."
    data = {
        "sessions": len(sessions),
        "by_weekday": {d: by_day[d] for d in WEEKDAYS if by_day[d]},
        "by_band": dict(sorted(by_band.items())),
        "best_weekdays": best_days,
        "best_bands": best_bands,
        "e1rm_vs_trend_pct": banded,
        "strongest_band": strongest,
    }
    title = f"You train most on {', '.join(best_days)}, {', '.join(best_bands)}"
    return [_insight("best_times", "info", title, reason, data)]


def describe() -> dict[str, Any]:
    """The parameters of every insight (returned as the response's ``model``)."""
    return {
        "history_weeks": HISTORY.days // 7,
        "plateau": {
            "method": "Theil-Sen slope of per-session Epley e1RM, % of median e1RM per week",
            "window_weeks": PLATEAU_WINDOW.days // 7,
            "min_sessions": PLATEAU_MIN_SESSIONS,
            "min_days": PLATEAU_MIN_DAYS,
            "flat_pct_per_week": FLAT_PCT_PER_WEEK,
            "fresh_best_weeks": PLATEAU_FRESH_WEEKS,
            "medium_weeks_since_best": PLATEAU_MEDIUM_WEEKS,
            "high_weeks_since_best": PLATEAU_HIGH_WEEKS,
        },
        "load_spike": {
            "load": "sum of reps x (weight_kg or 1 for bodyweight) x RPE/10 per local day",
            "ewma": "E += lambda x (mean load of the last smooth_days days - E), lambda = 2/(N+1), from 0",
            "smooth_days": SMOOTH_DAYS,
            "acute_days": ACUTE_DAYS,
            "chronic_days": CHRONIC_DAYS,
            "min_days": LOAD_MIN_DAYS,
            "default_rpe": DEFAULT_RPE,
            "bodyweight_nominal_kg": BODYWEIGHT_NOMINAL_KG,
            "flag_ratio": SPIKE_RATIO,
            "high_ratio": HIGH_SPIKE_RATIO,
            "detraining_ratio": DETRAINING_RATIO,
        },
        "imbalance": {
            "window_weeks": IMBALANCE_WINDOW.days // 7,
            "push_pull": "upper-body work sets by force, 1 each",
            "quads_hamstrings": f"primary 1, secondary {SECONDARY_SHARE:g} per set",
            "min_sets": IMBALANCE_MIN_SETS,
            "low_ratio": IMBALANCE_LOW,
            "medium_ratio": IMBALANCE_MEDIUM,
        },
        "consistency": {
            "weeks": CONSISTENCY_WEEKS,
            "recent_weeks": RECENT_WEEKS,
            "habit_per_week": HABIT_PER_WEEK,
            "drop_low": DROP_LOW,
            "drop_medium": DROP_MEDIUM,
        },
        "best_times": {
            "min_sessions": BEST_TIMES_MIN_SESSIONS,
            "band_hours": BAND_HOURS,
            "trend_min_sessions": TREND_MIN_SESSIONS,
            "band_min_sessions": BAND_MIN_SESSIONS,
            "performance": "mean % of session e1RM above each exercise's Theil-Sen trend",
        },
    }


def _vs_trend(sets: Rows) -> dict[str, float]:
    """Per workout: the mean % its exercises' e1RMs lie above their own Theil-Sen trend."""
    by_exercise: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for s in sets:
        by_exercise[str(s["exercise_id"])].append(s)
    residuals: dict[str, list[float]] = defaultdict(list)
    for rows in by_exercise.values():
        sessions = [x for x in sessions_of(rows) if x.e1rm > 0]
        if len(sessions) < TREND_MIN_SESSIONS:
            continue
        xs = _days(sessions)
        line = theil_sen(xs, [x.e1rm for x in sessions])
        for x, session in zip(xs, sessions, strict=True):
            expected = line.intercept + line.slope * x
            if expected > 0:
                residuals[session.workout_id].append(100 * (session.e1rm - expected) / expected)
    return {workout_id: fmean(values) for workout_id, values in residuals.items()}


def _insight(kind: str, severity: str, title: str, reason: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "title": title, "reason": reason, "data": data}


def _most(labels: Sequence[str], count: int) -> str:
    """``Tuesday (6)``; ``Monday, Wednesday and Friday (4 each)``."""
    if len(labels) == 1:
        return f"{labels[0]} ({count})"
    return f"{', '.join(labels[:-1])} and {labels[-1]} ({count} each)"


def _band(hour: int) -> str:
    start = hour // BAND_HOURS * BAND_HOURS
    return f"{start:02d}:00-{start + BAND_HOURS:02d}:00"


def _days(sessions: Sequence[Session]) -> list[float]:
    return [(x.at - sessions[0].at).total_seconds() / 86400 for x in sessions]


def _at(s: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(s["logged_at"]))


def _is_work(s: Mapping[str, Any]) -> bool:
    return s.get("set_type") != "warmup" and int(s.get("reps") or 0) > 0
