"""Weights in the user's units (the AI computes in kilograms)."""

from __future__ import annotations

KG_PER_LB = 0.45359237


def shown(weight_kg: float, units: str) -> float:
    """A weight in ``units``; pounds on a 2.5 lb grid, the smallest common plate pair."""
    return weight_kg if units == "kg" else round(weight_kg / KG_PER_LB / 2.5) * 2.5
