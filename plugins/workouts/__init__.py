"""The workouts plug-in: exercise library, routines, workout logging, progress and records."""

__version__ = "0.1.0"
