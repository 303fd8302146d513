"""Helpers to describe a plug-in's API in OpenAPI 3.1, and the assembly of the whole spec."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from fittracker.errors import ConfigError

REF = "#/components/schemas/{model}"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_STATUS_TEXT = {
    400: "Malformed request",
    401: "Missing, invalid, expired or revoked token",
    403: "Not allowed for this role",
    404: "Not found (or not yours)",
    409: "Conflict with the current state",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Validation failed",
    429: "Rate limited",
    503: "Temporarily unavailable, retry after `Retry-After` seconds: storage cannot write (a full or "
    "read-only disk), or in split mode no worker of the plug-in is ready or the worker went away "
    "mid-request (then a write may or may not have been applied, as the detail says)",
}


def ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": REF.format(model=name)}


def schemas(*models: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
    """Component schemas for pydantic models (nested models lifted to components too)."""
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def problems(*statuses: int) -> dict[str, Any]:
    """Error responses that use the shared Problem schema."""
    return {
        str(status): {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": {"application/problem+json": {"schema": ref("Problem")}},
        }
        for status in statuses
    }


def json_body(model: type[BaseModel] | str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": ref(model)}}}


def json_response(description: str, schema: Mapping[str, Any] | type[BaseModel]) -> dict[str, Any]:
    body = ref(schema) if isinstance(schema, type) else dict(schema)
    return {"description": description, "content": {"application/json": {"schema": body}}}


BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
# A WebSocket handshake: the bearer header, or the token in the query (browsers).
BEARER_OR_QUERY: list[dict[str, list[str]]] = [*BEARER, {"accessTokenQuery": []}]
"""Any signed-in user: a valid, unexpired, unrevoked access token (401 otherwise)."""

ADMIN: list[dict[str, list[str]]] = [{"bearerAuth": ["admin"]}]
"""Admins only (handlers call :func:`fittracker.auth.require_admin`): 401 without a valid token,
403 with another role's. OpenAPI 3.1 lets a non-OAuth requirement list the roles it needs."""


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One ``in: query`` parameter per field of a query model."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    out: list[dict[str, Any]] = []
    for name, prop in schema["properties"].items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    errors: Sequence[int] = (),
    body: type[BaseModel] | None = None,
    parameters: Sequence[dict[str, Any]] = (),
    security: list[dict[str, list[str]]] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": {**responses, **problems(*errors)},
    }
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = json_body(body)
    if parameters:
        op["parameters"] = list(parameters)
    op["security"] = security if security is not None else []
    return op


def assemble(title: str, version: str, parts: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Merge the plug-ins' contributions (``(plugin name, partial spec)``) into one document."""
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {},
        "tags": [],
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA},
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token (an Ed25519-signed JWT). Operations whose requirement "
                    'names roles (`{"bearerAuth": ["admin"]}`) need a token with one of them: 403 otherwise.',
                },
                "accessTokenQuery": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "access_token",
                    "description": "The same access token as `?access_token=`, for WebSockets opened by "
                    "browsers, which cannot set headers on the handshake.",
                },
            },
        },
    }
    schema_owner: dict[str, str] = {"Problem": "core"}
    for plugin, part in parts:
        for path, item in part.get("paths", {}).items():
            if path in spec["paths"]:
                raise ConfigError(f"OpenAPI path {path} is described twice (again by {plugin!r})")
            spec["paths"][path] = item
        for name, schema in part.get("components", {}).get("schemas", {}).items():
            if name in schema_owner and spec["components"]["schemas"][name] != schema:
                raise ConfigError(
                    f"OpenAPI schema {name!r} of {plugin!r} clashes with {schema_owner[name]!r}"
                )
            schema_owner[name] = plugin
            spec["components"]["schemas"][name] = schema
        spec["tags"].extend(part.get("tags", []))
    # Any API operation may meet unavailable storage or (split mode) no ready worker.
    for path, item in spec["paths"].items():
        if path.startswith("/api/"):
            for op in item.values():
                op["responses"].setdefault("503", problems(503)["503"])
    return spec


def merge_areas(areas: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One plug-in's spec from its areas' parts (``{"paths", "schemas", "tags"}`` each)."""
    spec: dict[str, Any] = {"paths": {}, "components": {"schemas": {}}, "tags": []}
    for part in areas:
        spec["paths"].update(part.get("paths", {}))
        spec["components"]["schemas"].update(part.get("schemas", {}))
        spec["tags"].extend(part.get("tags", []))
    return spec
