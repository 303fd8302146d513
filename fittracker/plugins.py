"""Plug-in discovery: the ``fittracker`` entry-point group, filters, and a manager factory.

Built-in plug-ins are found exactly like third-party ones, through entry points. There is no
global plug-in manager: :func:`discover` builds a fresh one each time it is called.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from fittracker import hookspecs
from fittracker.errors import ConfigError

ENTRY_POINT_GROUP = "fittracker"
PLUGINS_ENV = "FITTRACKER_PLUGINS"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_PREFIX = re.compile(r"^/[a-z0-9_\-/{}.]*[a-z0-9_\-}]$")

log = logging.getLogger("fittracker.plugins")


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What a plug-in says about itself (see ``fittracker_plugin_info``)."""

    name: str
    version: str
    description: str = ""
    prefixes: tuple[str, ...] = ()

    def owns(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.prefixes)


@dataclass(slots=True)
class LoadedPlugin:
    """A plug-in object registered with the manager, plus where it came from."""

    info: PluginInfo
    plugin: Any
    distribution: str = ""
    hooks: tuple[str, ...] = ()


@dataclass(slots=True)
class Discovery:
    """The result of :func:`discover`: the manager, what loaded, and what failed."""

    pm: pluggy.PluginManager
    plugins: dict[str, LoadedPlugin] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    # Installed but filtered out: their config sections stay valid (one file serves every
    # process of a deployment, each loading only some plug-ins).
    filtered: dict[str, Any] = field(default_factory=dict)

    def config_defaults(self) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for name, loaded in self.plugins.items():
            out[name] = dict(call_hook(self.pm, loaded.plugin, "fittracker_config_defaults", default={}))
        for name, obj in self.filtered.items():
            impl = getattr(obj, "fittracker_config_defaults", None)
            out[name] = dict(impl()) if callable(impl) else {}
        return out

    def call(self, name: str, hook: str, **kwargs: Any) -> Any:
        """Call plug-in ``name``'s implementation of ``hook`` (see :func:`call_hook`)."""
        return call_hook(self.pm, self.plugins[name].plugin, hook, **kwargs)


def new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _only_filter(environ: Mapping[str, str]) -> set[str] | None:
    raw = environ.get(PLUGINS_ENV, "").strip()
    return {name.strip() for name in raw.split(",") if name.strip()} if raw else None


def validate_info(info: Any, source: str) -> PluginInfo:
    """Check what a plug-in returned from ``fittracker_plugin_info``."""
    if not isinstance(info, PluginInfo):
        raise TypeError(
            f"{source}: fittracker_plugin_info must return a PluginInfo, got {type(info).__name__}"
        )
    if not _NAME.match(info.name):
        raise ValueError(f"{source}: plug-in name {info.name!r} must match {_NAME.pattern}")
    for prefix in info.prefixes:
        if not _PREFIX.match(prefix):
            raise ValueError(
                f"{source}: route prefix {prefix!r} must be an absolute path without a trailing /"
            )
    return info


def discover(
    *,
    extra: Iterable[Any] = (),
    environ: Mapping[str, str] | None = None,
    disabled: Iterable[str] = (),
    required: Iterable[str] = (),
) -> Discovery:
    """Load every plug-in of the entry-point group (plus ``extra`` objects, for tests).

    A plug-in that fails to import or to describe itself is logged and skipped, unless it is
    ``required``, which raises :class:`ConfigError`. ``FITTRACKER_PLUGINS=a,b`` and
    ``disabled`` leave the others out (they are still listed in ``skipped``).
    """
    env = os.environ if environ is None else environ
    only = _only_filter(env)
    disabled_set, required_set = set(disabled), set(required)
    found = Discovery(pm=new_manager())
    candidates: list[tuple[str, str, Any]] = []
    for ep in _entry_points():
        try:
            candidates.append((ep.name, ep.dist.name if ep.dist else "", ep.load()))
        except Exception as exc:  # a broken third-party package must not take the others down
            found.failed[ep.name] = f"{type(exc).__name__}: {exc}"
            log.exception("plug-in %r failed to import; skipped", ep.name)
    candidates.extend((getattr(obj, "__name__", repr(obj)), "", obj) for obj in extra)

    for source, dist, obj in candidates:
        try:
            info = validate_info(obj.fittracker_plugin_info(), source)
        except Exception as exc:
            found.failed[source] = f"{type(exc).__name__}: {exc}"
            log.exception("plug-in %r did not describe itself; skipped", source)
            continue
        if info.name in found.plugins:
            raise ConfigError(f"two plug-ins are named {info.name!r}")
        if (only is not None and info.name not in only) or info.name in disabled_set:
            found.skipped.append(info.name)
            found.filtered[info.name] = obj
            continue
        found.pm.register(obj, name=info.name)
        hooks = tuple(sorted(c.name for c in found.pm.get_hookcallers(obj) or ()))
        found.plugins[info.name] = LoadedPlugin(info=info, plugin=obj, distribution=dist, hooks=hooks)

    missing = required_set - set(found.plugins)
    if missing:
        reasons = "; ".join(
            f"{m}: {found.failed.get(m, 'not installed or filtered out')}" for m in sorted(missing)
        )
        raise ConfigError(f"required plug-ins are not loaded: {reasons}")
    _check_prefixes(found.plugins.values())
    return found


def _check_prefixes(plugins: Iterable[LoadedPlugin]) -> None:
    owners: dict[str, str] = {}
    for loaded in plugins:
        for prefix in loaded.info.prefixes:
            for other, owner in owners.items():
                if prefix == other or prefix.startswith(other + "/") or other.startswith(prefix + "/"):
                    raise ConfigError(
                        f"route prefix {prefix!r} of plug-in {loaded.info.name!r} "
                        f"overlaps {other!r} of {owner!r}"
                    )
            owners[prefix] = loaded.info.name


def call_hook(pm: pluggy.PluginManager, plugin: Any, hook: str, **kwargs: Any) -> Any:
    """Call ONE plug-in's implementation of a per-plug-in hook; ``default`` if it has none.

    Goes through pluggy's hook implementations, so an implementation may take fewer
    arguments than the spec offers (pluggy's rule) and may use ``specname``.
    """
    default = kwargs.pop("default", None)
    caller = getattr(pm.hook, hook)
    for impl in caller.get_hookimpls():
        if impl.plugin is plugin:
            return impl.function(**{name: kwargs[name] for name in impl.argnames})
    return default
