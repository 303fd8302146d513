"""Random ids: 32 hex digits (128 bits, like ``uuid4().hex``) from a pool of ``os.urandom``.

Ids are made on hot paths (every event, every logged set): asking the kernel for 16 bytes each
time costs a system call and, worse, a release of the GIL that another thread may hold on to.
The pool asks for 4 KiB at once; the bytes are just as random.
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_offset = 0


def random_hex() -> str:
    """A new random 128-bit id as 32 lower-case hex digits."""
    global _pool, _offset
    with _lock:
        if _offset + 16 > len(_pool):
            _pool, _offset = os.urandom(_POOL_BYTES), 0
        start = _offset
        _offset += 16
        return _pool[start : start + 16].hex()


def _forget_pool() -> None:
    global _pool, _offset
    _pool, _offset = b"", 0


# A forked child must not hand out its parent's next ids.
os.register_at_fork(after_in_child=_forget_pool)
