"""Checking real responses against the OpenAPI document the server publishes."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from jsonschema import Draft202012Validator

# Statuses any operation may answer without listing them (still checked as problem+json).
GENERIC_STATUSES = {405, 413, 415, 429}


def response_schema(
    spec: dict[str, Any], method: str, path: str, status: int
) -> tuple[dict[str, Any], str] | None:
    """The schema and media type documented for this response, or None if undocumented."""
    operation = spec["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return None
    response = operation["responses"].get(str(status))
    if response is None:
        if status in GENERIC_STATUSES:
            return {"$ref": "#/components/schemas/Problem"}, "application/problem+json"
        return None
    content = response.get("content")
    if not content:
        return {}, ""
    media, body = next(iter(content.items()))
    return body.get("schema", {}), media


def check_response(spec: dict[str, Any], method: str, path: str, status: int, body: Any) -> list[str]:
    """Problems found with one response (empty when it matches the spec)."""
    found = response_schema(spec, method, path, status)
    if found is None:
        return [f"{method} {path} -> {status}: status not documented"]
    schema, media = found
    if not media or "json" not in media:
        return []
    root = {"allOf": [schema], "components": spec["components"]}
    validator = Draft202012Validator(root)
    return [
        f"{method} {path} -> {status}: {e.message} at {list(e.absolute_path)}"
        for e in validator.iter_errors(body)
    ]


def spec_checking_middleware(spec_of: Any, violations: list[str]) -> Any:
    """A server middleware (tests only) that checks every JSON response against the spec."""

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        route = request.match_info.route
        resource = route.resource if route is not None else None
        if resource is None or not isinstance(response, web.Response) or response.body is None:
            return response
        path = resource.canonical
        spec = spec_of()
        if path not in spec["paths"] and request.method != "OPTIONS":
            violations.append(f"{request.method} {path}: path not documented")
            return response
        if request.method == "OPTIONS" or response.status == 204:
            return response
        raw = response.body
        body = (
            orjson.loads(raw) if isinstance(raw, bytes) and "json" in (response.content_type or "") else None
        )
        if body is not None:
            violations.extend(check_response(spec, request.method, path, response.status, body))
        return response

    return check
