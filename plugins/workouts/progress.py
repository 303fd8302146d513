"""Progress reports, read from the derived ``sessions``, ``weeks`` and ``records`` documents.

Nothing here scans sets: per-exercise history reads one small session document per workout,
and volume and summary read one roll-up per ISO week, so a report over two years of training
reads about a hundred documents whatever the number of sets.

Volume and summary work in whole ISO weeks (Monday to Sunday, UTC): ``from`` moves back to its
Monday and ``to`` forward to its Sunday. Muscle volume: a set counts fully (1.0) toward each
primary muscle of its exercise and half (0.5) toward each secondary one, for both kg and sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fittracker_plugins.workouts.catalog import Catalog
from fittracker_plugins.workouts.derived import Derived, decode_row, row_key, week_label, week_start
from fittracker_plugins.workouts.records import RecordBook
from fittracker_plugins.workouts.units import Units, from_kg

from fittracker import ValidationFailed
from fittracker.storage import Document

DEFAULT_WEEKS = 12
MAX_WEEKS = 260
STREAK_PAGE = 60


def today() -> date:
    return datetime.now(UTC).date()


def lb(out: Document, units: Units, **kg: float | None) -> Document:
    """Add ``<name>_lb`` siblings for kg values when showing pounds."""
    if units == "lb":
        for name, value in kg.items():
            out[f"{name}_lb"] = None if value is None else from_kg(value, "lb")
    return out


def week_range(start: date | None, end: date | None) -> tuple[str, str]:
    """The Mondays of the first and last week of a period (default: the last 12 weeks)."""
    last = week_start((end or today()).isoformat())
    first = (
        week_start(start.isoformat())
        if start
        else (date.fromisoformat(last) - timedelta(weeks=DEFAULT_WEEKS - 1)).isoformat()
    )
    if first > last:
        raise ValidationFailed(
            "empty period", errors=[{"field": "from", "message": "must not be after `to`"}]
        )
    if (date.fromisoformat(last) - date.fromisoformat(first)).days // 7 >= MAX_WEEKS:
        raise ValidationFailed(
            "period too long", errors=[{"field": "from", "message": f"at most {MAX_WEEKS} weeks at once"}]
        )
    return first, last


def mondays(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(weeks=i)).isoformat() for i in range((end - start).days // 7 + 1)]


def sunday(monday: str) -> str:
    return (date.fromisoformat(monday) + timedelta(days=6)).isoformat()


def record_rows(book: Mapping[str, Any], units: Units) -> list[Document]:
    """One row per record held in a per-exercise record document."""
    rows = []
    marks = [(t, book[t]) for t in ("heaviest_weight", "best_e1rm") if book.get(t)]
    marks += [("most_reps", m) for m in book.get("most_reps") or []]
    if book.get("session_volume"):
        marks.append(("session_volume", book["session_volume"]))
    for record_type, mark in marks:
        weight = mark.get("weight_kg") if record_type == "most_reps" else None
        row: Document = {
            "exercise_id": book["exercise_id"],
            "exercise_name": book["exercise_name"],
            "record_type": record_type,
            "value": mark["value"],
            "unit": "reps" if record_type == "most_reps" else "kg",
            "weight_kg": weight,
            "workout_id": mark["workout_id"],
            "set_id": mark.get("set_id"),
            "achieved_at": mark["achieved_at"],
        }
        if record_type == "most_reps":
            rows.append(lb(row, units, weight=weight))
        else:
            rows.append(lb(row, units, value=mark["value"]))
    return rows


def session_point(s: Mapping[str, Any], units: Units) -> Document:
    best = s["best_set"]
    if best is not None:
        best = lb(dict(best), units, weight=best["weight_kg"], e1rm=best["e1rm"])
    e1rm = s["best_e1rm"]["value"] if s["best_e1rm"] else None
    heaviest = s["heaviest_weight"]["value"] if s["heaviest_weight"] else None
    out = {
        "workout_id": s["workout_id"],
        "date": s["date"],
        "started_at": s["started_at"],
        "finished": s["finished"],
        "best_set": best,
        "e1rm": e1rm,
        "heaviest_kg": heaviest,
        "volume_kg": s["volume_kg"],
        "sets": s["sets"],
        "work_sets": s["work_sets"],
        "reps": s["reps"],
    }
    return lb(out, units, e1rm=e1rm, heaviest=heaviest, volume=s["volume_kg"])


class Progress:
    def __init__(self, derived: Derived, records: RecordBook, catalog: Catalog) -> None:
        self.derived = derived
        self.records = records
        self.catalog = catalog

    async def _exercise_lines(
        self, user_id: str, first: str, last: str
    ) -> tuple[dict[str, list[str]], dict[str, str]]:
        """Each week's encoded exercise rows (see :func:`.derived.encode_rows`) and the exercises' names."""
        docs = await self.derived.weeks_between(user_id, first, last, exercises=True)
        by_week = {d["_id"].rsplit(":", 1)[1]: d["rows"].splitlines() for d in docs}
        ids = {row_key(line) for lines in by_week.values() for line in lines}
        found = await self.catalog.get_many(user_id, ids)
        return by_week, {i: str(found[i]["name"]) if i in found else i for i in ids}

    async def records_of(self, user_id: str, exercise_id: str | None, units: Units) -> Document:
        books = await self.records.of_user(user_id, exercise_id)
        return {"units": units, "items": [row for book in books for row in record_rows(book, units)]}

    async def history(
        self,
        user_id: str,
        exercise: Mapping[str, Any],
        start: date | None,
        end: date | None,
        limit: int,
        units: Units,
    ) -> Document:
        first = start.isoformat() if start else "0000-01-01"
        last = end.isoformat() if end else "9999-12-31"
        sessions = await self.derived.history(user_id, exercise["id"], first, last, limit)
        ref = {key: exercise[key] for key in ("id", "name", "primary_muscles", "secondary_muscles")}
        return {"exercise": ref, "units": units, "sessions": [session_point(s, units) for s in sessions]}

    async def volume(
        self, user_id: str, start: date | None, end: date | None, group: str, units: Units
    ) -> Document:
        first, last = week_range(start, end)
        stored = {w["week_start"]: w for w in await self.derived.weeks_between(user_id, first, last)}
        by_week, names = await self._exercise_lines(user_id, first, last) if group == "exercise" else ({}, {})
        totals: dict[str, Document] = {}
        weeks = []
        for monday in mondays(first, last):
            doc = stored.get(monday)
            if group == "muscle":
                groups = [
                    {"key": m["muscle"], "name": m["muscle"], "volume_kg": m["volume_kg"], "sets": m["sets"]}
                    for m in (doc["muscles"] if doc else [])
                ]
            else:
                groups = [
                    {"key": r[0], "name": names[r[0]], "volume_kg": r[1], "sets": r[2]}
                    for r in map(decode_row, by_week.get(monday, []))
                ]
            for g in groups:
                acc = totals.setdefault(
                    g["key"], {"key": g["key"], "name": g["name"], "volume_kg": 0.0, "sets": 0.0}
                )
                acc["volume_kg"] += g["volume_kg"]
                acc["sets"] += g["sets"]
            week_volume = doc["volume_kg"] if doc else 0.0
            row = {
                "week": week_label(monday),
                "week_start": monday,
                "volume_kg": week_volume,
                "sets": doc["work_sets"] if doc else 0,
                "groups": [lb(g, units, volume=g["volume_kg"]) for g in groups],
            }
            weeks.append(lb(row, units, volume=week_volume))
        total_rows = []
        for acc in sorted(totals.values(), key=lambda a: (-a["volume_kg"], a["key"])):
            acc.update(volume_kg=round(acc["volume_kg"], 4), sets=round(acc["sets"], 2))
            total_rows.append(lb(acc, units, volume=acc["volume_kg"]))
        volume_kg = round(sum(w["volume_kg"] for w in weeks), 4)
        out = {"from": first, "to": sunday(last), "group": group, "units": units, "weeks": weeks}
        out.update(totals=total_rows, volume_kg=volume_kg)
        return lb(out, units, volume=volume_kg)

    async def summary(self, user_id: str, start: date | None, end: date | None, units: Units) -> Document:
        first, last = week_range(start, end)
        stored = {w["week_start"]: w for w in await self.derived.weeks_between(user_id, first, last)}
        by_week, names = await self._exercise_lines(user_id, first, last)
        weeks, run, longest = [], 0, 0
        empty = {"started": 0, "finished": 0, "volume_kg": 0.0}
        for monday in mondays(first, last):
            doc = stored.get(monday) or empty
            run = run + 1 if doc["finished"] else 0
            longest = max(longest, run)
            row = {"week": week_label(monday), "week_start": monday, "started": doc["started"]}
            row.update(finished=doc["finished"], volume_kg=doc["volume_kg"])
            weeks.append(lb(row, units, volume=doc["volume_kg"]))
        volume_kg = round(sum(w["volume_kg"] for w in weeks), 4)
        finished = sum(w["finished"] for w in weeks)
        # The earliest week with an estimate gives "first", the latest gives "last"; only those
        # rows are decoded (an encoded row has no e1RM when it ends in tabs).
        ordered = [by_week[m] for m in sorted(by_week)]
        firsts: dict[str, str] = {}
        lasts: dict[str, str] = {}
        for lines in ordered:
            for line in lines:
                if not line.endswith("\t"):
                    key = row_key(line)
                    firsts.setdefault(key, line)
                    lasts[key] = line
        known = {w["week_start"]: w for w in stored.values()} | {
            m: None for m in mondays(first, last) if m not in stored
        }
        out: Document = {
            "from": first,
            "to": sunday(last),
            "units": units,
            "weeks": weeks,
            "workouts_per_week": round(finished / len(weeks), 2),
            "started": sum(w["started"] for w in weeks),
            "finished": finished,
            "volume_kg": volume_kg,
            "sets": sum(w["work_sets"] for w in stored.values()),
            "streak": {"current_weeks": await self.current_streak(user_id, known), "longest_weeks": longest},
            "strength": sorted(
                (self._change(decode_row(firsts[i]), decode_row(lasts[i]), names[i], units) for i in firsts),
                key=lambda c: (c["exercise_name"], c["exercise_id"]),
            ),
        }
        return lb(out, units, volume=volume_kg)

    @staticmethod
    def _change(first_row: list[Any], last_row: list[Any], name: str, units: Units) -> Document:
        first, last = first_row[4], last_row[6]
        return {
            "exercise_id": first_row[0],
            "exercise_name": name,
            "first": lb({"date": first_row[3], "e1rm_kg": first}, units, e1rm=first),
            "last": lb({"date": last_row[5], "e1rm_kg": last}, units, e1rm=last),
            "change_kg": round(last - first, 2),
            "change_pct": round((last / first - 1) * 100, 1) if first else None,
        }

    async def current_streak(self, user_id: str, known: Mapping[str, Document | None] | None = None) -> int:
        """Consecutive ISO weeks with a finished workout, ending this week (or last week: a week
        still in progress does not break the streak). ``known`` are week documents already read
        (by Monday); older weeks are fetched in pages by primary-key range."""
        weeks: dict[str, Document | None] = dict(known or {})

        async def finished(monday: str) -> bool:
            if monday not in weeks:
                oldest = (date.fromisoformat(monday) - timedelta(weeks=STREAK_PAGE - 1)).isoformat()
                weeks.update(dict.fromkeys(mondays(oldest, monday)))
                weeks.update(
                    {w["week_start"]: w for w in await self.derived.weeks_between(user_id, oldest, monday)}
                )
            doc = weeks[monday]
            return doc is not None and doc["finished"] > 0

        monday = week_start(today().isoformat())
        if not await finished(monday):
            monday = _previous(monday)
        streak = 0
        while await finished(monday):
            streak += 1
            monday = _previous(monday)
        return streak


def _previous(monday: str) -> str:
    return (date.fromisoformat(monday) - timedelta(weeks=1)).isoformat()
