"""Split mode's router: a reverse proxy per plug-in over a pool of worker upstreams.

``PluginProxy`` forwards HTTP and WebSocket traffic for one plug-in; ``UpstreamPool`` holds
that plug-in's upstreams (filled by the supervisor or from config) and their state.
"""

from fittracker.router.pool import Upstream, UpstreamPool
from fittracker.router.proxy import PluginProxy

__all__ = ["PluginProxy", "Upstream", "UpstreamPool"]
