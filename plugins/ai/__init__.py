"""The AI plug-in: a coaching read model, recovery and progression, all explainable."""

__version__ = "0.1.0"
