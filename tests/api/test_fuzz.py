"""Spec fuzzing (issue #8): schemathesis against ``/api/v1/openapi.json`` of a real server.

Every operation the server publishes is fuzzed, authenticated, in both deployments: a
``fittracker serve`` process with all four plug-ins, and split mode (workers behind the
router). Schema-valid and schema-violating requests alike must get documented answers: no
5xx, a documented status and content type, and a body that matches its schema. The runs are
bounded and derandomized, so CI sends the same requests every time; set FUZZ_MAX_EXAMPLES
for a deeper local run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.deployments import ROOT, start_single_server, start_split_server
from tests.helpers import DEFAULT_PASSWORD

# Examples per operation, generation mode (valid, and invalid data where there is any) and role:
# at most 20 requests per operation, 40 for those fuzzed as a user and as an admin.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported as found
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
    print_blob=False,
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Operations not fuzzed, with the reason. None: even the WebSocket endpoint is fuzzed over
# plain HTTP (without an Upgrade it answers its documented 400/401/422, which is what a fuzzer
# can reach; the 101 path is covered by tests/notifications/test_ws.py).
EXCLUDED: dict[str, str] = {}
# Ends the session it is sent with, so every example logs in afresh.
SESSION_ENDING = {"POST /api/v1/auth/logout"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
BENCH = "Barbell_Bench_Press_-_Medium_Grip"


@dataclass
class Target:
    """A running server under test."""

    name: str
    url: str
    data_dir: Path
    log: Path | None = None


@dataclass
class Account:
    user_id: str
    email: str
    token: str


@pytest.fixture(scope="module", params=["single", "split"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A server of its own per deployment: admin fuzzing sends bulk notifications to everyone
    and deletes exercises, which must not reach the tests sharing the session's split server."""
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    log = tmp / "server.log"
    start = start_split_server if request.param == "split" else start_single_server
    live = start(tmp, log_file=log)
    yield Target(request.param, live.url, live.data_dir, log)
    live.stop()


def register(session: requests.Session, url: str) -> Account:
    email = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": DEFAULT_PASSWORD, "name": "Fuzz User"}
    resp = session.post(f"{url}/api/v1/auth/register", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    reg = resp.json()
    return Account(reg["user"]["id"], email, reg["access_token"])


def login(session: requests.Session, url: str, email: str) -> str:
    body = {"email": email, "password": DEFAULT_PASSWORD}
    resp = session.post(f"{url}/api/v1/auth/login", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    return token


def create_admin(session: requests.Session, server: Target) -> Account:
    """An admin made the supported way: ``fittracker users create-admin`` on the data dir."""
    email = f"fuzz-admin-{uuid.uuid4().hex[:10]}@example.com"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    done = subprocess.run(
        [sys.executable, "-m", "fittracker", "users", "create-admin", "--email", email,
         "--password", DEFAULT_PASSWORD, "--data-dir", str(server.data_dir)],
        env={**env, "FITTRACKER_PLUGINS": "users", "FITTRACKER__USERS__ARGON2_TIME_COST": "1",
             "FITTRACKER__USERS__ARGON2_MEMORY_KIB": "1024"},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Account(done.stdout.strip(), email, login(session, server.url, email))


def seed(session: requests.Session, url: str, owner: Account, other: Account) -> dict[str, str]:
    """Real ids for path parameters (the owner's resources), so fuzzing gets past 404."""
    headers = {"Authorization": f"Bearer {owner.token}"}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = session.post(url + path, json=body, headers=headers, timeout=30)
        assert resp.status_code == 201, f"{path}: {resp.status_code} {resp.text}"
        created: dict[str, Any] = resp.json()
        return created

    workout = post("/api/v1/workouts", {"name": "Fuzz day"})
    logged = post(
        f"/api/v1/workouts/{workout['id']}/sets", {"exercise_id": BENCH, "reps": 5, "weight_kg": 60}
    )
    day = {"name": "A", "exercises": [{"exercise_id": BENCH, "sets": 3, "reps": 5}]}
    routine = post("/api/v1/routines", {"name": "Fuzz routine", "days": [day]})
    plan = post("/api/v1/ai/plans", {"goal": "strength", "days_per_week": 3})
    return {
        "workout_id": workout["id"],
        "set_id": logged["id"],
        "routine_id": routine["id"],
        "plan_id": plan["id"],
        "exercise_id": BENCH,
        "user_id": other.user_id,
    }


def can_be_invalid(doc: dict[str, Any]) -> bool:
    """Whether invalid data exists for an operation: a body, a query parameter or a path parameter
    narrower than any string (each string is a valid path segment; and the Authorization header,
    which negative data would drop, is always sent)."""
    parameters = doc.get("parameters", [])
    return "requestBody" in doc or any(
        p["in"] != "path" or p["schema"] != {"type": "string"} for p in parameters
    )


def spec_operations(spec: dict[str, Any]) -> set[str]:
    """``METHOD /path`` of every operation in the published document."""
    return {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


Bearer = str | Callable[[], str]
Operation = APIOperation[Any, Any, Any, Any]


@dataclass
class Fuzzer:
    """Fuzzes one deployment's operations and keeps what it saw."""

    server: Target
    session: requests.Session
    seeds: dict[str, str]
    fuzzed: set[str] = field(default_factory=set)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    requests: int = 0

    def operation(self, operation: Operation, mode: GenerationMode, role: str, bearer: Bearer) -> None:
        """Send up to MAX_EXAMPLES generated requests; record the first failure, if any."""
        label = operation.label
        strategy = operation.as_strategy(generation_mode=mode)
        known = {p.name: self.seeds[p.name] for p in operation.path_parameters if p.name in self.seeds}
        if mode is GenerationMode.POSITIVE and known:
            # Half the examples address the seeded resources, half random ids (the 404 paths).
            strategy = st.one_of(strategy, operation.as_strategy(generation_mode=mode, path_parameters=known))

        @FUZZ_SETTINGS
        @given(case=strategy)
        def example(case: Case[Operation]) -> None:
            token = bearer() if callable(bearer) else bearer
            self.requests += 1
            response = case.call_and_validate(
                base_url=self.server.url,
                session=self.session,
                headers={"Authorization": f"Bearer {token}"},
                checks=CHECKS,
            )
            self.fuzzed.add(label)
            self.statuses.setdefault(label, set()).add(response.status_code)

        try:
            example()
        except (FailureGroup, Exception) as exc:
            self.failures.append(f"{self.server.name}: {label} as {role}, {mode.value} data: {exc}")


def fuzz(server: Target) -> tuple[dict[str, Any], Fuzzer]:
    with requests.Session() as session:
        spec: dict[str, Any] = session.get(f"{server.url}/api/v1/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(spec)
        user = register(session, server.url)
        admin = create_admin(session, server)
        fuzzer = Fuzzer(server, session, seed(session, server.url, user, admin))

        # Sessions to end, logged in before fuzzing: the login operation's fuzzing soon gets this
        # client's IP throttled for failed logins (429).
        spare = [login(session, server.url, user.email) for _ in range(MAX_EXAMPLES + 2)]

        def fresh_login() -> str:
            assert spare, "more session-ending requests than sessions logged in for them"
            return spare.pop()

        operations: list[Operation] = []
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # an operation schemathesis cannot read
            operations.append(result.ok())
        # Deletions last, so the seeded resources live through the other operations.
        operations.sort(key=lambda op: op.method.upper() == "DELETE")
        for operation in operations:
            label = operation.label
            if label in EXCLUDED:
                continue
            doc = spec["paths"][operation.path][operation.method.lower()]
            roles: list[tuple[str, Bearer]] = [
                ("user", fresh_login if label in SESSION_ENDING else user.token)
            ]
            if "403" in doc["responses"]:
                roles.append(("admin", admin.token))  # both sides of a role or ownership check
            modes = [GenerationMode.POSITIVE]
            if can_be_invalid(doc):
                modes.append(GenerationMode.NEGATIVE)
            for role, bearer in roles:
                for mode in modes:
                    fuzzer.operation(operation, mode, role, bearer)
    return spec, fuzzer


@pytest.mark.timeout(600)  # a hang guard: a run takes well under a minute on an idle machine
def test_every_operation_answers_as_documented(target: Target) -> None:
    started = time.monotonic()
    spec, fuzzer = fuzz(target)
    print(f"{target.name}: {fuzzer.requests} requests in {time.monotonic() - started:.1f}s")
    log = target.log.read_text(encoding="utf-8")[-4000:] if target.log and fuzzer.failures else ""
    assert not fuzzer.failures, "\n\n".join(fuzzer.failures) + (f"\n\nserver log:\n{log}" if log else "")
    # Coverage: every published operation got requests, bar the explicit exclusions.
    assert set(EXCLUDED) <= spec_operations(spec), "stale exclusions"
    assert fuzzer.fuzzed == spec_operations(spec) - set(EXCLUDED)
    # Authenticated for real: the token opened every secured operation at least once.
    secured = {
        f"{m.upper()} {p}"
        for p, item in spec["paths"].items()
        for m, op in item.items()
        if op.get("security")
    }
    locked = sorted(label for label in secured if fuzzer.statuses.get(label) == {401})
    assert not locked, f"only ever answered 401: {locked}"
