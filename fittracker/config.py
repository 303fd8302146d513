"""Configuration: defaults (core + plug-ins) <- TOML file <- ``FITTRACKER__SECTION__KEY`` env.

Every key has a declared default (a :class:`Setting` or a plain value whose type is the key's
type). Unknown sections, unknown keys and invalid values raise :class:`ConfigError` with a
message that names the key and says what is valid, so a typo stops start-up instead of being
silently ignored.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fittracker.errors import ConfigError

ENV_PREFIX = "FITTRACKER__"
_TYPES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
}


def _expected(kind: type) -> str:
    return _TYPES.get(kind, f"a {kind.__name__}")


@dataclass(frozen=True, slots=True)
class Setting:
    """A config key: its default, what values are valid, and one line of help."""

    default: Any
    help: str = ""
    choices: Sequence[Any] | None = None
    min: float | None = None
    max: float | None = None
    # Checks each item of a list (or the value itself); raises ValueError saying what is valid.
    check: Callable[[Any], None] | None = None

    @property
    def kind(self) -> type:
        return float if isinstance(self.default, float) else type(self.default)

    def validate(self, where: str, given: Any) -> Any:
        kind = self.kind
        if kind is float and isinstance(given, int) and not isinstance(given, bool):
            given = float(given)
        if (kind is not bool and isinstance(given, bool)) or not isinstance(given, kind):
            raise ConfigError(f"{where}: expected {_expected(kind)}, got {given!r}")
        value: Any = given  # its type is now the setting's type
        if kind is float and not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        if kind is list and not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        if self.check is not None:
            for item in value if kind is list else [value]:
                try:
                    self.check(item)
                except ValueError as exc:
                    raise ConfigError(f"{where}: {item!r} is not valid: {exc}") from None
        if self.choices is not None and value not in self.choices:
            valid = ", ".join(repr(c) for c in self.choices)
            raise ConfigError(f"{where}: {value!r} is not one of {valid}")
        if self.min is not None and value < self.min:
            raise ConfigError(f"{where}: {value!r} is below the minimum {self.min:g}")
        if self.max is not None and value > self.max:
            raise ConfigError(f"{where}: {value!r} is above the maximum {self.max:g}")
        return value


def _ip_network(item: str) -> None:
    try:
        ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise ValueError("expected an IP address or network, e.g. 10.0.0.1 or 10.0.0.0/8") from None


def _origin(item: str) -> None:
    if item == "*":
        return
    parts = urlsplit(item)
    if (
        parts.scheme not in {"http", "https"}
        or not parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise ValueError("expected '*' or an origin like https://app.example.com (no path)")


def _redis_url(item: str) -> None:
    if urlsplit(item).scheme not in {"redis", "rediss", "unix"}:
        raise ValueError("expected a redis://, rediss:// or unix:// URL, e.g. redis://127.0.0.1:6379/0")


def _upstream_url(item: str) -> None:
    parts = urlsplit(item)
    if parts.scheme not in {"http", "unix"} or not (parts.netloc or parts.path) or parts.query:
        raise ValueError("expected http://host:port or unix:///path/to.sock")


REDIS_URL = "redis://127.0.0.1:6379/0"

# Core sections. Plug-ins add their own through ``fittracker_config_defaults``.
CORE_DEFAULTS: dict[str, dict[str, Setting]] = {
    "server": {
        "host": Setting("127.0.0.1", "interface to listen on"),
        "port": Setting(8080, "TCP port to listen on", min=0, max=65535),
        "data_dir": Setting("./data", "where SQLite files and keys live"),
        "shutdown_timeout": Setting(10.0, "seconds to finish in-flight requests on SIGTERM", min=0),
        "max_body_bytes": Setting(1_048_576, "largest request body accepted (413 above)", min=1024),
        "public_url": Setting("", "base URL for internal service calls; default http://host:port"),
    },
    "log": {
        "level": Setting("INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
        "format": Setting("json", "json lines or plain text", choices=("json", "text")),
        "access_log": Setting(True, "one JSON line per request"),
        "access_log_probes": Setting(False, "log GET /health too (probes are answered before routing)"),
    },
    "http": {
        "cors_origins": Setting([], "origins allowed by CORS ('*' for any)", check=_origin),
        "hsts": Setting(False, "send Strict-Transport-Security (only behind HTTPS)"),
        "trusted_proxies": Setting(
            [], "proxy IPs or networks whose X-Forwarded-For is believed", check=_ip_network
        ),
    },
    "ratelimit": {
        "enabled": Setting(True, "turn rate limiting on or off (off for benchmarks)"),
        "backend": Setting(
            "memory", "where counters live: this process, or Redis shared by all", choices=("memory", "redis")
        ),
        "redis_url": Setting(REDIS_URL, "Redis for the counters when backend = 'redis'", check=_redis_url),
        "window_s": Setting(900, "length of a rate-limit window in seconds", min=1),
        "global_limit": Setting(1000, "requests per window per client, all plug-ins", min=1),
        "plugin_limit": Setting(100, "requests per window per client per plug-in", min=1),
    },
    "auth": {
        "access_ttl_s": Setting(900, "access-token lifetime in seconds", min=30, max=86_400),
        "refresh_ttl_s": Setting(30 * 86_400, "refresh-token lifetime in seconds", min=300),
        "issuer": Setting("fittracker", "the 'iss' claim of access tokens"),
        "private_key_file": Setting("", "Ed25519 PEM private key; default <data_dir>/keys/"),
        "public_key_file": Setting("", "Ed25519 PEM public key; default <data_dir>/keys/"),
    },
    "storage": {
        "backend": Setting("sqlite", "document store", choices=("sqlite", "mongo")),
        "mongo_url": Setting("", "mongodb:// URL when backend = 'mongo'"),
    },
    "bus": {
        "backend": Setting(
            "sqlite", "event bus: SQLite file (one host) or Redis Streams", choices=("sqlite", "redis")
        ),
        "poll_interval_s": Setting(
            0.05, "sqlite: how often other processes' events are looked for", min=0.001
        ),
        "redis_url": Setting(
            REDIS_URL, "Redis for the event stream when backend = 'redis'", check=_redis_url
        ),
    },
    "cache": {
        "backend": Setting(
            "memory", "cache for hot reads: in-process LRU or Redis", choices=("memory", "redis")
        ),
        "redis_url": Setting(REDIS_URL, "Redis for the cache when backend = 'redis'", check=_redis_url),
        "max_entries": Setting(10_000, "memory: entries kept before the least recently used go", min=1),
    },
    "plugins": {
        "disabled": Setting([], "plug-ins not to load"),
        "required": Setting([], "plug-ins whose failure to load stops start-up"),
    },
    "router": {
        "balance": Setting(
            "least_outstanding", "how to pick a worker", choices=("round_robin", "least_outstanding")
        ),
        "connect_timeout_s": Setting(2.0, "seconds to connect to a worker", min=0.05),
        "read_timeout_s": Setting(30.0, "seconds to wait for a worker's answer", min=0.1),
        "eject_after": Setting(3, "consecutive failures that take a worker out of rotation", min=1),
        "retry_budget": Setting(0.2, "retries allowed as a share of requests", min=0, max=1),
        "max_retries": Setting(2, "retries of one request (only when nothing was sent)", min=0, max=10),
        "retry_idempotent_sent": Setting(True, "also retry a GET/HEAD whose worker died mid-request"),
        "probe_interval_s": Setting(2.0, "seconds between health probes of each worker", min=0.05),
        "breaker_failures": Setting(5, "consecutive failures that open a plug-in's circuit", min=1),
        "breaker_cooldown_s": Setting(5.0, "seconds an open circuit waits before a trial", min=0.1),
    },
    "supervisor": {
        "socket_dir": Setting("", "where worker Unix sockets live; default <data_dir>/sockets"),
        "health_interval_s": Setting(1.0, "seconds between worker health probes", min=0.05),
        "hung_after_s": Setting(10.0, "a worker failing probes this long is replaced", min=0.5),
        "ready_timeout_s": Setting(30.0, "seconds a new worker has to become ready", min=1),
        "backoff_initial_s": Setting(0.5, "first restart delay after a crash", min=0.01),
        "backoff_max_s": Setting(30.0, "longest restart delay", min=0.1),
        "crash_loop_window_s": Setting(60.0, "window in which crashes are counted", min=1),
        "crash_loop_limit": Setting(5, "crashes in the window before restarts stop", min=1),
        "drain_timeout_s": Setting(10.0, "seconds to let a worker finish in-flight requests", min=0),
    },
    "internal": {
        "secret": Setting("", "shared secret: workers refuse requests not signed by a router"),
    },
}

# Keys every plug-in section has, whatever the plug-in declares.
PLUGIN_COMMON: dict[str, Setting] = {
    "enabled": Setting(True, "load this plug-in"),
    "mode": Setting("inprocess", "where it runs", choices=("inprocess", "process", "remote")),
    "workers": Setting(1, "worker processes when mode = 'process'", min=1, max=64),
    "upstreams": Setting([], "http://host:port of its servers when mode = 'remote'", check=_upstream_url),
}


def _as_setting(value: Any) -> Setting:
    return value if isinstance(value, Setting) else Setting(value)


class Settings:
    """Validated configuration: ``settings.section("server")["port"]``."""

    def __init__(
        self,
        sections: dict[str, dict[str, Any]],
        schema: dict[str, dict[str, Setting]],
        source: Path | None = None,
    ) -> None:
        self._sections = sections
        self.schema = schema
        self.source = source  # the TOML file it came from (workers load the same one)

    def section(self, name: str) -> Mapping[str, Any]:
        return self._sections.get(name, {})

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dict(values) for name, values in self._sections.items()}

    @property
    def data_dir(self) -> Path:
        return Path(self._sections["server"]["data_dir"])


def build_schema(plugin_defaults: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Setting]]:
    """Core sections plus one section per plug-in."""
    schema = {name: dict(keys) for name, keys in CORE_DEFAULTS.items()}
    for plugin, defaults in plugin_defaults.items():
        if plugin in CORE_DEFAULTS:
            raise ConfigError(f"plug-in name {plugin!r} clashes with the core config section of that name")
        schema[plugin] = {**PLUGIN_COMMON, **{key: _as_setting(v) for key, v in defaults.items()}}
    return schema


def _parse_env(where: str, setting: Setting, raw: str) -> Any:
    kind = setting.kind
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes", "on"}
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is list:
            return [item.strip() for item in raw.split(",") if item.strip()]
    except ValueError:
        raise ConfigError(f"{where}: expected {_expected(kind)}, got {raw!r}") from None
    return raw


def _env_overrides(environ: Mapping[str, str]) -> Iterable[tuple[str, str, str]]:
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX):
            parts = name[len(ENV_PREFIX) :].lower().split("__")
            if len(parts) != 2 or not all(parts):
                raise ConfigError(f"{name}: environment overrides are named FITTRACKER__SECTION__KEY")
            yield parts[0], parts[1], raw


def _unknown(where: str, name: str, valid: Iterable[str]) -> ConfigError:
    return ConfigError(f"{where}: unknown {name}; valid: {', '.join(sorted(valid))}")


def load_settings(
    schema: dict[str, dict[str, Setting]],
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Merge defaults, the TOML file, the environment and explicit overrides (CLI flags)."""
    values = {section: {key: s.default for key, s in keys.items()} for section, keys in schema.items()}

    def put(where: str, section: str, key: str, value: Any, *, from_env: bool = False) -> None:
        if section not in schema:
            raise _unknown(where, f"section [{section}]", schema)
        if key not in schema[section]:
            raise _unknown(where, f"key {section}.{key}", schema[section])
        setting = schema[section][key]
        label = f"{where}: {section}.{key}"
        parsed = _parse_env(label, setting, value) if from_env else value
        values[section][key] = setting.validate(label, parsed)

    if file is not None:
        try:
            document = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{file}: no such config file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{file}: not UTF-8 text (TOML files are UTF-8)") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read the config file: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
        for section, keys in document.items():
            if not isinstance(keys, dict):
                raise ConfigError(f"{file}: {section} must be a [section] table")
            for key, value in keys.items():
                put(str(file), section, key, value)
    for section, key, raw in _env_overrides(os.environ if environ is None else environ):
        put(f"{ENV_PREFIX}{section.upper()}__{key.upper()}", section, key, raw, from_env=True)
    for section, keys in (overrides or {}).items():
        for key, value in keys.items():
            put("command line", section, key, value)
    for plugin, keys in values.items():
        if keys.get("mode") == "remote" and not keys.get("upstreams"):
            raise ConfigError(f"{plugin}.upstreams: mode = 'remote' needs at least one upstream URL")
    return Settings(values, schema, source=file)
