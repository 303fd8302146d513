"""The bad input catalogue (issue #8): malformed, oversized and hostile requests, each a test,
against the real plug-in endpoints in the single process AND in split mode (``api`` fixture).

Every case asserts a specific 4xx answered as RFC 9457 ``application/problem+json`` and that
nothing was stored: everything the user could have changed (workouts and sets, routines and
ratings, custom exercises, profile, notification preferences, devices, scheduled
notifications, follows) is read back through the API before and after and must be the same.
Requests go out byte for byte (tests/api/raw.py) where an HTTP client would "fix" them. A few
never reach the application: aiohttp's HTTP parser refuses them first, and the connection
handler answers a problem and closes the connection (``test_refused_by_the_http_parser``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import WSMsgType
from multidict import CIMultiDict

from tests.api.raw import CLOSE, PING, TEXT, RawResponse, frame, request_head, send_raw, websocket_close_code
from tests.api.test_journeys import BENCH, signup
from tests.api.test_notifications_live import connect
from tests.deployments import LiveClient
from tests.helpers import DEFAULT_PASSWORD, auth
from tests.spec import check_response


@pytest.fixture
def api(live_api: LiveClient) -> LiveClient:
    """Both deployments as real servers shared by the session: this catalogue has hundreds of
    small cases, and building an application for each took most of its time."""
    return live_api


PROBLEM_BASE = "https://fittracker.dev/problems/"
JSON = "application/json"
LIMIT = 1_048_576  # [server] max_body_bytes of config/default.toml, which both deployments use
WS = "/api/v1/notifications/ws"
SEND_AT = (datetime.now(UTC) + timedelta(days=30)).isoformat(timespec="seconds")

ROUTINE = {
    "name": "Seed routine",
    "days": [{"name": "A", "exercises": [{"exercise_id": BENCH, "sets": 3, "reps": 5}]}],
}
EXERCISE = {"name": "Seed press", "category": "strength", "primary_muscles": ["chest"]}
# Every endpoint that reads a JSON body, with a body it accepts: the cases change one thing.
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "register": (
        "POST",
        "/api/v1/auth/register",
        {"email": "{new_email}", "password": DEFAULT_PASSWORD, "name": "N"},
    ),
    "login": ("POST", "/api/v1/auth/login", {"email": "{email}", "password": DEFAULT_PASSWORD}),
    "workout": ("POST", "/api/v1/workouts", {"name": "Legs"}),
    "workout edit": ("PATCH", "/api/v1/workouts/{workout}", {"name": "Renamed"}),
    "set": ("POST", "/api/v1/workouts/{workout}/sets", {"exercise_id": BENCH, "reps": 5, "weight_kg": 80}),
    "set edit": ("PATCH", "/api/v1/workouts/{workout}/sets/{set}", {"reps": 6}),
    "routine": ("POST", "/api/v1/routines", ROUTINE),
    "routine edit": ("PATCH", "/api/v1/routines/{routine}", {"name": "Renamed"}),
    "rating": ("PUT", "/api/v1/routines/{template}/rating", {"stars": 4}),
    "exercise": ("POST", "/api/v1/exercises", {**EXERCISE, "name": "Other press"}),
    "exercise edit": ("PATCH", "/api/v1/exercises/{exercise}", {"name": "Renamed press"}),
    "profile": ("PATCH", "/api/v1/profiles/me", {"bio": "hello", "weight_kg": 70}),
    "preferences": ("PUT", "/api/v1/notifications/preferences", {"timezone": "Europe/Paris"}),
    "device": (
        "POST",
        "/api/v1/notifications/devices",
        {"platform": "webhook", "token": "http://127.0.0.1:9/hook"},
    ),
    "scheduled": (
        "POST",
        "/api/v1/notifications/scheduled",
        {"category": "reminders", "title": "t", "body": "b", "send_at": SEND_AT},
    ),
}


# --- the user, what they stored, and the answer -------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """A signed-up user with one of everything a bad request could try to change."""

    user_id: str
    email: str
    token: str
    workout: str
    set: str
    routine: str
    exercise: str
    template: str  # a built-in routine they rated
    new_email: str = field(default_factory=lambda: f"new-{uuid.uuid4().hex[:12]}@example.com")

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)

    def fill(self, text: str) -> str:
        for name in ("workout", "set", "routine", "exercise", "template", "user_id", "new_email", "email"):
            text = text.replace("{" + name + "}", getattr(self, name))
        return text

    def fill_bytes(self, body: bytes) -> bytes:
        return self.fill(body.decode("latin-1")).encode("latin-1")


async def seed(api: Any) -> User:
    reg = await signup(api, "Catalogue User")
    headers = auth(reg["access_token"])

    async def created(path: str, body: dict[str, Any]) -> str:
        resp = await api.post(path, headers=headers, json=body)
        assert resp.status == 201, await resp.text()
        ident: str = (await resp.json())["id"]
        return ident

    workout = await created("/api/v1/workouts", {"name": "Seed"})
    set_id, routine, exercise = await asyncio.gather(
        created(f"/api/v1/workouts/{workout}/sets", {"exercise_id": BENCH, "reps": 5, "weight_kg": 60}),
        created("/api/v1/routines", ROUTINE),
        created("/api/v1/exercises", EXERCISE),
    )
    resp = await api.get("/api/v1/routines?template=true&limit=1", headers=headers)
    template: str = (await resp.json())["items"][0]["id"]
    resp = await api.put(f"/api/v1/routines/{template}/rating", headers=headers, json={"stars": 3})
    assert resp.status == 200, await resp.text()
    user = reg["user"]
    return User(user["id"], user["email"], reg["access_token"], workout, set_id, routine, exercise, template)


async def stored(api: Any, who: User) -> dict[str, Any]:
    """Everything of ``who`` that a request could change, read back through the API."""
    paths = [
        "/api/v1/auth/me",
        "/api/v1/profiles/me",
        "/api/v1/workouts?limit=100",
        f"/api/v1/workouts/{who.workout}",
        "/api/v1/routines?mine=true&limit=100",
        f"/api/v1/routines/{who.template}/rating",
        "/api/v1/exercises?limit=1",  # its total counts the custom exercises too
        f"/api/v1/exercises/{who.exercise}",
        f"/api/v1/users/{who.user_id}/following",
        "/api/v1/notifications/preferences",
        "/api/v1/notifications/devices",
        "/api/v1/notifications/scheduled",
    ]

    async def read(path: str) -> Any:
        resp = await api.get(path, headers=who.headers)
        assert resp.status == 200, (path, await resp.text())
        return await resp.json()

    return dict(zip(paths, await asyncio.gather(*(read(p) for p in paths)), strict=True))


def base_url(api: Any) -> str:
    return str(api.base_url if isinstance(api, LiveClient) else api.make_url("")).rstrip("/")


async def answer(resp: aiohttp.ClientResponse | RawResponse) -> RawResponse:
    if isinstance(resp, RawResponse):
        return resp
    return RawResponse(resp.status, CIMultiDict(resp.headers), await resp.read())


def check_problem(resp: RawResponse, status: int) -> dict[str, Any]:
    """``resp`` is an RFC 9457 problem with ``status``; returns its body."""
    assert resp.status == status, resp.body[:500]
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert {"type", "title", "status", "detail", "request_id"} <= set(body)
    assert body["status"] == status and body["type"].startswith(PROBLEM_BASE)
    assert body["title"] and body["detail"]
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return body


def check_spec(api: Any, method: str, target: str, resp: RawResponse) -> None:
    """Raw requests bypass the split client's OpenAPI check (the single app checks server-side)."""
    if isinstance(api, LiveClient) and resp.content_type.endswith("json"):
        template = api._template(target)
        if template is not None:
            api.violations.extend(check_response(api.spec, method, template, resp.status, resp.json()))


async def still_serving(api: Any) -> None:
    resp = await send_raw(base_url(api), request_head("GET", "/health"))
    assert resp.status == 200


# --- one bad request ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bad:
    """One bad request. ``target`` and ``body`` may name the user's things: {workout}, {set},
    {routine}, {exercise}, {template}, {user_id}, {email}, {new_email} (an address nobody has)."""

    method: str
    target: str
    status: int
    body: bytes | None = None
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)


def sent_to(endpoint: str, body: bytes, status: int = 400, **kw: Any) -> Bad:
    method, target, _ = ENDPOINTS[endpoint]
    return Bad(method, target, status, body, **kw)


def with_field(endpoint: str, name: str, token: bytes | Any, status: int = 422) -> Bad:
    """The endpoint's valid body with ``name`` set to ``token`` (raw JSON text when bytes)."""
    method, target, valid = ENDPOINTS[endpoint]
    raw = token if isinstance(token, bytes) else json.dumps(token).encode()
    body = json.dumps({**valid, name: "@@TOKEN@@"}).encode().replace(b'"@@TOKEN@@"', raw)
    return Bad(method, target, status, body)


def with_body(endpoint: str, body: dict[str, Any], status: int = 422) -> Bad:
    method, target, _ = ENDPOINTS[endpoint]
    return Bad(method, target, status, json.dumps(body).encode())


async def send(api: Any, who: User, bad: Bad) -> RawResponse:
    target = who.fill(bad.target)
    headers = {**who.headers, **bad.headers}
    if bad.content_type is not None:
        headers["Content-Type"] = bad.content_type
    body = who.fill_bytes(bad.body) if bad.body is not None else b""
    if bad.body is not None:
        headers.setdefault("Content-Length", str(len(body)))
    resp = await send_raw(base_url(api), request_head(bad.method, target, headers), body)
    check_spec(api, bad.method, target, resp)
    return resp


async def refused(api: Any, bad: Bad) -> dict[str, Any]:
    """Send ``bad`` as a seeded user: a ``bad.status`` problem, and nothing stored."""
    who = await seed(api)
    before = await stored(api, who)
    problem = check_problem(await send(api, who, bad), bad.status)
    await nothing_stored(api, who, before)
    return problem


async def nothing_stored(api: Any, who: User, before: dict[str, Any]) -> None:
    assert await stored(api, who) == before
    # ...and no account: the address the register cases used is still free.
    body = {"email": who.new_email, "password": DEFAULT_PASSWORD, "name": "N"}
    assert (await api.post("/api/v1/auth/register", json=body)).status == 201


def cases(table: dict[str, Bad]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("bad", table.values(), ids=table.keys())


async def test_the_valid_bodies_are_accepted(api: Any) -> None:
    """The control: each endpoint takes its valid body, so the cases' refusals are about what they change."""
    who = await seed(api)
    for name, (method, target, body) in ENDPOINTS.items():
        headers = {} if name in ("register", "login") else who.headers
        payload = json.loads(who.fill(json.dumps(body)))
        resp = await api.request(method, who.fill(target), headers=headers, json=payload)
        assert resp.status in (200, 201), (name, await resp.text())


# --- JSON that is not JSON, or not an object -------------------------------------------------------

SYNTAX = {
    "malformed": sent_to("workout", b'{"name": }'),
    "truncated": sent_to("set", b'{"exercise_id": "Barbell_Squat", "reps": 5, "weig'),
    "empty body": sent_to("routine", b""),
    "blank body": sent_to("profile", b" \r\n\t "),
    "single quotes": sent_to("login", b"{'email': '{email}', 'password': 'x'}"),
    "trailing garbage": sent_to("workout", b'{"name": "Legs"} trailing'),
    "a comment": sent_to("device", b'{"platform": "webhook" /* hi */, "token": "x"}'),
    "NUL after the document": sent_to("workout", b'{"name": "Legs"}\x00'),
    "invalid UTF-8": sent_to(
        "register", b'{"email": "{new_email}", "password": "\xff\xfe\xfd\xfc\xfb\xfa", "name": "N"}'
    ),
    "overlong UTF-8": sent_to("workout", b'{"name": "\xc0\xaf\xc0\xaf"}'),
    "UTF-8 byte order mark": sent_to("workout edit", b'\xef\xbb\xbf{"name": "Legs"}'),
    "UTF-16": sent_to("routine edit", '{"name": "Legs"}'.encode("utf-16")),
    "lone surrogate escape": sent_to("exercise edit", b'{"name": "\\ud800 press"}'),
    "100k nested arrays": sent_to("workout", b"[" * 100_000 + b"]" * 100_000),
    "100k nested objects": sent_to("set", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    "2000 nested arrays in a field": sent_to("exercise", b'{"name": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
    "an array": sent_to("workout", b'[{"name": "Legs"}]', 422),
    "a string": sent_to("set", b'"reps"', 422),
    "a number": sent_to("profile", b"42", 422),
}


@cases(SYNTAX)
async def test_json_syntax(api: Any, bad: Bad) -> None:
    await refused(api, bad)


async def test_malformed_json_everywhere(api: Any) -> None:
    """Every endpoint that reads a JSON body refuses malformed JSON alike."""
    who = await seed(api)
    before = await stored(api, who)
    for endpoint in ENDPOINTS:
        problem = check_problem(await send(api, who, sent_to(endpoint, b'{"oops": ')), 400)
        assert problem["type"] == PROBLEM_BASE + "bad-request" and "malformed JSON" in problem["detail"]
    await nothing_stored(api, who, before)


# --- content types --------------------------------------------------------------------------------

CONTENT_TYPES = {
    "text/plain": sent_to("workout", b'{"name": "Legs"}', 415, content_type="text/plain"),
    "form-encoded": sent_to(
        "login", b"email={email}&password=x", 415, content_type="application/x-www-form-urlencoded"
    ),
    "multipart": sent_to(
        "set",
        b'--b\r\nContent-Disposition: form-data; name="reps"\r\n\r\n5\r\n--b--\r\n',
        415,
        content_type="multipart/form-data; boundary=b",
    ),
    "missing": sent_to("profile", b'{"bio": "x"}', 415, content_type=None),
    "XML": sent_to("routine", b"<routine/>", 415, content_type="application/xml"),
    "JSON-like": sent_to("preferences", b'{"timezone": "UTC"}', 415, content_type="text/json"),
    "JSON suffix": sent_to("device", b"{}", 415, content_type="application/merge-patch+json"),
}


@cases(CONTENT_TYPES)
async def test_content_types(api: Any, bad: Bad) -> None:
    problem = await refused(api, bad)
    assert problem["type"] == PROBLEM_BASE + "unsupported-media-type"


# --- sizes and codings ------------------------------------------------------------------------------


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6)


SIZES = {
    "2 MB body": sent_to("set", b'{"exercise_id": "' + b"x" * 2 * LIMIT + b'", "reps": 5}', 413),
    "gzip bomb (8 KB, 8 MB inflated)": sent_to(
        "workout",
        gzipped(b'{"name": "' + b" " * 8 * LIMIT + b'"}'),
        413,
        headers={"Content-Encoding": "gzip"},
    ),
    "gzip header on a plain body": sent_to("routine", b'{"name": "x"}', headers={"Content-Encoding": "gzip"}),
    "deflate header on a plain body": sent_to(
        "profile", b'{"bio": "x"}', headers={"Content-Encoding": "deflate"}
    ),
    "gzip that breaks off": sent_to(
        "workout", gzipped(b'{"name": "Legs"}')[:12], headers={"Content-Encoding": "gzip"}
    ),
}


@cases(SIZES)
async def test_sizes_and_codings(api: Any, bad: Bad) -> None:
    await refused(api, bad)


@pytest.mark.parametrize("endpoint", ["register", "set"])
async def test_a_declared_huge_body_is_refused_before_it_is_sent(api: Any, endpoint: str) -> None:
    """``Content-Length: 100 MB`` and only 1 KB sent: a 413 at once, not a wait for the rest."""
    bad = sent_to(endpoint, b"{" + b" " * 1023, 413, headers={"Content-Length": str(100 * LIMIT)})
    started = time.monotonic()
    problem = await refused(api, bad)
    assert time.monotonic() - started < 5
    assert str(LIMIT) in problem["detail"]


async def test_a_streamed_body_over_the_limit(api: Any) -> None:
    """No Content-Length (chunked): the limit holds all the same."""
    who = await seed(api)
    before = await stored(api, who)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(3):
            yield b"x" * LIMIT

    resp = await api.post("/api/v1/workouts", headers={**who.headers, "Content-Type": JSON}, data=chunks())
    check_problem(await answer(resp), 413)
    await nothing_stored(api, who, before)


async def test_compressed_bodies_are_read_in_both_deployments(api: Any) -> None:
    """The control for the codings above: a correct gzip body is decoded (the router forwards it decoded)."""
    who = await seed(api)
    for coding, data in (
        ("gzip", gzipped(b'{"name": "Zipped"}')),
        ("deflate", zlib.compress(b'{"name": "Z"}')),
    ):
        headers = {**who.headers, "Content-Type": JSON, "Content-Encoding": coding}
        resp = await api.post("/api/v1/workouts", headers=headers, data=data)
        assert resp.status == 201, await resp.text()


async def test_bad_codings_do_not_take_the_plugin_down(api: Any) -> None:
    """Regression: in split mode the router blamed the worker for a body it could not decode
    itself (502), so a few such requests opened the circuit breaker for everybody."""
    who = await seed(api)
    bad = sent_to("workout", b'{"name": "x"}', headers={"Content-Encoding": "gzip"})
    for _ in range(8):
        check_problem(await send(api, who, bad), 400)
    resp = await api.post("/api/v1/workouts", headers=who.headers, json={"name": "Still here"})
    assert resp.status == 201, await resp.text()


# --- numbers ------------------------------------------------------------------------------------------

NON_FINITE = {
    "NaN weight": with_field("set", "weight_kg", b"NaN", 400),
    "Infinity reps": with_field("set", "reps", b"Infinity", 400),
    "-Infinity RPE": with_field("set", "rpe", b"-Infinity", 400),
    "1e400 body weight": with_field("profile", "weight_kg", b"1e400", 400),
    "-1e400 weight on an edit": with_field("set edit", "weight_kg", b"-1e400", 400),
    "400-digit stars": with_field("rating", "stars", b"1" + b"0" * 400, 400),
    "NaN sets in a routine day": sent_to(
        "routine", b'{"name": "R", "days": [{"name": "A", "exercises": [{"exercise_id": "x", "sets": NaN}]}]}'
    ),
}

ABSURD = {
    "reps -1": with_field("set", "reps", -1),
    "reps 10**12": with_field("set", "reps", 10**12),
    "reps 2**64": with_field("set", "reps", 2**64),
    "reps 5.5": with_field("set", "reps", 5.5),
    "reps as a string": with_field("set", "reps", "5"),
    "reps true": with_field("set", "reps", True),
    "weight -0.5 kg": with_field("set", "weight_kg", -0.5),
    "weight 1e9 kg": with_field("set", "weight_kg", 1e9),
    "weight 1e5 lb": Bad(
        "POST",
        "/api/v1/workouts/{workout}/sets",
        422,
        b'{"exercise_id": "Barbell_Squat", "reps": 5, "weight_lb": 1e5}',
    ),
    "RPE 11": with_field("set", "rpe", 11),
    "RPE 7.3": with_field("set", "rpe", 7.3),
    "duration 10**12 s": with_field("set", "duration_s", 10**12),
    "distance -1 m": with_field("set", "distance_m", -1),
    "edit to reps -1": with_field("set edit", "reps", -1),
    "body weight 1e9": with_field("profile", "weight_kg", 1e9),
    "height -1 cm": with_field("profile", "height_cm", -1),
    "6 stars": with_field("rating", "stars", 6),
    "4.5 stars": with_field("rating", "stars", 4.5),
    "day -1 of a routine": with_body("workout", {"routine_id": "{routine}", "day_index": -1}),
    "a workout in year 9999": with_field("workout", "started_at", "9999-12-31T23:59:59-23:59"),
    "a workout in year 1": with_field("workout", "started_at", "0001-01-01T00:00:00+23:59"),
}


@cases({**NON_FINITE, **ABSURD})
async def test_numbers(api: Any, bad: Bad) -> None:
    await refused(api, bad)


LONE_SURROGATE_CURSOR = "WyJcdWQ4MDAiLCAieCJd"  # base64 of ["\ud800", "x"]
QUERIES = {
    "limit -1": "/api/v1/exercises?limit=-1",
    "limit 10**30": "/api/v1/exercises?limit=" + "1" + "0" * 30,
    "limit NaN": "/api/v1/routines?limit=NaN",
    "limit Infinity": "/api/v1/notifications?limit=Infinity",
    "offset -1": "/api/v1/routines/popular?offset=-1",
    "offset 10**12": "/api/v1/exercises?offset=1000000000000",
    "history limit 10**6": f"/api/v1/progress/exercises/{BENCH}?limit=1000000",
    "to 9999-12-31": "/api/v1/workouts?to=9999-12-31",
    "from 0001-01-01": f"/api/v1/progress/exercises/{BENCH}?from=0001-01-01",
    "volume to 0001-01-01": "/api/v1/progress/volume?to=0001-01-01",
    "summary in year 9999": "/api/v1/progress/summary?from=9999-12-31&to=9999-12-31",
    "cursor with a lone surrogate (workouts)": f"/api/v1/workouts?cursor={LONE_SURROGATE_CURSOR}",
    "cursor with a lone surrogate (users)": f"/api/v1/users?cursor={LONE_SURROGATE_CURSOR}",
    "cursor with a lone surrogate (routines)": f"/api/v1/routines?mine=true&cursor={LONE_SURROGATE_CURSOR}",
    "cursor of invalid UTF-8": "/api/v1/workouts?cursor=%ff%fe",
    "status of invalid UTF-8": "/api/v1/workouts?status=%ff",
}


@pytest.mark.parametrize("target", QUERIES.values(), ids=QUERIES.keys())
async def test_query_strings(api: Any, target: str) -> None:
    await refused(api, Bad("GET", target, 422, content_type=None))


# --- operator injection ---------------------------------------------------------------------------

NESTED_DATA: dict[str, Any] = {"a": 1}
for _ in range(20):
    NESTED_DATA = {"a": NESTED_DATA}

INJECTIONS = {
    "login with operator email and password": with_body(
        "login", {"email": {"$gt": ""}, "password": {"$gt": ""}}
    ),
    "login with $ne password": with_body("login", {"email": "{email}", "password": {"$ne": None}}),
    "login with a $where key": with_body("login", {"email": "{email}", "password": "x", "$where": "1"}),
    "register with operator email": with_body(
        "register", {"email": {"$gt": ""}, "password": DEFAULT_PASSWORD, "name": "N"}
    ),
    "register with $where name": with_field("register", "name", {"$where": "sleep(1000)"}),
    "workout name $gt": with_field("workout", "name", {"$gt": ""}),
    "workout routine_id $ne": with_field("workout", "routine_id", {"$ne": None}),
    "set exercise_id $gt": with_field("set", "exercise_id", {"$gt": ""}),
    "set with a $where key": with_field("set", "$where", "1"),
    "routine name $ne": with_field("routine", "name", {"$ne": None}),
    "exercise category $in": with_field("exercise", "category", {"$in": ["strength"]}),
    "exercise edit name $gt": with_field("exercise edit", "name", {"$gt": ""}),
    "profile $set role": with_body("profile", {"$set": {"role": "admin"}}),
    "preferences timezone $ne": with_field("preferences", "timezone", {"$ne": None}),
    "preferences categories $where": with_field("preferences", "categories", {"$where": "1"}),
    "device token $gt": with_field("device", "token", {"$gt": ""}),
    "scheduled data $where": with_field("scheduled", "data", {"$where": "1"}),
    "scheduled data with a nested operator": with_field("scheduled", "data", {"a": {"$gt": ""}}),
    "scheduled data with a dotted key": with_field("scheduled", "data", {"a.b": 1}),
    "scheduled data with a NUL in a key": with_field("scheduled", "data", {"k\x00": 1}),
    "scheduled data with a 2**63 integer": with_field("scheduled", "data", {"n": 2**63}),
    "scheduled data nested 21 deep": with_field("scheduled", "data", NESTED_DATA),
    "timezone with path traversal": with_field("preferences", "timezone", "../../../../etc/passwd"),
    "profile timezone absolute path": with_field("profile", "timezone", "/etc/localtime"),
    "exercise_id of 10 KB": with_field("set", "exercise_id", "a" * 10_000),
    "routine_id of 10 KB": with_field("workout", "routine_id", "a" * 10_000),
    "exercise_id with an RTL override": with_field("set", "exercise_id", "\u202e" + BENCH),
    "exercise_id full-width": with_field(
        "set", "exercise_id", "".join(chr(ord(c) + 0xFEE0) for c in "Barbell_Squat")
    ),
    "name with a zero-width space only": with_field("routine edit", "name", "\u200b"),
}
QUERY_INJECTIONS = {
    "muscle[$gt]": "/api/v1/exercises?muscle[$gt]=",
    "muscle[$ne]": "/api/v1/exercises?muscle[$ne]=x",
    "status[$ne]": "/api/v1/workouts?status[$ne]=x",
    "status as an operator object": "/api/v1/workouts?status=" + quote('{"$ne": null}'),
    "q[$regex]": "/api/v1/users?q[$regex]=.*",
    "$where parameter": "/api/v1/routines?$where=1",
}


@cases(INJECTIONS)
async def test_operator_injection_in_bodies(api: Any, bad: Bad) -> None:
    await refused(api, bad)


@pytest.mark.parametrize("target", QUERY_INJECTIONS.values(), ids=QUERY_INJECTIONS.keys())
async def test_operator_injection_in_query_strings(api: Any, target: str) -> None:
    await refused(api, Bad("GET", target, 422, content_type=None))


async def test_operator_lookalikes_are_literals(api: Any) -> None:
    """Where an operator-looking value is a valid string, it is a literal: it matches nothing."""
    who = await seed(api)
    gt, ne = quote('{"$gt": ""}'), quote('{"$ne": null}')
    for target, items in (
        (f"/api/v1/exercises?muscle={gt}", "items"),
        (f"/api/v1/exercises?q={gt}", "items"),
        (f"/api/v1/users?q={ne}", "items"),
        (f"/api/v1/progress/records?exercise_id={gt}", "items"),
    ):
        resp = await api.get(target, headers=who.headers)
        assert resp.status == 200 and (await resp.json())[items] == [], target
    # ...and a password that looks like an operator is just a wrong password.
    resp = await api.post("/api/v1/auth/login", json={"email": who.email, "password": '{"$ne": null}'})
    check_problem(await answer(resp), 401)


# --- ids in paths ---------------------------------------------------------------------------------

# (method, path with {id}, which of the user's things {id} stands for, a valid body or None)
ID_ENDPOINTS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/workouts/{id}", "workout", None),
    ("PATCH", "/api/v1/workouts/{id}", "workout", {"name": "x"}),
    ("DELETE", "/api/v1/workouts/{id}", "workout", None),
    ("POST", "/api/v1/workouts/{id}/finish", "workout", None),
    ("POST", "/api/v1/workouts/{id}/sets", "workout", {"exercise_id": BENCH, "reps": 5, "weight_kg": 50}),
    ("PATCH", "/api/v1/workouts/{workout}/sets/{id}", "set", {"reps": 6}),
    ("DELETE", "/api/v1/workouts/{workout}/sets/{id}", "set", None),
    ("GET", "/api/v1/routines/{id}", "routine", None),
    ("PUT", "/api/v1/routines/{id}/rating", "template", {"stars": 4}),
    ("POST", "/api/v1/routines/{id}/copy", "routine", None),
    ("DELETE", "/api/v1/routines/{id}", "routine", None),
    ("GET", "/api/v1/exercises/{id}", "exercise", None),
    ("PATCH", "/api/v1/exercises/{id}", "exercise", {"name": "x"}),
    ("DELETE", "/api/v1/exercises/{id}", "exercise", None),
    ("GET", "/api/v1/progress/exercises/{id}", "exercise", None),
    ("GET", "/api/v1/profiles/{id}", "user_id", None),
    ("POST", "/api/v1/users/{id}/follow", "user_id", None),
    ("POST", "/api/v1/notifications/{id}/read", "workout", None),
    ("DELETE", "/api/v1/notifications/devices/{id}", "workout", None),
]


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# How each kind of id is written into the path ({real} is the user's own id of that thing).
IDS = {
    "dot-dot slashes encoded": "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "dot-dot fully encoded": "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "dot-dot backslashes": "..%5c..%5c..%5cwindows%5cwin.ini",
    "dot-dot": "%2e%2e",
    "NUL": "%00",
    "NUL after a real id": "{real}%00",
    "8 KB": "a" * 8000,
    "RTL override before a real id": "%E2%80%AE{real}",
    "zero-width space after a real id": "{real}%E2%80%8B",
    "full-width copy of a real id": "{fullwidth}",
    "emoji": "%F0%9F%92%AA",
    "invalid UTF-8": "%ff%fe",
    "UTF-8 of a surrogate": "%ed%a0%80",
    "operator object": quote('{"$gt": ""}', safe=""),
}


@pytest.mark.parametrize("written", IDS.values(), ids=IDS.keys())
async def test_ids_in_paths(api: Any, written: str) -> None:
    """Every endpoint that takes an id: a 404 problem, nothing changed, nothing read from disk."""
    who = await seed(api)
    before = await stored(api, who)
    for method, path, kind, body in ID_ENDPOINTS:
        real = getattr(who, kind)
        ident = written.replace("{real}", real).replace("{fullwidth}", quote(fullwidth(real)))
        target = who.fill(path.replace("{id}", ident))
        raw = json.dumps(body).encode() if body is not None else None
        bad = Bad(method, target, 404, raw, content_type=JSON if body is not None else None)
        resp = await send(api, who, bad)
        problem = check_problem(resp, 404)
        assert "root:" not in problem["detail"], (method, target)
    await nothing_stored(api, who, before)


DOT_SEGMENTS = [
    "/api/v1/workouts/../../../etc/passwd",
    "/api/v1/workouts/%2e%2e/%2e%2e/auth/me",
    "/api/v1/exercises/./../../../../../etc/passwd",
    "/api/v1/../../../../etc/passwd",
    "/api/v1/workouts/..;/..;/etc/passwd",
]


@pytest.mark.parametrize("target", DOT_SEGMENTS)
async def test_dot_segments_match_no_route(api: Any, target: str) -> None:
    problem = await refused(api, Bad("GET", target, 404, content_type=None))
    assert "root:" not in json.dumps(problem)


# --- refused before the application: aiohttp's HTTP parser ---------------------------------------

PARSER = {
    "a 100 KB header": request_head("GET", "/api/v1/workouts", {"X-Big": "x" * 100_000}),
    "200 headers": request_head("GET", "/api/v1/workouts", {f"X-H{i}": "1" for i in range(200)}),
    "a 10 KB id": request_head("GET", "/api/v1/workouts/" + "a" * 10_000),
    "invalid UTF-8 in the path": request_head("GET", b"/api/v1/workouts/\xff\xfe"),
    "invalid UTF-8 in the query": request_head("GET", b"/api/v1/workouts?status=\xff"),
    "a raw NUL in the path": request_head("GET", b"/api/v1/workouts/a\x00b"),
    "a negative Content-Length": request_head("POST", "/api/v1/workouts", {"Content-Length": "-1"}),
    "a Content-Length of 10**30": request_head(
        "POST", "/api/v1/workouts", {"Content-Length": "1" + "0" * 30}
    ),
    "Content-Length and chunked": request_head(
        "POST", "/api/v1/workouts", {"Content-Length": "2", "Transfer-Encoding": "chunked"}
    ),
}


@pytest.mark.parametrize("head", PARSER.values(), ids=PARSER.keys())
async def test_refused_by_the_http_parser(api: Any, head: bytes) -> None:
    """The HTTP parser refuses these before any middleware runs: still a 400 problem with the
    security headers, on a closed connection; the server goes on answering everybody else."""
    who = await seed(api)
    before = await stored(api, who)
    token = f"Authorization: Bearer {who.token}\r\n".encode()
    resp = await send_raw(base_url(api), head.replace(b"\r\n\r\n", b"\r\n" + token + b"\r\n", 1))
    assert resp.status == 400 and resp.content_type == "application/problem+json", resp.body[:200]
    problem = json.loads(resp.body)
    assert problem["type"].endswith("/bad-http") and problem["request_id"], problem
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers.get("Connection", "").lower() == "close"
    assert who.token not in resp.body.decode(errors="replace")
    await still_serving(api)
    await nothing_stored(api, who, before)


# --- the WebSocket --------------------------------------------------------------------------------


async def ping_pong(ws: Any) -> None:
    await ws.send_json({"type": "ping"})
    while (msg := await ws.receive(timeout=10)).type == WSMsgType.TEXT:
        if msg.json()["type"] == "pong":
            return
    raise AssertionError(f"no pong: {msg.type} {msg.data!r}")


async def first_text(ws: Any) -> dict[str, Any]:
    msg = await ws.receive(timeout=10)
    assert msg.type == WSMsgType.TEXT, (msg.type, msg.data)
    data: dict[str, Any] = msg.json()
    return data


async def nothing_read(api: Any, who: User) -> None:
    """No inbox item was marked read (the seeded user never read one; more may still arrive)."""
    resp = await api.get("/api/v1/notifications?limit=100", headers=who.headers)
    assert [item["read_at"] for item in (await resp.json())["items"] if item["read_at"] is not None] == []


WS_ERRORS: dict[str, str | bytes] = {
    "binary frame": b"\x00\x01\x02",
    "malformed JSON": "{not json",
    "truncated JSON": '{"type": "pi',
    "a JSON array": "[1, 2]",
    "a JSON string": '"ping"',
    "unknown type": '{"type": "explode"}',
    "type of the wrong type": '{"type": 5}',
    "read without an id": '{"type": "read"}',
    "read with a numeric id": '{"type": "read", "id": 5}',
    "read with an operator id": '{"type": "read", "id": {"$gt": ""}}',
    "read with path traversal": '{"type": "read", "id": "../../../etc/passwd"}',
    "NaN": '{"type": "ping", "n": NaN}',
    "nested 1500 deep": "[" * 1500 + "]" * 1500,
}


@pytest.mark.parametrize("message", WS_ERRORS.values(), ids=WS_ERRORS.keys())
async def test_websocket_messages_answered_with_an_error(api: Any, message: str | bytes) -> None:
    """The documented answer: an ``error`` message with code ``bad_message``; the socket stays open."""
    who = await seed(api)
    async with connect(api, "", who.token) as other, connect(api, "", who.token) as ws:
        await first_text(other), await first_text(ws)
        await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
        error = await first_text(ws)
        while error["type"] != "error":  # a notification of the seeded set may come first
            error = await first_text(ws)
        assert error["data"]["code"] == "bad_message"
        await ping_pong(ws)
        await ping_pong(other)
    await nothing_read(api, who)


WS_CLOSES = {
    "text over max_message_bytes": (frame(TEXT, b"x" * 5000), 1009),
    "text over 5 MB": (frame(TEXT, b"x" * 5 * LIMIT), 1009),
    "text that is not UTF-8": (frame(TEXT, b'{"type": "\xff\xfe"}'), 1007),
    "reserved bits set": (frame(TEXT, b'{"type": "ping"}', rsv=0x40), 1002),
    "unknown opcode": (frame(0x3, b"x"), 1002),
    "fragmented ping": (frame(PING, b"x", fin=False), 1002),
    "continuation without a start": (frame(0x0, b"x"), 1002),
    "close with an invalid code": (frame(CLOSE, (999).to_bytes(2, "big")), 1002),
    "ping over 125 bytes": (frame(PING, b"x" * 200), 1002),
}


@pytest.mark.parametrize(("raw", "code"), WS_CLOSES.values(), ids=WS_CLOSES.keys())
async def test_websocket_frames_closed_with_a_code(api: Any, raw: bytes, code: int) -> None:
    """Oversized and malformed frames close the socket with the documented code; the user's
    other socket and everybody else's keep working."""
    who = await seed(api)
    async with connect(api, "", who.token) as other:
        await first_text(other)
        assert await websocket_close_code(base_url(api), WS, who.token, [raw]) == code
        await ping_pong(other)
    await still_serving(api)
    await nothing_read(api, who)
