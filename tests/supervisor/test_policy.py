"""Restart backoff, the crash-loop guard, and how worker output becomes log records."""

from __future__ import annotations

import pytest

from fittracker.supervisor import RestartPolicy
from fittracker.supervisor.process import READY_LINE, describe_exit, log_record


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RestartPolicy(backoff_initial_s=0.5, backoff_max_s=3.0, window_s=60, crash_loop_limit=10)
    assert policy.delay(now=0) == 0
    delays = []
    for t in range(6):
        policy.record_crash(now=t)
        delays.append(policy.delay(now=t))
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_crashes_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(backoff_initial_s=1, window_s=10, crash_loop_limit=5)
    policy.record_crash(now=0)
    policy.record_crash(now=1)
    assert policy.delay(now=2) == 2
    assert policy.delay(now=10.5) == 1  # the first crash aged out
    assert policy.recent_crashes(now=30) == 0


def test_crash_loop_guard_trips_after_the_limit() -> None:
    policy = RestartPolicy(backoff_initial_s=0.1, window_s=60, crash_loop_limit=3, cooldown_s=120)
    for t in range(3):
        policy.record_crash(now=t)
    assert not policy.crash_looping(now=3)
    policy.record_crash(now=3)
    assert policy.crash_looping(now=3)
    assert policy.delay(now=3) == 120
    policy.reset()
    assert not policy.crash_looping(now=4)
    assert policy.delay(now=4) == 0


def test_json_lines_keep_their_fields_and_gain_the_worker() -> None:
    line = '{"level": "INFO", "message": "hi", "worker_id": "wrong"}'
    assert log_record(line, worker_id="notes-1", plugin="notes", stream="stderr") == {
        "level": "INFO",
        "message": "hi",
        "worker_id": "notes-1",
        "plugin": "notes",
    }


@pytest.mark.parametrize("line", ["Traceback (most recent call last):", "{not json", "[1, 2]"])
def test_other_lines_are_wrapped(line: str) -> None:
    assert log_record(line, worker_id="notes-2", plugin="notes", stream="stdout") == {
        "message": line,
        "stream": "stdout",
        "worker_id": "notes-2",
        "plugin": "notes",
    }


def test_exit_descriptions_and_the_ready_line() -> None:
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(-9) == "killed by SIGKILL"
    match = READY_LINE.match("FitTracker worker notes notes-1 ready on unix:///tmp/x/notes-1-1.sock")
    assert match is not None
    assert match["url"] == "unix:///tmp/x/notes-1-1.sock"
