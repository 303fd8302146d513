"""Sub-commands that plug-ins add to the ``fittracker`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fittracker.context import PluginContext


@dataclass(frozen=True, slots=True)
class CliCommand:
    """``fittracker <words...>``: configured on an argparse parser, run with a live context.

    ``run`` returns the process exit code (0 ok, 1 failed, 2 bad usage).
    """

    words: tuple[str, ...]
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, PluginContext], Awaitable[int]]
