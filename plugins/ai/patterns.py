"""Movement patterns: what an exercise *does*, so two exercises can stand in for each other.

The catalog says which muscles an exercise trains and whether it pushes or pulls; coaches
also group lifts by movement (a squat, a hinge, a horizontal press...). We derive that from
the exercise's name first (the catalog's names are descriptive: "Barbell Romanian Deadlift",
"Wide-Grip Lat Pulldown"), then fall back to its primary muscle and force.

Patterns are grouped for the weekly balance: ``push`` (presses, dips, triceps, flyes,
raises), ``pull`` (rows, pull-downs, curls, shrugs), ``legs`` (squats, lunges, hinges, knee
and calf work), ``core`` and ``other`` (stretches, cardio, jumps, carries, olympic lifts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# (pattern, name keywords) in priority order: the first pattern with a matching keyword wins.
_BY_NAME: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stretch", ("stretch", "smr", "foam roll")),
    ("olympic", ("clean", "snatch", "jerk")),
    ("knee_extension", ("leg extension",)),
    ("knee_flexion", ("leg curl", "hamstring curl", "glute ham raise", "nordic")),
    ("calf_raise", ("calf", "calves")),
    ("lunge", ("lunge", "split squat", "step-up", "step up", "pistol")),
    ("squat", ("squat", "leg press", "hack")),
    ("carry", ("carry", "farmer", "yoke", "walk")),
    (
        "hinge",
        (
            "deadlift",
            "good morning",
            "romanian",
            "hip thrust",
            "glute bridge",
            "bridge",
            "hyperextension",
            "back extension",
            "swing",
            "pull through",
            "rack pull",
        ),
    ),
    ("shoulder_raise", ("lateral raise", "front raise", "side lateral", "upright row")),
    ("vertical_pull", ("pulldown", "pull-down", "pull-up", "pullup", "pull up", "chin", "muscle up")),
    ("horizontal_pull", ("row", "face pull", "reverse fly", "reverse flye", "rear delt", "back fly")),
    ("shrug", ("shrug",)),
    ("elbow_flexion", ("curl",)),
    ("elbow_extension", ("triceps", "tricep", "skull", "pushdown", "push-down", "kickback")),
    ("chest_fly", ("fly", "flye", "crossover", "pec deck", "butterfly")),
    ("core_flexion", ("crunch", "sit-up", "situp", "sit up", "leg raise", "knee raise", "jackknife", "v-up")),
    ("anti_extension", ("plank", "rollout", "roll-out", "ab wheel", "dead bug")),
    ("rotation", ("twist", "woodchop", "wood chop", "russian", "rotation", "windmill")),
    (
        "vertical_push",
        ("overhead", "shoulder press", "military", "push press", "arnold", "handstand", "seated press"),
    ),
    (
        "horizontal_push",
        ("bench press", "push-up", "pushup", "push up", "dip", "floor press", "chest press", "incline press"),
    ),
)

# Fallback by primary muscle: (pattern when pushing or unknown, pattern when pulling).
_BY_MUSCLE: dict[str, tuple[str, str]] = {
    "chest": ("horizontal_push", "chest_fly"),
    "shoulders": ("vertical_push", "horizontal_pull"),
    "triceps": ("elbow_extension", "elbow_extension"),
    "lats": ("vertical_pull", "vertical_pull"),
    "middle back": ("horizontal_pull", "horizontal_pull"),
    "traps": ("shrug", "shrug"),
    "biceps": ("elbow_flexion", "elbow_flexion"),
    "forearms": ("grip", "grip"),
    "quadriceps": ("squat", "squat"),
    "hamstrings": ("hinge", "knee_flexion"),
    "glutes": ("hinge", "hinge"),
    "lower back": ("hinge", "hinge"),
    "calves": ("calf_raise", "calf_raise"),
    "adductors": ("hip_adduction", "hip_adduction"),
    "abductors": ("hip_abduction", "hip_abduction"),
    "abdominals": ("core_flexion", "core_flexion"),
    "neck": ("neck", "neck"),
}

GROUPS: dict[str, str] = {
    **dict.fromkeys(
        ("horizontal_push", "vertical_push", "elbow_extension", "chest_fly", "shoulder_raise"), "push"
    ),
    **dict.fromkeys(("horizontal_pull", "vertical_pull", "elbow_flexion", "shrug", "grip"), "pull"),
    **dict.fromkeys(
        (
            "squat",
            "lunge",
            "hinge",
            "knee_extension",
            "knee_flexion",
            "calf_raise",
            "hip_adduction",
            "hip_abduction",
        ),
        "legs",
    ),
    **dict.fromkeys(("core_flexion", "anti_extension", "rotation"), "core"),
}
# Only these categories are lifting; the rest get their own pattern whatever their name says.
_BY_CATEGORY = {"stretching": "stretch", "cardio": "cardio", "plyometrics": "jump"}


def _has(name: str, keyword: str) -> bool:
    # Whole words (or word starts, for plurals): "row" must not match "narrow" or "throw".
    return re.search(r"(?<![a-z])" + re.escape(keyword), name) is not None


def movement_pattern(
    name: str, category: str | None, force: str | None, primary_muscles: Sequence[str]
) -> str:
    """The pattern of one exercise (see the module docstring)."""
    if category in _BY_CATEGORY:
        return _BY_CATEGORY[category]
    lowered = name.lower()
    for pattern, keywords in _BY_NAME:
        if any(_has(lowered, k) for k in keywords):
            wrists = "biceps" not in primary_muscles and "forearms" in primary_muscles
            return "grip" if pattern == "elbow_flexion" and wrists else pattern
    if primary_muscles and primary_muscles[0] in _BY_MUSCLE:
        when_push, when_pull = _BY_MUSCLE[primary_muscles[0]]
        return when_pull if force == "pull" else when_push
    return "other"


def group_of(pattern: str) -> str:
    return GROUPS.get(pattern, "other")
