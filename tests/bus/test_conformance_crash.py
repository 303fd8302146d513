"""Real crashes, on every backend: processes running a bus are killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import fittracker.bus
from fittracker.bus import Event

from .harness import BusHarness, MakeBus
from .helpers import collector, eventually, wait_until

# The directory holding the ``fittracker`` package the tests import, for the subprocesses.
PACKAGE_ROOT = Path(fittracker.bus.__file__).resolve().parents[2]

# argv[1] is the harness's JSON description of the bus (backend, where, options).
OPEN_BUS = """
import asyncio, json, sys
from pathlib import Path
from fittracker.bus import open_bus

spec = json.loads(sys.argv[1])

def make_bus():
    return open_bus(spec["backend"], data_dir=Path(spec["data_dir"]), url=spec["url"], **spec["options"])
"""

PUBLISH_THEN_HANG = (
    OPEN_BUS
    + """
async def main():
    bus = make_bus()
    event = await bus.publish("crash.test", {"n": 1}, source="/crash")
    print(event.id, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""
)

HANG_IN_HANDLER = (
    OPEN_BUS
    + """
async def handle(event):
    print(event.id, flush=True)
    await asyncio.sleep(60)

async def main():
    bus = make_bus()
    bus.subscribe("g", {"crash.test": handle})
    await bus.start()
    await asyncio.sleep(60)

asyncio.run(main())
"""
)


async def run_until_line_then_kill(script: str, spec: str) -> str:
    """Run ``script`` in a new interpreter, wait for its first line, then SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, spec, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return line.decode().strip()


async def test_event_published_just_before_a_crash_is_handled_after_restart(
    make_bus: MakeBus, bus_harness: BusHarness
) -> None:
    event_id = await run_until_line_then_kill(PUBLISH_THEN_HANG, bus_harness.spec())
    assert event_id
    got: list[Event] = []
    bus = make_bus()
    bus.subscribe("g", {"crash.test": collector(got)})
    await bus.start()
    await wait_until(lambda: [e.id for e in got] == [event_id])
    assert got[0].data == {"n": 1}


async def test_consumer_killed_inside_its_handler_is_taken_over(
    make_bus: MakeBus, bus_harness: BusHarness
) -> None:
    publisher = make_bus()
    sent = await publisher.publish("crash.test", {"n": 1}, source="/t")
    assert await run_until_line_then_kill(HANG_IN_HANDLER, bus_harness.spec()) == sent.id
    assert await bus_harness.pending("g") == [1]

    got: list[Event] = []
    successor = make_bus(visibility_timeout=0.2)
    successor.subscribe("g", {"crash.test": collector(got)})
    await successor.start()
    await wait_until(lambda: got == [sent])

    async def nothing_pending() -> bool:
        return await bus_harness.pending("g") == []

    await eventually(nothing_pending)
