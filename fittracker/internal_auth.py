"""The signed internal header: proof that a request to a worker came through a router.

When ``internal.secret`` is configured, the router signs every request it forwards and
workers refuse unsigned ones, so a worker's port is never an open side door. The signature
is an HMAC-SHA256 over the method, the path with its query string, the request id and a
timestamp; a signature older than ``max_age_s`` is refused (no replays long after the fact).
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-FitTracker-Internal"


def _mac(secret: str, method: str, path_qs: str, request_id: str, timestamp: int) -> str:
    message = f"{method.upper()}\n{path_qs}\n{request_id}\n{timestamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, method: str, path_qs: str, request_id: str, now: float | None = None) -> str:
    """The header value for one forwarded request: ``v1:<timestamp>:<hex mac>``."""
    timestamp = int(time.time() if now is None else now)
    return f"v1:{timestamp}:{_mac(secret, method, path_qs, request_id, timestamp)}"


def verify(
    secret: str,
    value: str | None,
    method: str,
    path_qs: str,
    request_id: str,
    *,
    max_age_s: int = 300,
    now: float | None = None,
) -> bool:
    """Whether ``value`` is a fresh, valid signature of this request."""
    if not value:
        return False
    version, _, rest = value.partition(":")
    stamp, _, mac = rest.partition(":")
    if version != "v1" or not stamp.isdigit() or not mac:
        return False
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > max_age_s:
        return False
    return hmac.compare_digest(mac, _mac(secret, method, path_qs, request_id, timestamp))
