"""The built-in routine templates: data, a start-up check, and idempotent seeding.

Templates are data, not code paths: each has a stable id and a ``version``. On start every
template is written into the ``routines`` collection once; raising its ``version`` here makes
the next start rewrite its name, description and days (ratings and uses are kept). Every
exercise id must be an active built-in of the shipped catalog, checked before seeding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fittracker_plugins.workouts.catalog import Catalog
from fittracker_plugins.workouts.models_routines import RoutineDay, superset_errors
from fittracker_plugins.workouts.routines import RoutineStore


def ex(
    exercise_id: str,
    sets: int,
    reps: int | tuple[int, int] | None = None,
    *,
    seconds: int | None = None,
    rest: int = 90,
    kg: float | None = None,
    superset: str | None = None,
    notes: str | None = None,
) -> dict[str, Any]:
    """A planned exercise: ``reps`` is a count or a (min, max) range; ``seconds`` is timed work."""
    target: dict[str, Any] = {"duration_s": seconds}
    if isinstance(reps, tuple):
        target.update(reps_min=reps[0], reps_max=reps[1])
    elif reps is not None:
        target["reps"] = reps
    out = {"exercise_id": exercise_id, "sets": sets, **target, "rest_s": rest, "weight_kg": kg}
    return {**out, "superset": superset, "notes": notes}


def day(name: str, *exercises: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "exercises": list(exercises)}


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    version: int
    name: str
    description: str
    days: Sequence[Mapping[str, Any]]


BENCH = "Barbell_Bench_Press_-_Medium_Grip"
PROGRESS_5X5 = "add 2.5 kg next session when all 5x5 are done"

TEMPLATES: tuple[Template, ...] = (
    Template(
        "template-beginner-full-body",
        1,
        "Beginner Full Body",
        "Three full-body sessions a week (e.g. Mon/Wed/Fri) with simple, safe movements. "
        "Pick weights that leave two reps in reserve; add weight when you reach the top of the range.",
        (
            day(
                "Day 1",
                ex("Goblet_Squat", 3, (8, 12)),
                ex("Dumbbell_Bench_Press", 3, (8, 12)),
                ex("Seated_Cable_Rows", 3, (10, 12)),
                ex("Dumbbell_Shoulder_Press", 2, (10, 12)),
                ex("Plank", 3, seconds=30, rest=60),
            ),
            day(
                "Day 2",
                ex("Romanian_Deadlift", 3, (8, 10), rest=120),
                ex("Pushups", 3, (8, 15)),
                ex("Wide-Grip_Lat_Pulldown", 3, (10, 12)),
                ex("Dumbbell_Lunges", 2, 10, notes="10 per leg"),
                ex("Crunches", 2, 15, rest=60),
            ),
            day(
                "Day 3",
                ex("Leg_Press", 3, (10, 12), rest=120),
                ex("Incline_Dumbbell_Press", 3, (8, 12)),
                ex("Bent_Over_Two-Dumbbell_Row", 3, (10, 12)),
                ex("Barbell_Curl", 2, 12, rest=30, superset="A"),
                ex("Triceps_Pushdown", 2, 12, rest=60, superset="A"),
            ),
        ),
    ),
    Template(
        "template-hiit",
        1,
        "HIIT Circuits",
        "Two high-intensity circuits: 40 s of work, 20 s of rest, move straight to the next "
        "exercise; rest two minutes after each round. Four rounds.",
        (
            day(
                "Circuit A",
                ex("Freehand_Jump_Squat", 4, seconds=40, rest=20, superset="circuit"),
                ex("Mountain_Climbers", 4, seconds=40, rest=20, superset="circuit"),
                ex("Pushups", 4, seconds=40, rest=20, superset="circuit"),
                ex("Rope_Jumping", 4, seconds=40, rest=120, superset="circuit"),
            ),
            day(
                "Circuit B",
                ex("Star_Jump", 4, seconds=40, rest=20, superset="circuit"),
                ex("One-Arm_Kettlebell_Swings", 4, seconds=40, rest=20, superset="circuit"),
                ex("Battling_Ropes", 4, seconds=40, rest=20, superset="circuit"),
                ex("Knee_Tuck_Jump", 4, seconds=40, rest=20, superset="circuit"),
                ex("Plank", 4, seconds=40, rest=120, superset="circuit"),
            ),
        ),
    ),
    Template(
        "template-powerlifting-5x5",
        1,
        "Powerlifting 5x5",
        "Alternate workouts A and B three times a week (StrongLifts-style). Start with the empty "
        "bar (deadlift 40 kg) and add 2.5 kg each session you complete every rep.",
        (
            day(
                "Workout A",
                ex("Barbell_Squat", 5, 5, rest=180, kg=20, notes=PROGRESS_5X5),
                ex(BENCH, 5, 5, rest=180, kg=20, notes=PROGRESS_5X5),
                ex("Bent_Over_Barbell_Row", 5, 5, rest=180, kg=30, notes=PROGRESS_5X5),
            ),
            day(
                "Workout B",
                ex("Barbell_Squat", 5, 5, rest=180, kg=20, notes=PROGRESS_5X5),
                ex("Standing_Military_Press", 5, 5, rest=180, kg=20, notes=PROGRESS_5X5),
                ex("Barbell_Deadlift", 1, 5, rest=180, kg=40, notes="add 5 kg next session"),
            ),
        ),
    ),
    Template(
        "template-push-pull-legs",
        1,
        "Push/Pull/Legs",
        "Three days split by movement: pushing, pulling, legs. Run it once (3 days) or twice "
        "(6 days) a week. Heavy compounds first, then accessories in higher rep ranges.",
        (
            day(
                "Push",
                ex(BENCH, 4, (6, 8), rest=150),
                ex("Standing_Military_Press", 3, (8, 10), rest=120),
                ex("Incline_Dumbbell_Press", 3, (10, 12)),
                ex("Side_Lateral_Raise", 3, (12, 15), rest=60),
                ex("Triceps_Pushdown", 3, (10, 12), rest=60),
            ),
            day(
                "Pull",
                ex("Barbell_Deadlift", 3, 5, rest=180),
                ex("Pullups", 3, (6, 10), rest=120),
                ex("Seated_Cable_Rows", 3, (10, 12)),
                ex("Face_Pull", 3, 15, rest=60),
                ex("Barbell_Curl", 3, (10, 12), rest=0, superset="arms"),
                ex("Hammer_Curls", 3, (10, 12), rest=60, superset="arms"),
            ),
            day(
                "Legs",
                ex("Barbell_Squat", 4, (6, 8), rest=180),
                ex("Romanian_Deadlift", 3, (8, 10), rest=120),
                ex("Leg_Press", 3, (10, 12)),
                ex("Lying_Leg_Curls", 3, (10, 12), rest=60),
                ex("Standing_Calf_Raises", 4, (12, 15), rest=60),
            ),
        ),
    ),
    Template(
        "template-upper-lower",
        1,
        "Upper/Lower",
        "Four days a week alternating upper and lower body, each twice (e.g. Mon/Tue/Thu/Fri). "
        "A days are heavier, B days add volume.",
        (
            day(
                "Upper A",
                ex(BENCH, 4, (6, 8), rest=150),
                ex("Bent_Over_Barbell_Row", 4, (6, 8), rest=150),
                ex("Dumbbell_Shoulder_Press", 3, (8, 10)),
                ex("Wide-Grip_Lat_Pulldown", 3, (10, 12)),
                ex("EZ-Bar_Skullcrusher", 3, (10, 12), rest=0, superset="arms"),
                ex("Barbell_Curl", 3, (10, 12), rest=60, superset="arms"),
            ),
            day(
                "Lower A",
                ex("Barbell_Squat", 4, (6, 8), rest=180),
                ex("Romanian_Deadlift", 3, (8, 10), rest=120),
                ex("Leg_Extensions", 3, 12, rest=60),
                ex("Lying_Leg_Curls", 3, 12, rest=60),
                ex("Standing_Calf_Raises", 4, (12, 15), rest=60),
            ),
            day(
                "Upper B",
                ex("Standing_Military_Press", 4, (6, 8), rest=150),
                ex("Pullups", 4, (6, 10), rest=120),
                ex("Incline_Dumbbell_Press", 3, (8, 12)),
                ex("Seated_Cable_Rows", 3, (10, 12)),
                ex("Side_Lateral_Raise", 3, 15, rest=0, superset="delts"),
                ex("Face_Pull", 3, 15, rest=60, superset="delts"),
            ),
            day(
                "Lower B",
                ex("Barbell_Deadlift", 3, 5, rest=180),
                ex("Front_Barbell_Squat", 3, 8, rest=150),
                ex("Split_Squat_with_Dumbbells", 3, 10, notes="10 per leg"),
                ex("Barbell_Hip_Thrust", 3, (10, 12)),
                ex("Seated_Calf_Raise", 4, 15, rest=60),
            ),
        ),
    ),
)


def template_exercise_ids() -> set[str]:
    return {e["exercise_id"] for t in TEMPLATES for d in t.days for e in d["exercises"]}


def check_templates(catalog: Catalog) -> None:
    """Fail start-up if a template is malformed or uses an exercise the catalog lacks."""
    problems = [
        f"unknown exercise {i!r}" for i in sorted(template_exercise_ids()) if not catalog.is_active(i)
    ]
    for template in TEMPLATES:
        days = [RoutineDay.model_validate(d) for d in template.days]
        problems.extend(f"{template.id}: {e['field']}: {e['message']}" for e in superset_errors(days))
    if problems:
        raise RuntimeError("invalid built-in routine templates: " + "; ".join(problems))


def stored_days(template: Template, catalog: Catalog) -> list[dict[str, Any]]:
    """The template's days, normalised by the API model and with exercise names."""
    days = [RoutineDay.model_validate(d).model_dump() for d in template.days]
    for planned in (e for d in days for e in d["exercises"]):
        known = catalog.builtin(planned["exercise_id"])
        planned["exercise_name"] = known["name"] if known else ""
    return days


async def seed_templates(store: RoutineStore, catalog: Catalog) -> int:
    """Write new or changed templates (idempotent); returns how many were written."""
    check_templates(catalog)
    written = 0
    for template in TEMPLATES:
        fields = {
            "name": template.name,
            "description": template.description,
            "days": stored_days(template, catalog),
        }
        written += await store.put_template(template.id, template.version, fields)
    return written
