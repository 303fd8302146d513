"""A third-party plug-in whose import fails: it must be logged and skipped."""

raise ImportError("this plug-in needs a library that is not installed")
