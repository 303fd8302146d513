"""Split mode's process manager: local worker processes for plug-ins, kept ready in the pools.

:class:`Supervisor` spawns ``fittracker worker --plugin NAME`` processes on Unix sockets,
adds them to the router's :class:`~fittracker.router.pool.UpstreamPool` once they are ready,
restarts crashed and hung ones with backoff and a crash-loop guard, drains them on stop, and
replaces them one by one on a rolling restart (SIGHUP).
"""

from fittracker.supervisor.core import Supervisor
from fittracker.supervisor.policy import RestartPolicy

__all__ = ["RestartPolicy", "Supervisor"]
