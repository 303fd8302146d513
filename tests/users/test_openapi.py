"""The plug-in's OpenAPI contribution: valid 3.1, complete, and matching its routes."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from fittracker_plugins.users import openapi
from openapi_spec_validator import validate

from tests.helpers import auth, check_response, register

Client = TestClient[Any, Any]
PREFIXES = ("/api/v1/auth", "/api/v1/users", "/api/v1/profiles")
PUBLIC = {"users_register", "users_login", "users_refresh", "users_get_profile"}


async def spec_of(client: Client) -> dict[str, Any]:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def test_spec_is_valid_openapi_31(users_client: Client) -> None:
    spec = await spec_of(users_client)
    assert spec["openapi"].startswith("3.1")
    validate(spec)


async def test_every_operation_is_described(users_client: Client) -> None:
    spec = await spec_of(users_client)
    ours = {path: item for path, item in spec["paths"].items() if path.startswith(PREFIXES)}
    operation_ids = []
    for path, item in ours.items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            if path.endswith("/health"):
                continue
            operation_ids.append(op["operationId"])
            assert op["summary"] and op["tags"], (method, path)
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            if op["operationId"] not in PUBLIC:
                assert op["security"] == [{"bearerAuth": []}], op["operationId"]
                assert "401" in op["responses"], op["operationId"]
            if "{user_id}" in path:
                assert "404" in op["responses"], op["operationId"]
                assert any(p["name"] == "user_id" for p in op["parameters"])
            if method in {"post", "patch"} and "requestBody" in op:
                assert "422" in op["responses"], op["operationId"]
    assert len(operation_ids) == len(set(operation_ids)) == 13


async def test_routes_and_paths_agree(users_client: Client) -> None:
    spec = openapi.spec()
    documented = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    app = users_client.app
    assert app is not None
    routes = set()
    for sub in app._subapps:  # the users plug-in's own sub-application
        for route in sub.router.routes():
            path = route.resource.canonical if route.resource is not None else ""
            if route.method != "HEAD" and path.startswith(PREFIXES) and not path.endswith("/health"):
                routes.add((route.method, path))
    assert routes == documented


async def test_responses_match_the_spec(users_client: Client) -> None:
    # every response through the test client is also checked by the conftest middleware;
    # this checks the shapes explicitly for the main ones, errors included
    spec = await spec_of(users_client)
    reg = await register(users_client)
    assert check_response(spec, "post", "/api/v1/auth/register", 201, reg) == []
    resp = await users_client.get("/api/v1/profiles/me", headers=auth(reg["access_token"]))
    assert check_response(spec, "get", "/api/v1/profiles/me", 200, await resp.json()) == []
    resp = await users_client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "nope"})
    assert check_response(spec, "post", "/api/v1/auth/login", 401, await resp.json()) == []
    resp = await users_client.patch(
        "/api/v1/profiles/me", json={"height_cm": 1}, headers=auth(reg["access_token"])
    )
    assert check_response(spec, "patch", "/api/v1/profiles/me", 422, await resp.json()) == []
