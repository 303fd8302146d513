"""Security headers on every response, and the client address behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'"
)


ResponseHook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def security_headers(hsts: bool, page: bool = False) -> dict[str, str]:
    """The headers every response carries (HTML pages get a looser CSP)."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": PAGE_CSP if page else API_CSP,
    }
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


def make_header_hook(hsts: bool) -> ResponseHook:
    """An ``on_response_prepare`` hook adding ``security_headers`` where a handler set none."""
    for_api, for_pages = security_headers(hsts), security_headers(hsts, page=True)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        is_page = (response.content_type or "").startswith("text/html")
        for name, value in (for_pages if is_page else for_api).items():
            headers.setdefault(name, value)

    return add_headers


class ClientAddress:
    """Finds the client IP, believing ``X-Forwarded-For`` only from trusted proxies."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self._trusted = [ipaddress.ip_network(item, strict=False) for item in trusted]

    def _is_trusted(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:10.0.0.1 on a dual-stack socket is 10.0.0.1
        return any(address in net for net in self._trusted)

    def of(self, request: web.BaseRequest) -> str:
        remote = request.remote or "unknown"
        if not self._trusted or not self._is_trusted(remote):
            return remote
        # Walk right to left: the first hop we do not trust is the client.
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else remote
