"""FitTracker core: the public API for plug-in authors.

A plug-in imports only from here (and, for HTTP helpers, ``fittracker.http``)::

    from fittracker import PluginContext, PluginInfo, hookimpl
"""

from __future__ import annotations

import pluggy

from fittracker.auth import Principal, optional_user, require_admin, require_user
from fittracker.bus import Event
from fittracker.cli_commands import CliCommand
from fittracker.config import Setting
from fittracker.context import CONTEXT, PluginContext, plugin_context
from fittracker.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from fittracker.http.middlewares import client_ip
from fittracker.plugins import PluginInfo

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("fittracker")

__all__ = [
    "CONTEXT",
    "BadRequest",
    "CliCommand",
    "Conflict",
    "Event",
    "Forbidden",
    "NotFound",
    "PluginContext",
    "PluginInfo",
    "Principal",
    "ProblemError",
    "ServiceUnavailable",
    "Setting",
    "TooManyRequests",
    "Unauthorized",
    "ValidationFailed",
    "__version__",
    "client_ip",
    "hookimpl",
    "optional_user",
    "plugin_context",
    "require_admin",
    "require_user",
]
