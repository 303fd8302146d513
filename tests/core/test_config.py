"""Configuration: defaults <- TOML file <- FITTRACKER__SECTION__KEY <- command line, validated."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fittracker.config import CORE_DEFAULTS, Setting, Settings, build_schema, load_settings
from fittracker.errors import ConfigError
from fittracker.plugins import discover
from fittracker.runtime import RUNTIME
from tests.conftest import TEST_PLUGINS_DIR, MakeClient

REPO = Path(__file__).parents[2]
DEFAULT_TOML = REPO / "config" / "default.toml"


def load(
    text: str | None = None,
    tmp_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    plugin_defaults: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    file = None
    if text is not None:
        assert tmp_path is not None
        file = tmp_path / "fittracker.toml"
        file.write_text(text, encoding="utf-8")
    return load_settings(
        build_schema(plugin_defaults or {}), file, environ=environ or {}, overrides=overrides
    )


def config_error(**kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(**kwargs)
    return str(info.value)


# --- defaults and the file ---------------------------------------------------------------------


def test_defaults_load() -> None:
    settings = load()
    assert settings.section("server")["port"] == 8080
    assert settings.section("server")["host"] == "127.0.0.1"
    assert settings.section("ratelimit")["global_limit"] == 1000
    assert settings.section("ratelimit")["plugin_limit"] == 100
    assert settings.section("ratelimit")["window_s"] == 900
    assert settings.section("http")["cors_origins"] == []
    assert settings.data_dir == Path("./data")
    expected = {section: {k: s.default for k, s in keys.items()} for section, keys in CORE_DEFAULTS.items()}
    assert settings.as_dict() == expected
    assert settings.section("no-such-section") == {}


def test_file_overrides_defaults(tmp_path: Path) -> None:
    settings = load(
        """
        [server]
        port = 9000
        shutdown_timeout = 3          # an integer is fine for a float key
        [log]
        level = "DEBUG"
        access_log = false
        [http]
        cors_origins = ["https://app.example.com"]
        """,
        tmp_path,
    )
    assert settings.section("server")["port"] == 9000
    assert settings.section("server")["host"] == "127.0.0.1"  # untouched keys keep their default
    timeout = settings.section("server")["shutdown_timeout"]
    assert timeout == 3.0 and isinstance(timeout, float)
    assert settings.section("log")["level"] == "DEBUG"
    assert settings.section("log")["access_log"] is False
    assert settings.section("http")["cors_origins"] == ["https://app.example.com"]


def test_env_beats_file_and_command_line_beats_env(tmp_path: Path) -> None:
    settings = load(
        "[server]\nport = 9000\nhost = '0.0.0.0'\n",
        tmp_path,
        environ={"FITTRACKER__SERVER__PORT": "9100", "FITTRACKER__SERVER__HOST": "10.0.0.1"},
        overrides={"server": {"host": "192.168.1.1"}},
    )
    assert settings.section("server")["port"] == 9100
    assert settings.section("server")["host"] == "192.168.1.1"


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(build_schema({}), tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigError, match="invalid TOML"):
        load("[server\nport = 1\n", tmp_path)
    with pytest.raises(ConfigError, match=r"server must be a \[section\] table"):
        load("server = 1\n", tmp_path)


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(build_schema({}), tmp_path, environ={})  # a directory
    binary = tmp_path / "latin1.toml"
    binary.write_bytes(b"[server]\nhost = '\xe9'\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_settings(build_schema({}), binary, environ={})


# --- environment overrides ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw", "section", "key", "expected"),
    [
        ("FITTRACKER__LOG__ACCESS_LOG", "false", "log", "access_log", False),
        ("FITTRACKER__LOG__ACCESS_LOG", "0", "log", "access_log", False),
        ("FITTRACKER__LOG__ACCESS_LOG", "off", "log", "access_log", False),
        ("FITTRACKER__HTTP__HSTS", "TRUE", "http", "hsts", True),
        ("FITTRACKER__HTTP__HSTS", "yes", "http", "hsts", True),
        ("FITTRACKER__HTTP__HSTS", " 1 ", "http", "hsts", True),
        ("FITTRACKER__SERVER__PORT", "9000", "server", "port", 9000),
        ("FITTRACKER__RATELIMIT__GLOBAL_LIMIT", "5", "ratelimit", "global_limit", 5),
        ("FITTRACKER__SERVER__SHUTDOWN_TIMEOUT", "2.5", "server", "shutdown_timeout", 2.5),
        ("FITTRACKER__SERVER__SHUTDOWN_TIMEOUT", "3", "server", "shutdown_timeout", 3.0),
        ("FITTRACKER__SERVER__HOST", "0.0.0.0", "server", "host", "0.0.0.0"),
        ("FITTRACKER__LOG__LEVEL", "WARNING", "log", "level", "WARNING"),
        (
            "FITTRACKER__HTTP__CORS_ORIGINS",
            "https://a.example, https://b.example:8443,",
            "http",
            "cors_origins",
            ["https://a.example", "https://b.example:8443"],
        ),
        ("FITTRACKER__HTTP__CORS_ORIGINS", "", "http", "cors_origins", []),
        ("FITTRACKER__PLUGINS__DISABLED", "notes", "plugins", "disabled", ["notes"]),
    ],
)
def test_env_overrides_every_type(
    variable: str, raw: str, section: str, key: str, expected: Any, tmp_path: Path
) -> None:
    settings = load(environ={variable: raw, "UNRELATED": "x", "FITTRACKER_PLUGINS": "users"})
    value = settings.section(section)[key]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("FITTRACKER__LOG__ACCESS_LOG", "maybe", "expected a boolean, got 'maybe'"),
        ("FITTRACKER__SERVER__PORT", "eighty", "expected an integer, got 'eighty'"),
        ("FITTRACKER__SERVER__PORT", "80.5", "expected an integer, got '80.5'"),
        ("FITTRACKER__SERVER__SHUTDOWN_TIMEOUT", "soon", "expected a number, got 'soon'"),
        ("FITTRACKER__SERVER__SHUTDOWN_TIMEOUT", "nan", "finite"),
        ("FITTRACKER__SERVER__SHUTDOWN_TIMEOUT", "inf", "finite"),
        ("FITTRACKER__SERVER__PORT", "70000", "above the maximum 65535"),
        ("FITTRACKER__RATELIMIT__GLOBAL_LIMIT", "0", "below the minimum 1"),
        ("FITTRACKER__LOG__LEVEL", "LOUD", "'LOUD' is not one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'"),
        ("FITTRACKER__SERVER__PROT", "1", "unknown key server.prot; valid: data_dir, host"),
        (
            "FITTRACKER__SERVRE__PORT",
            "1",
            "unknown section [servre]; valid: auth, bus, cache, http, internal, log",
        ),
    ],
)
def test_bad_env_values_name_the_variable(variable: str, raw: str, expected: str) -> None:
    message = config_error(environ={variable: raw})
    assert message.startswith(f"{variable}: ")
    assert expected in message


@pytest.mark.parametrize("variable", ["FITTRACKER__SERVER", "FITTRACKER__A__B__C", "FITTRACKER____PORT"])
def test_malformed_env_names(variable: str) -> None:
    message = config_error(environ={variable: "1"})
    assert variable in message and "FITTRACKER__SECTION__KEY" in message


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[srever]\nport = 1",
            "unknown section [srever]; valid: auth, bus, cache, http, internal, log, plugins, ratelimit",
        ),
        ("[server]\nprot = 1", "unknown key server.prot; valid: data_dir, host, max_body_bytes, port"),
        ('[server]\nport = "8080"', "server.port: expected an integer, got '8080'"),
        ("[server]\nport = 80.0", "server.port: expected an integer, got 80.0"),
        ("[server]\nport = true", "server.port: expected an integer, got True"),
        ("[server]\nhost = 127", "server.host: expected a string, got 127"),
        ('[log]\naccess_log = "yes"', "log.access_log: expected a boolean, got 'yes'"),
        ('[server]\nshutdown_timeout = "1"', "server.shutdown_timeout: expected a number"),
        ("[server]\nshutdown_timeout = nan", "server.shutdown_timeout: expected a finite number"),
        ("[server]\nshutdown_timeout = inf", "server.shutdown_timeout: expected a finite number"),
        ('[http]\ncors_origins = "https://a.example"', "http.cors_origins: expected a list"),
        ("[http]\ncors_origins = [1, 2]", "http.cors_origins: expected a list of strings"),
        ("[server]\nport = 65536", "server.port: 65536 is above the maximum 65535"),
        ("[server]\nport = -1", "server.port: -1 is below the minimum 0"),
        ("[server]\nmax_body_bytes = 10", "server.max_body_bytes: 10 is below the minimum 1024"),
        ("[auth]\naccess_ttl_s = 10", "auth.access_ttl_s: 10 is below the minimum 30"),
        ('[log]\nlevel = "LOUD"', "log.level: 'LOUD' is not one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'"),
        ('[log]\nformat = "xml"', "log.format: 'xml' is not one of 'json', 'text'"),
        ('[storage]\nbackend = "postgres"', "storage.backend: 'postgres' is not one of 'sqlite', 'mongo'"),
        ('[http]\ntrusted_proxies = ["10.0.0.0/8", "proxy.local"]', "http.trusted_proxies: 'proxy.local'"),
        ('[http]\ncors_origins = ["app.example.com"]', "http.cors_origins: 'app.example.com'"),
        ('[bus]\nbackend = "kafka"', "bus.backend: 'kafka' is not one of 'sqlite', 'redis'"),
        (
            '[bus]\nredis_url = "localhost:6379"',
            "bus.redis_url: 'localhost:6379' is not valid: expected a redis://",
        ),
        (
            '[ratelimit]\nbackend = "memcached"',
            "ratelimit.backend: 'memcached' is not one of 'memory', 'redis'",
        ),
        ("[cache]\nmax_entries = 0", "cache.max_entries: 0 is below the minimum 1"),
    ],
)
def test_invalid_file_values_name_the_key_and_what_is_valid(toml: str, expected: str, tmp_path: Path) -> None:
    message = config_error(text=toml, tmp_path=tmp_path)
    assert message.startswith(str(tmp_path / "fittracker.toml") + ": ")
    assert expected in message


def test_command_line_values_are_validated() -> None:
    message = config_error(overrides={"server": {"port": 99999}})
    assert message == "command line: server.port: 99999 is above the maximum 65535"


def test_valid_network_and_origin_lists(tmp_path: Path) -> None:
    settings = load(
        """
        [http]
        trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"]
        cors_origins = ["*", "https://app.example.com", "http://localhost:3000"]
        """,
        tmp_path,
    )
    assert settings.section("http")["trusted_proxies"][1] == "10.0.0.0/8"
    assert len(settings.section("http")["cors_origins"]) == 3


def test_setting_validation_directly() -> None:
    assert Setting(1.5, min=0).validate("x", 2) == 2.0
    assert Setting([]).validate("x", ["a"]) == ["a"]
    with pytest.raises(ConfigError, match="x: 3 is above the maximum 2"):
        Setting(1, min=0, max=2).validate("x", 3)
    with pytest.raises(ConfigError, match="x: expected a boolean, got 1"):
        Setting(True).validate("x", 1)


# --- plug-in sections --------------------------------------------------------------------------


def notes_defaults() -> dict[str, Mapping[str, Any]]:
    found = discover(environ={"FITTRACKER_PLUGINS": "notes"})
    assert "notes" in found.plugins, found.failed
    return found.config_defaults()


def test_plugin_section_defaults(installed_test_plugins: Path) -> None:
    defaults = notes_defaults()
    schema = build_schema(defaults)
    common = {"enabled", "mode", "workers", "upstreams"}
    assert set(schema["notes"]) == common | {"max_notes", "greeting"}
    notes = load(plugin_defaults=defaults).section("notes")
    assert dict(notes) == {
        "enabled": True,
        "mode": "inprocess",
        "workers": 1,
        "upstreams": [],
        "max_notes": 100,
        "greeting": "hello",
    }


def test_plugin_section_from_file_and_env(installed_test_plugins: Path, tmp_path: Path) -> None:
    settings = load(
        "[notes]\nmax_notes = 5\ngreeting = 'hey'\n",
        tmp_path,
        environ={"FITTRACKER__NOTES__GREETING": "hi there", "FITTRACKER__NOTES__ENABLED": "off"},
        plugin_defaults=notes_defaults(),
    )
    notes = dict(settings.section("notes"))
    assert {k: notes[k] for k in ("enabled", "max_notes", "greeting")} == {
        "enabled": False,
        "max_notes": 5,
        "greeting": "hi there",
    }


@pytest.mark.parametrize(
    ("toml", "environ", "expected"),
    [
        ("[notes]\nmax_notes = 0", {}, "notes.max_notes: 0 is below the minimum 1"),
        ("[notes]\nmax_notes = 'lots'", {}, "notes.max_notes: expected an integer, got 'lots'"),
        ("[notes]\ngreeting = 5", {}, "notes.greeting: expected a string, got 5"),
        ("[notes]\nenabled = 'no'", {}, "notes.enabled: expected a boolean, got 'no'"),
        ("[notes]\ncolour = 'red'", {}, "unknown key notes.colour; valid: enabled, greeting, max_notes"),
        ("", {"FITTRACKER__NOTES__MAX_NOTES": "0"}, "FITTRACKER__NOTES__MAX_NOTES: notes.max_notes: 0"),
    ],
)
def test_plugin_section_validation(
    installed_test_plugins: Path, tmp_path: Path, toml: str, environ: dict[str, str], expected: str
) -> None:
    message = config_error(text=toml, tmp_path=tmp_path, environ=environ, plugin_defaults=notes_defaults())
    assert expected in message


def test_unknown_plugin_section_lists_plugins(installed_test_plugins: Path, tmp_path: Path) -> None:
    message = config_error(
        text="[nots]\nenabled = false", tmp_path=tmp_path, plugin_defaults=notes_defaults()
    )
    assert "unknown section [nots]" in message and "notes" in message


def test_sections_of_filtered_out_plugins_stay_valid(installed_test_plugins: Path, tmp_path: Path) -> None:
    """One config file serves processes that each load only some plug-ins."""
    found = discover(environ={"FITTRACKER_PLUGINS": "users"})
    assert "notes" not in found.plugins
    file = tmp_path / "shared.toml"
    file.write_text("[notes]\nmax_notes = 7\n", encoding="utf-8")
    settings = load_settings(build_schema(found.config_defaults()), file, environ={})
    assert settings.section("notes")["max_notes"] == 7


def test_plugin_named_like_a_core_section_is_refused() -> None:
    with pytest.raises(ConfigError, match="'server' clashes with the core config section"):
        build_schema({"server": {}})


async def test_enabled_plugin_is_in_the_app(installed_test_plugins: Path, make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"], config={"notes": {"greeting": "howdy"}})
    assert set(client.app[RUNTIME].contexts) == {"notes"}
    resp = await client.get("/api/v1/notes/stats")
    assert resp.status == 200
    assert (await resp.json())["greeting"] == "howdy"


@pytest.mark.parametrize(
    "config",
    [{"notes": {"enabled": False}}, {"plugins": {"disabled": ["notes"]}}],
    ids=["notes.enabled", "plugins.disabled"],
)
async def test_disabled_plugin_is_left_out(
    installed_test_plugins: Path, make_client: MakeClient, config: dict[str, dict[str, Any]]
) -> None:
    client = await make_client(plugins=["notes"], config=config)
    assert client.app[RUNTIME].contexts == {}
    assert (await client.get("/api/v1/notes/stats")).status == 404
    assert (await client.get("/api/v1/notes/health")).status == 404
    services = await (await client.get("/health/services")).json()
    assert "notes" not in services["services"]
    spec = await (await client.get("/api/v1/openapi.json")).json()
    assert not any(path.startswith("/api/v1/notes") for path in spec["paths"])


# --- config/default.toml -----------------------------------------------------------------------


def test_default_toml_lists_every_key_with_its_default() -> None:
    """The shipped example stays current: every core key (and every key of each built-in
    plug-in section it shows) with exactly the default the code declares."""
    document = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))
    found = discover(environ={})  # the installed (built-in) plug-ins
    schema = build_schema(found.config_defaults())
    missing = set(CORE_DEFAULTS) - set(document)
    assert not missing, f"default.toml lacks the core sections {missing}"
    unknown = set(document) - set(schema)
    assert not unknown, f"default.toml has sections no core part or installed plug-in declares: {unknown}"
    for section, values in document.items():
        keys = schema[section]
        assert set(values) == set(keys), f"[{section}] in default.toml differs from the code"
        for key, setting in keys.items():
            value = values[key]
            assert value == setting.default, f"{section}.{key}: {value!r} != {setting.default!r}"
            assert type(value) is type(setting.default), f"{section}.{key}: type differs"
    # and it loads, of course
    assert load_settings(schema, DEFAULT_TOML, environ={}).section("server")["port"] == 8080


# --- the command line --------------------------------------------------------------------------


def cli_env(plugins_site: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    if plugins_site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(plugins_site), str(TEST_PLUGINS_DIR)])
    return env


def run_cli_concurrently(
    commands: Mapping[str, list[str]], env: dict[str, str], cwd: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run several ``python -m fittracker ...`` at once (each spends ~1 s importing)."""
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "fittracker", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        for name, args in commands.items()
    }
    done = {}
    for name, proc in running.items():
        out, err = proc.communicate(timeout=60)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


def test_config_check_command(installed_test_plugins: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[server]\nport = 9000\n[notes]\nmax_notes = 3\ngreeting = 'yo'\n")
    bad_plugin = tmp_path / "bad-plugin.toml"
    bad_plugin.write_text("[notes]\nmax_notes = 0\n")
    bad_core = tmp_path / "bad-core.toml"
    bad_core.write_text("[server]\nprot = 9000\n")
    needs_missing = tmp_path / "required.toml"
    needs_missing.write_text("[plugins]\nrequired = ['notes', 'nonexistent']\n")
    results = run_cli_concurrently(
        {
            "default": ["config", "check", str(DEFAULT_TOML)],
            "no file": ["config", "check"],
            "good": ["config", "check", str(good)],
            "bad plugin": ["config", "check", str(bad_plugin)],
            "bad core": ["config", "check", str(bad_core)],
            "required": ["config", "check", str(needs_missing)],
        },
        cli_env(installed_test_plugins),
        tmp_path,
    )
    for name in ("default", "no file", "good"):
        assert results[name].returncode == 0, (name, results[name].stderr)
    assert results["default"].stdout.startswith(f"{DEFAULT_TOML}: OK")
    assert results["no file"].stdout.startswith("defaults: OK")

    # The error is the last line of stderr, naming the file, the key and what is valid. (The
    # fixture's "broken" plug-in logs its own import traceback first; that is expected.)
    bad = results["bad plugin"]
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines()[-1] == (
        f"fittracker: configuration error: {bad_plugin}: notes.max_notes: 0 is below the minimum 1"
    )
    bad = results["bad core"]
    assert bad.returncode == 2 and bad.stdout == ""
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fittracker: configuration error: {bad_core}: unknown key server.prot; valid: ")
    assert "port" in last and "host" in last
    # a required plug-in that is not installed stops start-up, so the check refuses it too
    bad = results["required"]
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "fittracker: configuration error: plugins.required: not loaded: "
        "nonexistent: not installed or filtered out"
    )


def test_serve_with_a_bad_config_exits_2_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'eighty'\n")
    result = subprocess.run(
        [sys.executable, "-m", "fittracker", "serve", "--config", str(bad), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{bad}: server.port: expected an integer, got 'eighty'" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
