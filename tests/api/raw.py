"""HTTP/1.1 and WebSocket frames written byte for byte on a socket.

For the requests an HTTP client library would "fix" or refuse to send: dot segments and
invalid UTF-8 in the target, a declared length the body never reaches, oversized headers,
WebSocket frames that break the protocol.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from multidict import CIMultiDict
from yarl import URL


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        return orjson.loads(self.body)


def request_head(
    method: str, target: str | bytes, headers: Mapping[str, str] | None = None, *, host: str = "localhost"
) -> bytes:
    """A request line and headers, up to and including the blank line; ``target`` is sent as is.

    ``Connection: close`` unless ``headers`` say otherwise, so each raw request has its own socket.
    """
    line = (
        method.encode() + b" " + (target if isinstance(target, bytes) else target.encode()) + b" HTTP/1.1\r\n"
    )
    fields = {"Host": host, "Connection": "close", **(headers or {})}
    return line + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in fields.items()) + b"\r\n"


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())
    if "Content-Length" in headers:
        body = await reader.readexactly(int(headers["Content-Length"]))
    elif headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
    else:
        body = await reader.read()
    return RawResponse(int(status_line.split()[1]), headers, body)


async def send_raw(base_url: str, head: bytes, body: bytes = b"", *, timeout: float = 10.0) -> RawResponse:
    """Write ``head`` and ``body`` to the server at ``base_url`` and read one response.

    The response is read as soon as it comes, whether or not the server read the whole body.
    """
    url = URL(base_url)
    assert url.host is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(head + body)
        async with asyncio.timeout(timeout):
            # The server may answer (and close) before reading everything: read its answer anyway.
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            return await _read_response(reader)
    finally:
        writer.close()


# --- WebSocket ------------------------------------------------------------------------------------

TEXT, BINARY, CLOSE, PING = 0x1, 0x2, 0x8, 0x9


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """A client frame (masked, as RFC 6455 requires), with whatever flags it is given."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    if size < 126:
        head = bytes([first, 0x80 | size])
    elif size < 1 << 16:
        head = bytes([first, 0x80 | 126]) + struct.pack(">H", size)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack(">Q", size)
    key = os.urandom(4)
    mask = (key * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(size, "big")
    return head + key + masked


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack(">H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack(">Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(size)


async def websocket_close_code(
    base_url: str, path: str, token: str, frames: list[bytes], *, timeout: float = 10.0
) -> int | None:
    """Open a WebSocket, write ``frames`` as they are, and return the server's close code
    (None if the connection ended without a close frame)."""
    url = URL(base_url)
    assert url.host is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    key = base64.b64encode(os.urandom(16)).decode()
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
        "Authorization": f"Bearer {token}",
    }
    try:
        async with asyncio.timeout(timeout):
            writer.write(request_head("GET", path, headers))  # its Connection: Upgrade wins
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            writer.write(b"".join(frames))
            while True:
                try:
                    opcode, payload = await _read_frame(reader)
                except asyncio.IncompleteReadError:
                    return None
                if opcode == CLOSE:
                    return int(struct.unpack(">H", payload[:2])[0]) if len(payload) >= 2 else None
    finally:
        writer.close()
