"""The hooks of the users plug-in (entry point ``users = fittracker_plugins.users.plugin``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from fittracker_plugins.users import __version__, cli, openapi, routes_auth, routes_profiles, routes_social
from fittracker_plugins.users.models import PASSWORD_MAX, PASSWORD_MIN
from fittracker_plugins.users.state import setup_state

from fittracker import CliCommand, PluginContext, PluginInfo, Setting, hookimpl

PREFIXES = ("/api/v1/auth", "/api/v1/users", "/api/v1/profiles")


@hookimpl
def fittracker_plugin_info() -> PluginInfo:
    return PluginInfo(
        name="users",
        version=__version__,
        description="Accounts, tokens (login, refresh rotation, logout), profiles and follows",
        prefixes=PREFIXES,
    )


@hookimpl
def fittracker_config_defaults() -> Mapping[str, Any]:
    return {
        "login_throttle": Setting(True, "refuse logins (429) after repeated failures"),
        "login_max_failures": Setting(5, "failed logins per email inside the window before 429", min=1),
        "login_ip_max_failures": Setting(
            20, "failed logins per client address inside the window before 429", min=1
        ),
        "login_window_s": Setting(900, "seconds a failed login counts against the limits", min=1),
        "password_min_length": Setting(
            PASSWORD_MIN, "shortest password accepted at registration", min=PASSWORD_MIN, max=PASSWORD_MAX
        ),
        "argon2_time_cost": Setting(
            3, "argon2id iterations (changing it re-hashes at next login)", min=1, max=20
        ),
        "argon2_memory_kib": Setting(65_536, "argon2id memory in KiB", min=8, max=4_194_304),
        "argon2_parallelism": Setting(4, "argon2id lanes", min=1, max=64),
    }


@hookimpl
def fittracker_setup(app: web.Application, ctx: PluginContext) -> None:
    setup_state(app, ctx)
    routes_auth.add_routes(app)
    routes_profiles.add_routes(app)
    routes_social.add_routes(app)


@hookimpl
def fittracker_openapi(ctx: PluginContext) -> Mapping[str, Any]:
    return openapi.spec()


@hookimpl
def fittracker_cli_commands() -> Sequence[CliCommand]:
    return cli.COMMANDS
