"""The ``fittracker`` command: serve, plugins, config check, and plug-in commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fittracker import __version__
from fittracker.cli_commands import CliCommand
from fittracker.config import Settings, build_schema, load_settings
from fittracker.errors import ConfigError
from fittracker.log import configure_logging
from fittracker.plugins import Discovery, discover
from fittracker.worker import add_arguments as add_worker_arguments
from fittracker.worker import main as worker_main

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("fittracker.cli")


def _server_flags(parser: argparse.ArgumentParser, *, listen: bool = True) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML config file")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="where SQLite files and keys live (server.data_dir)"
    )
    if listen:
        parser.add_argument("--host", help="interface to listen on (server.host)")
        parser.add_argument("--port", type=int, help="port to listen on (server.port)")


def _load(args: argparse.Namespace, found: Discovery) -> Settings:
    overrides: dict[str, Any] = {}
    for flag, key in (("host", "host"), ("port", "port"), ("data_dir", "data_dir")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    settings = load_settings(
        build_schema(found.config_defaults()), getattr(args, "config", None), overrides={"server": overrides}
    )
    _check_required(settings, found)
    return settings


def _check_required(settings: Settings, found: Discovery) -> None:
    missing = sorted(set(settings.section("plugins")["required"]) - set(found.plugins))
    if missing:
        reasons = "; ".join(f"{m}: {found.failed.get(m, 'not installed or filtered out')}" for m in missing)
        raise ConfigError(f"plugins.required: not loaded: {reasons}")


def _plugin_commands(found: Discovery) -> list[tuple[str, CliCommand]]:
    commands: list[tuple[str, CliCommand]] = []
    for name in found.plugins:
        commands.extend(
            (name, command) for command in found.call(name, "fittracker_cli_commands", default=())
        )
    return commands


def build_parser(found: Discovery) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fittracker", description="Self-hostable fitness-tracking backend.")
    parser.add_argument("--version", action="version", version=f"fittracker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the server (all enabled plug-ins in this process)")
    _server_flags(serve)

    worker = sub.add_parser("worker", help="run one plug-in as a worker process (split mode)")
    add_worker_arguments(worker)

    plugins = sub.add_parser("plugins", help="list installed plug-ins, versions, prefixes and hooks")
    plugins.add_argument("--json", action="store_true", help="print JSON")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_sub.add_parser("check", help="validate a config file (and the environment)")
    check.add_argument("file", nargs="?", type=Path, help="TOML file (default: built-in defaults only)")

    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for plugin, command in _plugin_commands(found):
        *group_words, leaf = command.words
        parent = sub
        for depth, word in enumerate(group_words):
            key = " ".join(group_words[: depth + 1])
            if key not in groups:
                group = parent.add_parser(word, help=f"{word} commands")
                groups[key] = group.add_subparsers(dest=f"_{key}", metavar="ACTION", required=True)
            parent = groups[key]
        leaf_parser = parent.add_parser(leaf, help=command.help)
        _server_flags(leaf_parser, listen=False)
        command.configure(leaf_parser)
        leaf_parser.set_defaults(plugin_command=(plugin, command))
    return parser


def cmd_plugins(found: Discovery, as_json: bool) -> int:
    rows = [
        {
            "name": p.info.name,
            "version": p.info.version,
            "description": p.info.description,
            "distribution": p.distribution,
            "prefixes": list(p.info.prefixes),
            "hooks": list(p.hooks),
        }
        for p in found.plugins.values()
    ]
    if as_json:
        print(json.dumps({"plugins": rows, "skipped": found.skipped, "failed": found.failed}, indent=2))
        return EXIT_OK
    for row in rows:
        print(f"{row['name']} {row['version']}  {row['description']}")
        print(f"  prefixes: {', '.join(row['prefixes']) or '-'}")
        print(f"  hooks:    {', '.join(row['hooks'])}")
    for name in found.skipped:
        print(f"{name}  (skipped: filtered out or disabled)")
    for name, error in found.failed.items():
        print(f"{name}  (FAILED to load: {error})")
    return EXIT_OK


def cmd_config_check(found: Discovery, file: Path | None) -> int:
    settings = load_settings(build_schema(found.config_defaults()), file)
    _check_required(settings, found)  # what start-up would refuse, the check refuses too
    print(f"{file or 'defaults'}: OK ({len(settings.as_dict())} sections)")
    return EXIT_OK


async def _run_plugin_command(
    found: Discovery, settings: Settings, plugin: str, command: CliCommand, args: argparse.Namespace
) -> int:
    from fittracker.app import build_app
    from fittracker.runtime import RUNTIME

    app = build_app(settings, found)
    # Start the application's resources without listening, so the command uses them exactly
    # as the server would (databases, bus, jobs), and close them properly afterwards.
    app.freeze()
    await app.startup()
    try:
        return await command.run(args, app[RUNTIME].contexts[plugin])
    finally:
        await app.shutdown()
        await app.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging("WARNING", "text")  # until the config says otherwise
    try:
        found = discover()
    except ConfigError as exc:  # e.g. two installed plug-ins with the same name
        print(f"fittracker: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    parser = build_parser(found)
    args = parser.parse_args(argv)
    try:
        if args.command == "plugins":
            return cmd_plugins(found, args.json)
        if args.command == "config":
            return cmd_config_check(found, args.file)
        if args.command == "worker":
            return worker_main(args)
        settings = _load(args, found)
        log_cfg = settings.section("log")
        configure_logging(log_cfg["level"], log_cfg["format"])
        if args.command == "serve":
            from fittracker.server import run

            run(settings, found)
            return EXIT_OK
        plugin, command = args.plugin_command
        app_settings = settings
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_run_plugin_command(found, app_settings, plugin, command, args))
        return EXIT_FAILED
    except ConfigError as exc:
        print(f"fittracker: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
