"""``GET /api/v1/notifications/ws``: the user's live stream over a WebSocket."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import WSMsgType, web
from fittracker_plugins.notifications.connection import CLOSE_WAIT_S, Connection
from fittracker_plugins.notifications.models import StreamQuery, is_notification_id
from fittracker_plugins.notifications.state import Notifications, notifications_of
from fittracker_plugins.notifications.stream import control

from fittracker import NotFound, PluginContext, Unauthorized
from fittracker.auth import bearer_token
from fittracker.http import read_query
from fittracker.openapi import BEARER_OR_QUERY, operation, query_parameters

PATH = "/api/v1/notifications/ws"


async def stream(request: web.Request) -> web.StreamResponse:
    state = notifications_of(request)
    settings = state.ctx.settings
    query = read_query(request, StreamQuery)
    token = bearer_token(request) or query.access_token
    if not token:
        raise Unauthorized("send the access token as a bearer token or as ?access_token=")
    principal = state.ctx.auth.verify(token)  # expired, revoked or invalid: 401 before the upgrade
    ws = web.WebSocketResponse(
        heartbeat=float(settings.get("heartbeat_s", 25.0)),
        max_msg_size=int(settings.get("max_message_bytes", 4096)),
        timeout=CLOSE_WAIT_S,
    )
    await ws.prepare(request)
    conn = Connection(
        ws,
        request.transport,
        principal,
        token,
        queue_size=int(settings.get("send_queue_size", 256)),
        gap_wait_s=float(settings.get("gap_wait_s", 0.25)),
        log=state.ctx.log,
    )
    state.hub.add(conn)  # live messages buffer from here on, so the replay below misses nothing
    conn.start(state.stream, int(query.last_event_id) if query.last_event_id is not None else None)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await _incoming(state, conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                conn.offer(control("error", {"code": "bad_message", "message": "send JSON text messages"}))
    finally:
        state.hub.remove(conn)
        await conn.finish()
    return ws


async def _incoming(state: Notifications, conn: Connection, raw: str) -> None:
    try:
        message: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        message = None
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "ping":
        conn.offer(control("pong", {}))
    elif kind == "read" and is_notification_id(message.get("id")):
        try:
            await state.inbox.mark_read(conn.user_id, message["id"])
        except NotFound as exc:
            conn.offer(control("error", {"code": "not_found", "message": exc.detail, "id": message["id"]}))
    else:
        expected = 'a JSON object: {"type": "ping"} or {"type": "read", "id": "<notification id>"}'
        conn.offer(control("error", {"code": "bad_message", "message": f"expected {expected}"}))


def setup(app: web.Application, ctx: PluginContext) -> None:
    app.router.add_get(PATH, stream)


DESCRIPTION = """\
Upgrades to a WebSocket carrying your live stream. Authenticate with `Authorization: Bearer
<token>` or, from browsers (which cannot set headers on a WebSocket), `?access_token=<token>`.
A missing, invalid, expired or revoked token is refused with 401 before the upgrade; once
connected, the token is re-checked every few seconds and the socket is closed with **4001**
when it expires or is revoked (log in again and reconnect).

Every server message is JSON `{id, type, time, data}`. Stream messages carry `id`, your
stream's increasing sequence number (a string), and are stored so they can be replayed:
`notification` (data: an inbox item), `progress` (your own sets and finished workouts, live
only: not in the inbox) and `notification.read` (data: `{ids, all, read_at}`, read state
changed on another connection). Control messages have `id: null`: `ready` (first message of a
fresh connection, data `{last_event_id}`: where your stream stands), `recovery`, `pong`, `error`.

**Resume**: reconnect with `?last_event_id=<last id received>` to get every stream message
after it, in order, then live ones, with no gap and no duplicate; a
`recovery` message `{recovered: true, replayed, last_event_id}` follows the replay. When
those messages are no longer retained, `{recovered: false, last_event_id}` comes first and
only: reload the inbox (`GET /api/v1/notifications`).

**Client messages** (text, at most 4 KiB by default, else the socket closes with 1009):
`{"type": "ping"}` (answered with `pong`) and `{"type": "read", "id": "<notification id>"}`;
anything else (binary messages included) is answered with an `error` message and the socket
stays open. A frame that breaks the WebSocket protocol itself closes the socket with **1002**
(**1007** for a text message that is not UTF-8). The server pings every ~25 s and drops
peers that stop answering. Each connection has a bounded send queue: a client that does not
keep up is closed with **1013** (try again later) and should resume with `last_event_id`.
A user may hold several connections; each receives everything. Close code 1001 means the
server is shutting down: reconnect and resume.
"""


def openapi() -> dict[str, Any]:
    op = operation(
        "notifications_stream",
        "Your live notification stream (WebSocket)",
        "notifications",
        {"101": {"description": "Switching protocols: the WebSocket is open"}},
        errors=(400, 401, 422),
        parameters=query_parameters(StreamQuery),
        security=BEARER_OR_QUERY,
        description=DESCRIPTION,
    )
    return {"paths": {PATH: {"get": op}}}
