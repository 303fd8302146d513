"""Split mode: a plug-in in a worker process reaches other plug-ins through ``ctx.services``.

Workers load the TOML file, not the ``serve`` command's flags: the router must tell them where
it really listens (here ``--port 0`` while the file names a port nobody listens on).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from fittracker.server import bind_sockets, internal_url
from tests.deployments import LISTENING, ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_worker_plugin_calls_the_router_through_services(
    installed_test_plugins: Path, tmp_path: Path
) -> None:
    config = tmp_path / "notes.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {free_port()}\nshutdown_timeout = 5.0\n'
        '[ratelimit]\nenabled = false\n[log]\nlevel = "WARNING"\n'
        '[internal]\nsecret = "services-test-secret"\n'
        '[notes]\nmode = "process"\nworkers = 1\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    env["PYTHONPATH"] = os.pathsep.join([str(installed_test_plugins), str(ROOT / "tests" / "plugins")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "fittracker", "serve", "--config", str(config), "--port", "0",
         "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        match = LISTENING.search(proc.stdout.readline())
        assert match, "the split server did not start"
        base = match.group(1)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/health/services") as resp:
                notes = (await resp.json())["services"]["notes"]
            assert notes["mode"] == "process" and notes["workers"][0]["state"] == "ready"
            async with session.get(f"{base}/health") as resp:
                assert resp.status == 200
                service = (await resp.json())["service"]
            async with session.get(f"{base}/api/v1/notes/core-health") as resp:
                assert resp.status == 200, await resp.text()
                assert await resp.json() == {"status": 200, "service": service}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:{port}"),
        ("0.0.0.0", "http://127.0.0.1:{port}"),
        ("::1", "http://[::1]:{port}"),
        ("::", "http://[::1]:{port}"),
    ],
)
def test_internal_url_of_a_bound_socket(host: str, expected: str) -> None:
    """Internal calls go to a loopback address when the server listens on a wildcard."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        socks = bind_sockets(host, 0)
    except OSError as exc:
        pytest.skip(f"cannot listen on {host}: {exc}")
    try:
        assert [s.family for s in socks] == [family]
        port = socks[0].getsockname()[1]
        assert internal_url(socks[0]) == expected.format(port=port)
    finally:
        for sock in socks:
            sock.close()
