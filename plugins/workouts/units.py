"""Weights: stored canonically in kilograms; shown in the unit a user asks for.

1 lb = 0.45359237 kg exactly (the international avoirdupois pound). Stored kilograms keep
four decimals, so a weight entered in pounds converts back to the same pounds (to 0.01 lb).
"""

from __future__ import annotations

from typing import Literal

Units = Literal["kg", "lb"]
KG_PER_LB = 0.45359237


def to_kg(value: float, units: Units) -> float:
    """A weight in ``units`` as kilograms (4 decimals)."""
    return round(value * KG_PER_LB, 4) if units == "lb" else round(value, 4)


def from_kg(kg: float, units: Units) -> float:
    """A weight in kilograms shown in ``units`` (2 decimals)."""
    return round(kg / KG_PER_LB, 2) if units == "lb" else round(kg, 2)
