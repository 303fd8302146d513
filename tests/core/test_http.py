"""Cross-cutting HTTP: request ids, problem+json, security headers, CORS, rate limits, access log."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from fittracker.http.ratelimit import MemoryCounterStore, RateLimiter
from fittracker.http.requestid import accept_or_make
from fittracker.http.security import API_CSP, ClientAddress
from fittracker.log import configure_logging, reset_request_id, set_request_id
from fittracker.runtime import RUNTIME
from tests.conftest import MakeClient
from tests.helpers import auth

NOTES = "/api/v1/notes"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "request_id"}

Client = TestClient[Any, Any]


@pytest.fixture(autouse=True)
def _notes_installed(installed_test_plugins: Path) -> None:
    """Every app here runs the small fixture plug-in only (fast to start, has routes to hit)."""


def token_for(client: Client, user_id: str = "u1") -> str:
    token: str = client.app[RUNTIME].auth.issue(user_id, "user", sid=f"s-{user_id}").token
    return token


async def notes(make_client: MakeClient, **config: dict[str, Any]) -> Client:
    return await make_client(plugins=["notes"], config=config)


async def problem(resp: Any, status: int) -> dict[str, Any]:
    """Check that ``resp`` is an RFC 9457 problem with ``status``, and return its body."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json(content_type=None)
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["type"].startswith("https://fittracker.dev/problems/")
    assert body["title"] and body["detail"]
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return body


# --- request ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("incoming", ["abcd1234", "trace-me.123:4_5", "A" * 128])
async def test_valid_request_id_is_kept(make_client: MakeClient, incoming: str) -> None:
    client = await make_client(plugins=["notes"])
    resp = await client.get("/health", headers={"X-Request-ID": incoming})
    assert resp.status == 200
    assert resp.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [None, "", "short", "has spaces in it", "x" * 300, "semi;colon-1234", "new\\nline-1234", "ünïcode-1234"],
)
async def test_missing_or_invalid_request_id_is_replaced(
    make_client: MakeClient, incoming: str | None
) -> None:
    client = await make_client(plugins=["notes"])
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    first = await client.get("/health", headers=headers)
    second = await client.get("/health", headers=headers)
    made = first.headers["X-Request-ID"]
    assert made != incoming
    assert len(made) == 32 and int(made, 16) >= 0  # a uuid4, hex
    assert second.headers["X-Request-ID"] != made  # fresh for each request


def test_request_id_rules() -> None:
    assert accept_or_make("abcd1234") == "abcd1234"
    assert accept_or_make("abcd1234\n") != "abcd1234\n"  # no trailing newline sneaks through
    assert accept_or_make("abc") != "abc"
    assert accept_or_make("a" * 129) != "a" * 129
    assert accept_or_make(None) != accept_or_make(None)


async def test_request_id_in_problem_bodies(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"])
    resp = await client.get("/no/such/thing", headers={"X-Request-ID": "req-id-404-0001"})
    body = await problem(resp, 404)
    assert body["request_id"] == "req-id-404-0001"
    resp = await client.get("/no/such/thing", headers={"X-Request-ID": "bad id"})
    body = await problem(resp, 404)
    assert body["request_id"] != "bad id" and len(body["request_id"]) == 32


# --- problem+json for every error --------------------------------------------------------------


async def test_404_unknown_paths(make_client: MakeClient) -> None:
    client = await notes(make_client)
    for path in ("/nope", "/api/v1/unknown", f"{NOTES}/no/such/route"):
        body = await problem(await client.get(path), 404)
        assert body["type"].endswith("/not-found")
        assert body["title"] == "Not Found"


async def test_405_wrong_method_has_allow(make_client: MakeClient) -> None:
    client = await notes(make_client)
    resp = await client.delete(NOTES)
    body = await problem(resp, 405)
    assert body["type"].endswith("/method-not-allowed")
    assert set(resp.headers["Allow"].split(",")) >= {"GET", "POST"}
    resp = await client.post("/health")  # a core route too
    await problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


async def test_413_body_over_the_limit(make_client: MakeClient) -> None:
    client = await notes(make_client, server={"max_body_bytes": 2048})
    token = token_for(client)
    big = b'{"text": "' + b"x" * 3000 + b'"}'
    resp = await client.post(NOTES, data=big, headers={**auth(token), "Content-Type": "application/json"})
    body = await problem(resp, 413)
    assert body["type"].endswith("/payload-too-large")
    assert "2048" in body["detail"]

    async def chunks() -> Any:  # no Content-Length: the limit holds for streamed bodies too
        for _ in range(4):
            yield b" " * 1000

    resp = await client.post(
        NOTES, data=chunks(), headers={**auth(token), "Content-Type": "application/json"}
    )
    await problem(resp, 413)
    # just under the limit is fine
    ok = await client.post(NOTES, json={"text": "fits"}, headers=auth(token))
    assert ok.status == 201


async def test_413_on_the_declared_length_before_the_body_comes(make_client: MakeClient) -> None:
    """Regression: a Content-Length over the limit used to be answered only once the limit's
    worth of body had arrived (a client sending slowly held the request open)."""
    client = await notes(make_client, server={"max_body_bytes": 2048})
    rest_never_comes = asyncio.Event()

    async def body() -> Any:
        yield b"{" + b" " * 100
        await rest_never_comes.wait()

    headers = {**auth(token_for(client)), "Content-Type": "application/json", "Content-Length": "100000000"}
    resp = await asyncio.wait_for(client.post(NOTES, data=body(), headers=headers), 5)
    rest_never_comes.set()
    problem_body = await problem(resp, 413)
    assert "2048" in problem_body["detail"]
    assert resp.headers["Connection"] == "close"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_400_body_that_its_coding_cannot_decode(make_client: MakeClient, coding: str) -> None:
    """Regression: ``Content-Encoding: gzip`` on a body that is not gzip was a 500."""
    client = await notes(make_client)
    token = token_for(client)
    headers = {**auth(token), "Content-Type": "application/json", "Content-Encoding": coding}
    resp = await client.post(NOTES, data=b'{"text": "x"}', headers=headers)
    body = await problem(resp, 400)
    assert body["type"].endswith("/bad-request") and "cannot be read" in body["detail"]
    assert resp.headers["Connection"] == "close"  # aiohttp drops the connection: clients must not reuse it
    resp = await client.post(
        NOTES, data=gzip.compress(b'{"text": "zipped"}'), headers={**headers, "Content-Encoding": "gzip"}
    )
    assert resp.status == 201 and (await resp.json())["text"] == "zipped"


@pytest.mark.parametrize(
    ("content_type", "data"),
    [("text/plain", b'{"text": "x"}'), ("application/x-www-form-urlencoded", b"text=x"), (None, b"")],
)
async def test_415_wrong_content_type(make_client: MakeClient, content_type: str | None, data: bytes) -> None:
    client = await notes(make_client)
    headers = auth(token_for(client))
    if content_type:
        headers["Content-Type"] = content_type
    body = await problem(await client.post(NOTES, data=data, headers=headers), 415)
    assert body["type"].endswith("/unsupported-media-type")
    assert "application/json" in body["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": "x"',  # truncated
        b'{"text": }',  # malformed
        b"{'text': 'x'}",  # not JSON quotes
        b'{"text": "\xff\xfe"}',  # invalid UTF-8
        b'{"text": "x", "n": NaN}',  # NaN is not JSON
        b'{"text": "x", "n": Infinity}',
        b"",  # empty
        b"   ",
        b"[" * 2000 + b"]" * 2000,  # nested too deep
        b'{"text": "x"} trailing',
    ],
    ids=["truncated", "malformed", "quotes", "utf8", "nan", "infinity", "empty", "blank", "deep", "trailing"],
)
async def test_400_bad_json(make_client: MakeClient, raw: bytes) -> None:
    client = await notes(make_client)
    headers = {**auth(token_for(client)), "Content-Type": "application/json"}
    body = await problem(await client.post(NOTES, data=raw, headers=headers), 400)
    assert body["type"].endswith("/bad-request")
    assert "errors" not in body


async def test_charset_parameter_is_fine(make_client: MakeClient) -> None:
    client = await notes(make_client)
    headers = {**auth(token_for(client)), "Content-Type": "application/json; charset=utf-8"}
    resp = await client.post(NOTES, data='{"text": "héllo"}'.encode(), headers=headers)
    assert resp.status == 201
    assert (await resp.json())["text"] == "héllo"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 201}, "text"),
        ({}, "text"),
        ({"text": 5}, "text"),
        ([1], "body"),
    ],
)
async def test_422_validation_lists_fields(make_client: MakeClient, payload: Any, field: str) -> None:
    client = await notes(make_client)
    body = await problem(await client.post(NOTES, json=payload, headers=auth(token_for(client))), 422)
    assert body["type"].endswith("/validation")
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == {"field", "message"} and error["message"]
    assert field in [e["field"] for e in body["errors"]]


async def test_500_is_a_problem_without_internals(make_client: MakeClient) -> None:
    client = await notes(make_client)
    body = await problem(await client.get(f"{NOTES}/boom"), 500)
    assert "secret internals" not in json.dumps(body) and "Traceback" not in json.dumps(body)


# --- security headers --------------------------------------------------------------------------


def assert_security_headers(resp: Any) -> None:
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"


async def test_security_headers_on_api_and_error_responses(make_client: MakeClient) -> None:
    client = await notes(make_client)
    responses = [
        await client.get("/health"),
        await client.get(f"{NOTES}/stats"),
        await client.get("/api/v1/openapi.json"),
        await client.get("/nope"),
        await client.delete(NOTES),
        await client.post(NOTES, json={"text": "x"}),  # 401
        await client.get(f"{NOTES}/boom"),
    ]
    for resp in responses:
        assert_security_headers(resp)
        csp = resp.headers["Content-Security-Policy"]
        assert csp == API_CSP
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "Strict-Transport-Security" not in resp.headers


async def test_docs_page_gets_a_page_csp(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"])
    resp = await client.get("/docs")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert_security_headers(resp)
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp


async def test_hsts_only_when_configured(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"], config={"http": {"hsts": True}})
    for resp in (await client.get("/health"), await client.get("/nope")):
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")


# --- CORS --------------------------------------------------------------------------------------

ALLOWED = "https://app.example.com"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    }


async def test_cors_preflight_and_requests(make_client: MakeClient) -> None:
    client = await notes(make_client, http={"cors_origins": [ALLOWED]})
    resp = await client.options(NOTES, headers=preflight(ALLOWED))
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "AUTHORIZATION" in resp.headers["Access-Control-Allow-Headers"].upper()

    resp = await client.options(NOTES, headers=preflight("https://evil.example"))
    await problem(resp, 403)
    assert "Access-Control-Allow-Origin" not in resp.headers

    resp = await client.get(f"{NOTES}/stats", headers={"Origin": ALLOWED})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    # browser code may read the request id (to quote it) and the rate-limit headers
    exposed = {h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert "x-request-id" in exposed
    resp = await client.get(f"{NOTES}/stats", headers={"Origin": "https://evil.example"})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
    # errors from an allowed origin stay readable by the browser
    resp = await client.post(NOTES, json={"text": "x"}, headers={"Origin": ALLOWED})
    assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_no_cors_without_configured_origins(make_client: MakeClient) -> None:
    client = await notes(make_client)
    resp = await client.get(f"{NOTES}/stats", headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.options(NOTES, headers=preflight(ALLOWED))
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert resp.status == 405


# --- rate limiting -----------------------------------------------------------------------------


def limits(global_limit: int, plugin_limit: int, **http: Any) -> dict[str, dict[str, Any]]:
    return {
        "ratelimit": {"enabled": True, "global_limit": global_limit, "plugin_limit": plugin_limit},
        "http": http,
    }


async def test_rate_limit_headers_and_429(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"], config=limits(3, 100))
    for remaining in (2, 1, 0):
        resp = await client.get("/api/v1/openapi.json")
        assert resp.status == 200
        assert resp.headers["RateLimit-Limit"] == "3"
        assert resp.headers["RateLimit-Remaining"] == str(remaining)
        assert 0 < int(resp.headers["RateLimit-Reset"]) <= 900
        assert "Retry-After" not in resp.headers
    resp = await client.get("/api/v1/openapi.json")
    body = await problem(resp, 429)
    assert body["type"].endswith("/rate-limited")
    assert resp.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(resp.headers["Retry-After"]) <= 900
    assert resp.headers["Retry-After"] == resp.headers["RateLimit-Reset"]
    assert_security_headers(resp)
    # a plug-in route counts against the same overall budget
    await problem(await client.get(f"{NOTES}/stats"), 429)


async def test_plugin_limit_is_per_plugin(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"], config=limits(10, 2))
    for remaining in (1, 0):
        resp = await client.get(f"{NOTES}/stats")
        assert resp.status == 200
        assert resp.headers["RateLimit-Limit"] == "2"  # the tighter window is reported
        assert resp.headers["RateLimit-Remaining"] == str(remaining)
    body = await problem(await client.get(f"{NOTES}/stats"), 429)
    assert "plugin" in body["detail"]
    # core routes only count against the overall limit: 3 of 10 used so far
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    assert resp.headers["RateLimit-Limit"] == "10" and resp.headers["RateLimit-Remaining"] == "6"


async def test_authenticated_clients_are_keyed_by_user(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"], config=limits(100, 2, trusted_proxies=["127.0.0.1"]))
    alice, bob = token_for(client, "alice"), token_for(client, "bob")
    alice_again = client.app[RUNTIME].auth.issue("alice", "user", sid="another-session").token

    def from_ip(ip: str, token: str) -> dict[str, str]:
        return {**auth(token), "X-Forwarded-For": ip}

    assert (await client.get(NOTES, headers=from_ip("203.0.113.1", alice))).status == 200
    # the same user from another IP, with another token, shares the budget
    assert (await client.get(NOTES, headers=from_ip("198.51.100.7", alice_again))).status == 200
    await problem(await client.get(NOTES, headers=from_ip("198.51.100.8", alice)), 429)
    # another user, even from the same IP, has a budget of their own
    resp = await client.get(NOTES, headers=from_ip("203.0.113.1", bob))
    assert resp.status == 200 and resp.headers["RateLimit-Remaining"] == "1"
    # and so has an anonymous caller from that IP
    resp = await client.get(f"{NOTES}/stats", headers={"X-Forwarded-For": "203.0.113.1"})
    assert resp.status == 200 and resp.headers["RateLimit-Remaining"] == "1"


async def test_invalid_token_falls_back_to_the_ip(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"], config=limits(100, 2))
    for token in ("not-a-token", "still.not.valid"):
        assert (await client.get(f"{NOTES}/stats", headers=auth(token))).status == 200
    await problem(await client.get(f"{NOTES}/stats", headers=auth("third.bad.token")), 429)


async def test_anonymous_clients_are_keyed_by_ip(make_client: MakeClient) -> None:
    trusting = await make_client(plugins=["notes"], config=limits(100, 1, trusted_proxies=["127.0.0.0/8"]))
    for ip in ("203.0.113.1", "203.0.113.2"):
        assert (await trusting.get(f"{NOTES}/stats", headers={"X-Forwarded-For": ip})).status == 200
    await problem(await trusting.get(f"{NOTES}/stats", headers={"X-Forwarded-For": "203.0.113.1"}), 429)

    # when the peer is not a trusted proxy, X-Forwarded-For is ignored: one client, one budget
    wary = await make_client(plugins=["notes"], config=limits(100, 1, trusted_proxies=["10.0.0.0/8"]))
    assert (await wary.get(f"{NOTES}/stats", headers={"X-Forwarded-For": "203.0.113.1"})).status == 200
    await problem(await wary.get(f"{NOTES}/stats", headers={"X-Forwarded-For": "203.0.113.2"}), 429)


async def test_health_and_metrics_are_never_limited(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"], config=limits(1, 1))
    for _ in range(4):
        for path in ("/health", "/metrics", "/health/services", f"{NOTES}/health"):
            resp = await client.get(path)
            assert resp.status == 200, path
            assert "RateLimit-Limit" not in resp.headers
    assert (await client.get(f"{NOTES}/stats")).status == 200  # the budget is still whole
    await problem(await client.get(f"{NOTES}/stats"), 429)
    assert (await client.get("/health")).status == 200


async def test_rate_limit_can_be_turned_off(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"], config={"ratelimit": {"enabled": False, "global_limit": 1}})
    for _ in range(3):
        resp = await client.get("/api/v1/openapi.json")
        assert resp.status == 200 and "RateLimit-Limit" not in resp.headers


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_memory_store_fixed_windows() -> None:
    clock = Clock(1_000.0)
    store = MemoryCounterStore(clock=clock)
    assert await store.hit("k", 60) == (1, 1_020.0)  # windows are aligned to the epoch
    assert await store.hit("k", 60) == (2, 1_020.0)
    assert await store.hit("other", 60) == (1, 1_020.0)
    clock.now = 1_019.9
    assert await store.hit("k", 60) == (3, 1_020.0)
    clock.now = 1_020.0  # the window ends: counting starts again
    assert await store.hit("k", 60) == (1, 1_080.0)


async def test_memory_store_forgets_expired_keys_when_full() -> None:
    clock = Clock(0.0)
    store = MemoryCounterStore(clock=clock, max_keys=3)
    for key in ("a", "b", "c"):
        await store.hit(key, 10)
    clock.now = 10.0
    await store.hit("d", 10)
    assert await store.hit("a", 10) == (1, 20.0)
    assert len(store._counts) == 2  # a and d; b and c had expired


async def test_rate_limiter_windows_reset() -> None:
    clock = Clock(100.0)
    limiter = RateLimiter(
        MemoryCounterStore(clock=clock), window_s=60, global_limit=3, plugin_limit=2, clock=clock
    )
    verdict, scope = await limiter.check("ip:1.2.3.4", "notes")
    assert verdict.allowed and (verdict.limit, verdict.remaining, verdict.reset_s) == (2, 1, 20)
    assert scope == "plugin"
    verdict, scope = await limiter.check("ip:1.2.3.4", "notes")
    assert verdict.allowed and verdict.remaining == 0
    verdict, scope = await limiter.check("ip:1.2.3.4", "notes")
    assert not verdict.allowed and scope == "plugin"
    assert verdict.headers()["Retry-After"] == "20"
    verdict, scope = await limiter.check("ip:1.2.3.4", None)  # 4th overall: global limit
    assert not verdict.allowed and scope == "global" and verdict.limit == 3
    assert (await limiter.check("ip:5.6.7.8", None))[0].allowed  # another client

    clock.now = 119.2
    verdict, _ = await limiter.check("ip:1.2.3.4", None)
    assert verdict.headers()["Retry-After"] == "1"  # never 0 while refusing
    clock.now = 120.0  # a new window
    verdict, scope = await limiter.check("ip:1.2.3.4", "notes")
    assert verdict.allowed and verdict.remaining == 1 and verdict.reset_s == 60
    assert "Retry-After" not in verdict.headers()


# --- the client address ------------------------------------------------------------------------


@dataclass
class FakeRequest:
    remote: str | None
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)


def address(trusted: list[str], remote: str | None, forwarded: str | None = None) -> str:
    headers: CIMultiDict[str] = CIMultiDict()
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return ClientAddress(trusted).of(cast(web.BaseRequest, FakeRequest(remote, headers)))


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "client"),
    [
        ([], "198.51.100.1", "203.0.113.9", "198.51.100.1"),  # nobody trusted: the peer
        (["10.0.0.1"], "198.51.100.1", "203.0.113.9", "198.51.100.1"),  # peer not trusted
        (["10.0.0.1"], "10.0.0.1", "203.0.113.9", "203.0.113.9"),
        (["10.0.0.0/8"], "10.1.2.3", "203.0.113.9, 10.0.0.7", "203.0.113.9"),  # two proxies
        (["10.0.0.0/8"], "10.1.2.3", "1.1.1.1, 203.0.113.9, 10.0.0.7", "203.0.113.9"),  # spoofed left
        (["10.0.0.0/8"], "10.1.2.3", "10.0.0.5, 10.0.0.6", "10.0.0.5"),  # all trusted: leftmost
        (["10.0.0.0/8"], "10.1.2.3", None, "10.1.2.3"),  # no header: the proxy itself
        (["10.0.0.0/8"], "10.1.2.3", " , ", "10.1.2.3"),
        (["::1"], "::1", "2001:db8::5", "2001:db8::5"),
        (["10.0.0.0/8"], "::ffff:10.1.2.3", "203.0.113.9", "203.0.113.9"),  # dual-stack socket
        (["10.0.0.0/8"], "::ffff:192.0.2.1", "203.0.113.9", "::ffff:192.0.2.1"),
        (["10.0.0.0/8"], None, "203.0.113.9", "unknown"),
        (["10.0.0.0/8"], "not-an-ip", "203.0.113.9", "not-an-ip"),
    ],
)
def test_client_address(trusted: list[str], remote: str | None, forwarded: str | None, client: str) -> None:
    assert address(trusted, remote, forwarded) == client


# --- the access log ----------------------------------------------------------------------------

ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "plugin", "user_id", "request_id")


def access_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        {name: getattr(r, name) for name in ACCESS_FIELDS}
        for r in caplog.records
        if r.name == "fittracker.access"
    ]


async def test_one_access_record_per_request(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await notes(make_client)
    token = token_for(client, "user-42")
    caplog.set_level(logging.INFO, logger="fittracker.access")
    await client.post(NOTES, json={"text": "x"}, headers={**auth(token), "X-Request-ID": "access-log-0001"})
    await client.get("/nope?q=secret-query", headers={"X-Request-ID": "access-log-0002"})
    await client.get("/health")
    records = access_records(caplog)
    assert len(records) == 3
    created, missing, health = records
    assert created["method"] == "POST" and created["path"] == NOTES and created["status"] == 201
    assert created["plugin"] == "notes" and created["user_id"] == "user-42"
    assert created["request_id"] == "access-log-0001"
    assert missing["status"] == 404 and missing["plugin"] == "core" and missing["user_id"] is None
    assert missing["path"] == "/nope"  # the path, never the query string
    assert missing["request_id"] == "access-log-0002"
    assert health["plugin"] == "core" and health["status"] == 200
    for record in records:
        assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
        json.dumps(record)  # JSON-able


async def test_access_log_can_be_turned_off(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(plugins=["notes"], config={"log": {"access_log": False}})
    caplog.set_level(logging.INFO, logger="fittracker.access")
    await client.get("/health")
    assert access_records(caplog) == []


async def test_no_secrets_in_logs(make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    client = await notes(make_client)
    token = token_for(client)
    password = "pw-hunter2-do-not-log"
    caplog.set_level(logging.DEBUG)
    headers = auth(token)
    await client.post(NOTES, json={"text": "hi", "password": password}, headers=headers)
    await client.post(NOTES, json={"text": "", "password": password}, headers=headers)  # 422
    await client.post(NOTES, data=b'{"password": "' + password.encode(), headers=headers)  # 415
    await client.get(f"{NOTES}/boom", headers=headers)  # a crash logs a traceback
    await client.get(f"{NOTES}/nope", headers=headers)
    assert len(access_records(caplog)) == 5
    everything = caplog.text + "\n".join(
        f"{r.__dict__!r} {r.exc_text or ''} {r.getMessage()}" for r in caplog.records
    )
    assert token not in everything
    assert token.split(".")[-1] not in everything  # not even the signature
    assert password not in everything


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The real JSON log handler on the root logger, writing to a buffer; restored afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    try:
        yield stream
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_json_log_lines_carry_the_request_id(make_client: MakeClient, json_log: io.StringIO) -> None:
    client = await notes(make_client)
    await client.get(f"{NOTES}/stats", headers={"X-Request-ID": "json-line-0001"})
    await client.get(f"{NOTES}/boom", headers={"X-Request-ID": "json-line-0002"})
    lines = json_lines(json_log)
    access = [line for line in lines if line["logger"] == "fittracker.access"]
    assert access[0]["request_id"] == "json-line-0001"
    assert access[0]["status"] == 200 and access[0]["plugin"] == "notes" and access[0]["level"] == "INFO"
    assert access[0]["path"] == f"{NOTES}/stats" and "time" in access[0]
    crash = next(line for line in lines if line["logger"] == "fittracker.http")
    assert crash["request_id"] == "json-line-0002" and "RuntimeError" in crash["exc_info"]


def test_json_log_redacts_secrets(json_log: io.StringIO) -> None:
    log = logging.getLogger("fittracker.test")
    token = set_request_id("redact-test-0001")
    try:
        log.info("got header Authorization: Bearer abc.def")
        log.info("forwarding %s", "Bearer abc.def")
        log.warning("login failed", extra={"password": "pw-123", "email": "a@example.com"})
        log.info("body", extra={"body": {"password": "pw-456", "nested": [{"refresh_token": "rt-789"}]}})
    finally:
        reset_request_id(token)
    log.info("outside a request")
    text = json_log.getvalue()
    for secret in ("abc.def", "pw-123", "pw-456", "rt-789"):
        assert secret not in text
    lines = json_lines(json_log)
    assert lines[0]["message"] == "got header Authorization: Bearer [redacted]"
    assert lines[1]["message"] == "forwarding Bearer [redacted]"
    assert lines[2]["password"] == "[redacted]" and lines[2]["email"] == "a@example.com"
    assert lines[3]["body"] == {"password": "[redacted]", "nested": [{"refresh_token": "[redacted]"}]}
    assert all(line["request_id"] == "redact-test-0001" for line in lines[:4])
    assert lines[4]["request_id"] is None
