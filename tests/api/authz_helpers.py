"""The authorization matrix's view of the API (tests/api/test_authz_matrix.py): every operation
of the OpenAPI document a deployment serves, who may call it (from its ``security``), how to
fill its path and body, and tokens signed with the deployment's own key."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fittracker.auth import Auth
from fittracker.runtime import RUNTIME
from tests.deployments import LiveClient, SplitServer
from tests.helpers import auth

Access = Literal["public", "optional", "user", "admin"]
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
PROBLEM = "application/problem+json"
BENCH = "Barbell_Bench_Press_-_Medium_Grip"
OTHERS = "changed by someone else"

# Valid bodies, so that a refusal is about who calls, never about what was sent. The matrix
# fails for an operation with a request body that is missing here (add one when adding it).
BODIES: dict[str, dict[str, Any]] = {
    "workouts_update": {"name": OTHERS, "notes": OTHERS},
    "workouts_log_set": {"exercise_id": BENCH, "reps": 5, "weight_kg": 60},
    "workouts_update_set": {"reps": 1, "weight_kg": 1},
    "workouts_update_exercise": {"name": OTHERS},
    "workouts_update_routine": {"name": OTHERS, "visibility": "public"},
    "workouts_rate_routine": {"stars": 1},
    "notifications_bulk_create": {
        "audience": {"user_ids": ["authz-matrix-nobody"]},
        "category": "system",
        "title": "Authorization matrix",
        "body": "sent by an admin of the matrix",
    },
}


def access_of(security: list[dict[str, list[str]]] | None) -> Access:
    """Who may call an operation, from its security requirements (any one of them suffices)."""
    if not security:
        return "public"
    for requirement in security:
        unknown = set(requirement) - {"bearerAuth", "accessTokenQuery"}
        assert not unknown, f"unknown security scheme(s) {unknown} in {security}"
    if any(not requirement for requirement in security):
        return "optional"
    # The query token is the bearer token in another place: it grants what a plain bearer does.
    roles = [set(requirement.get("bearerAuth", ())) for requirement in security]
    if any(not named for named in roles):
        return "user"
    assert all(named == {"admin"} for named in roles), f"unknown roles in {security}"
    return "admin"


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    access: Access
    path_params: tuple[str, ...]
    has_body: bool

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    def url(self, ids: Mapping[str, str]) -> str:
        path = self.path
        for name in self.path_params:
            path = path.replace("{" + name + "}", quote(ids[name], safe=""))
        return path

    def body(self) -> dict[str, Any] | None:
        """A valid body when the operation takes one (see ``BODIES``)."""
        if not self.has_body:
            return None
        assert self.operation_id in BODIES, (
            f"{self} ({self.operation_id}) takes a body: add a valid one to BODIES in {__name__}"
        )
        return BODIES[self.operation_id]


def operations(spec: Mapping[str, Any]) -> list[Operation]:
    """Every operation of the document, in its order."""
    found: list[Operation] = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            params = [*shared, *op.get("parameters", [])]
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    operation_id=op["operationId"],
                    access=access_of(op.get("security")),
                    path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                    has_body="requestBody" in op,
                )
            )
    return found


async def fetch_operations(api: Any) -> list[Operation]:
    resp = await api.get("/api/v1/openapi.json")
    assert resp.status == 200
    return operations(await resp.json())


def any_ids(op: Operation) -> dict[str, str]:
    """Well-formed ids of nothing (32 hex digits: the shape of notification ids too)."""
    return {name: uuid.uuid4().hex for name in op.path_params}


@dataclass(frozen=True, slots=True)
class Answer:
    op: Operation
    status: int
    content_type: str
    text: str

    def __str__(self) -> str:
        return f"{self.op} -> {self.status} {self.text[:200]}"


async def call(
    api: Any, op: Operation, ids: Mapping[str, str], token: str | None, body: Any = None
) -> Answer:
    """One call of ``op``; ``body`` defaults to an empty object for operations that take one."""
    kwargs: dict[str, Any] = {"headers": auth(token) if token else {}}
    if op.has_body:
        kwargs["json"] = {} if body is None else body
    resp = await api.request(op.method, op.url(ids), **kwargs)
    return Answer(op, resp.status, resp.content_type or "", await resp.text())


async def refused_everywhere(
    api: Any, ops: Iterable[Operation], token: str | None, *, settle_s: float = 0.0
) -> list[str]:
    """What answered anything but a 401 problem to ``token`` (None: no token at all).

    ``settle_s``: keep asking operations that still accept it for this long, for refusals
    that reach other processes through the event bus (revocations in split mode).
    """
    pending = list(ops)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_s
    while True:
        answers = [await call(api, op, any_ids(op), token) for op in pending]
        wrong = [a for a in answers if a.status != 401 or a.content_type != PROBLEM]
        if not wrong or loop.time() >= deadline:
            return [str(a) for a in wrong]
        pending = [a.op for a in wrong]
        await asyncio.sleep(0.1)


# --- tokens signed with the deployment's own key ------------------------------------------------


def signing_key(api: Any, request: pytest.FixtureRequest) -> tuple[Ed25519PrivateKey, str]:
    """The deployment's Ed25519 key (``<data_dir>/keys``) and token issuer."""
    if isinstance(api, LiveClient):
        server: SplitServer = request.getfixturevalue("split_server")
        data_dir, issuer = server.data_dir, "fittracker"  # the split config keeps the default
    else:
        settings = api.app[RUNTIME].settings
        data_dir, issuer = Path(settings.data_dir), str(settings.section("auth")["issuer"])
    key = serialization.load_pem_private_key((data_dir / "keys" / "ed25519.pem").read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    return key, issuer


def signed_token(
    key: Ed25519PrivateKey, issuer: str, user_id: str, *, seconds: int = 900, role: str = "user"
) -> str:
    """An access token for ``user_id`` that expires ``seconds`` from now (negative: in the past)."""
    signer = Auth(key.public_key(), key, issuer=issuer, access_ttl_s=seconds)
    return signer.issue(user_id, role, sid=f"authz-{uuid.uuid4().hex[:8]}").token


# --- handlers -------------------------------------------------------------------------------------


def routes(app: Any) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """``(method, path, handler)`` of every route of ``app`` and its plug-ins' sub-apps."""
    for resource in app.router.resources():
        sub = resource.get_info().get("app")
        if sub is not None:
            yield from routes(sub)
            continue
        for route in resource:
            if route.method not in {"HEAD", "OPTIONS", "*"}:
                yield route.method, resource.canonical, route.handler


def calls(func: Callable[..., Any], target: Callable[..., Any]) -> bool:
    """Whether ``func`` calls ``target``, directly or through functions of its own package
    that it names (a module's helpers such as ``owned(request)``)."""
    package = func.__module__.split(".", 1)[0]
    seen: set[Any] = set()

    def visit(fn: Callable[..., Any]) -> bool:
        code = getattr(fn, "__code__", None)
        if code is None or code in seen:
            return False
        seen.add(code)
        names: set[str] = set()
        stack = [code]
        while stack:  # the function and the functions, lambdas and comprehensions inside it
            current = stack.pop()
            names.update(current.co_names)
            stack.extend(c for c in current.co_consts if hasattr(c, "co_names"))
        scope = getattr(fn, "__globals__", {})
        for name in names:
            found = scope.get(name)
            if found is target:
                return True
            module = getattr(found, "__module__", None) or ""
            if callable(found) and module.split(".", 1)[0] == package and visit(found):
                return True
        return False

    return visit(func)
