"""Random ids: 128-bit hex, never repeated, not even across a fork."""

from __future__ import annotations

import os
import re

from fittracker.ids import random_hex


def test_ids_are_32_hex_digits_and_unique() -> None:
    made = [random_hex() for _ in range(20_000)]  # several refills of the pool
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in made)
    assert len(set(made)) == len(made)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    random_hex()  # the pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, random_hex().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert child != random_hex()
