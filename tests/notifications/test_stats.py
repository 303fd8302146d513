"""Delivery stats: counts and rates against hand-computed numbers, in-app tracking, access."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fittracker_plugins.notifications import stats

from tests.notifications.live_helpers import INBOX, member, state_of
from tests.notifications.test_bulk import admin_headers

STATS = "/api/v1/notifications/stats"
# (day, channel, category, state, how many)
RECORDS = [
    ("2025-03-01", "in_app", "social", "delivered", 2),
    ("2025-03-01", "in_app", "social", "read", 1),
    ("2025-03-01", "push", "achievements", "sent", 3),
    ("2025-03-01", "push", "achievements", "failed", 1),
    ("2025-03-01", "email", "system", "dead", 1),
    ("2025-03-01", "email", "system", "queued", 1),
    ("2025-03-02", "in_app", "system", "read", 2),
    ("2025-03-02", "push", "social", "sent", 1),
    ("2025-03-02", "email", "social", "sent", 2),
    ("2025-02-28", "push", "social", "sent", 1),  # before the window
    ("2025-03-04", "push", "social", "sent", 1),  # after it
]


def counts(rates: tuple[float | None, float | None, float | None], **states: int) -> dict[str, Any]:
    full = {s: states.get(s, 0) for s in ("queued", "sent", "delivered", "read", "failed", "dead")}
    names = ("delivery_rate", "read_rate", "failure_rate")
    return {**full, "total": sum(full.values()), "rates": dict(zip(names, rates, strict=True))}


async def seed(client: TestClient[Any, Any]) -> None:
    docs = []
    for n, (day, channel, category, state, many) in enumerate(RECORDS):
        for k in range(many):
            created = f"{day}T{'23:59:59.999999' if k else '00:00:00.000000'}+00:00"
            ids = {"_id": f"r{n}.{k}", "notification_id": f"n{n}.{k}", "user_id": "u"}
            docs.append(
                {**ids, "channel": channel, "category": category, "state": state, "created_at": created}
            )
    await state_of(client).ctx.db.collection("deliveries").insert_many(docs)


async def test_counts_and_rates_match_hand_computed_numbers(
    live_client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "PAGE", 4)  # several pages, so the paging is exercised
    await seed(live_client)
    resp = await live_client.get(f"{STATS}?from=2025-03-01&to=2025-03-03", headers=admin_headers(live_client))
    assert resp.status == 200
    body = await resp.json()
    assert (body["from"], body["to"]) == ("2025-03-01", "2025-03-03")
    # sent 6, delivered 2, read 3: handed over 11, arrived 5; lost 2 of 13 finished
    assert body["totals"] == counts(
        (0.4545, 0.6, 0.1538), queued=1, sent=6, delivered=2, read=3, failed=1, dead=1
    )
    assert body["channels"] == {
        "in_app": counts((1.0, 0.6, 0.0), delivered=2, read=3),
        "push": counts((0.0, None, 0.2), sent=4, failed=1),
        "email": counts((0.0, None, 0.3333), sent=2, dead=1, queued=1),
    }
    assert body["categories"]["social"] == counts((0.5, 0.3333, 0.0), sent=3, delivered=2, read=1)
    assert body["categories"]["achievements"] == counts((0.0, None, 0.25), sent=3, failed=1)
    assert body["categories"]["system"] == counts((1.0, 1.0, 0.3333), read=2, dead=1, queued=1)
    assert body["categories"]["coaching"] == counts((None, None, None))
    assert [d["date"] for d in body["days"]] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    assert [d["total"] for d in body["days"]] == [9, 5, 0]
    assert body["days"][1]["read"] == 2 and body["days"][1]["sent"] == 3


async def test_in_app_deliveries_are_recorded_when_stored_and_when_read(
    live_client: TestClient[Any, Any],
) -> None:
    ada = await member(live_client, "Ada")
    notifier = state_of(live_client).notifier
    for n in range(3):  # social: in-app only by default
        await notifier.notify(ada.user_id, category="social", type="t", title=f"#{n}", body="b")
    admin = admin_headers(live_client)

    async def in_app() -> dict[str, Any]:
        body = await (await live_client.get(STATS, headers=admin)).json()  # default: the last 7 days
        today = datetime.now(UTC).date().isoformat()
        assert body["to"] == today and len(body["days"]) == 7 and body["days"][-1]["date"] == today
        channel: dict[str, Any] = body["channels"]["in_app"]
        return channel

    assert (await in_app())["delivered"] == 3
    items = (await (await live_client.get(INBOX, headers=ada.headers)).json())["items"]
    assert (await live_client.post(f"{INBOX}/{items[0]['id']}/read", headers=ada.headers)).status == 200
    seen = await in_app()
    assert (seen["delivered"], seen["read"], seen["rates"]["read_rate"]) == (2, 1, 0.3333)
    assert (await live_client.post(f"{INBOX}/read-all", headers=ada.headers)).status == 200
    seen = await in_app()
    assert (seen["delivered"], seen["read"]) == (0, 3)


async def test_admins_only_and_validation(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client, "Ada")
    assert (await live_client.get(STATS)).status == 401
    assert (await live_client.get(STATS, headers=ada.headers)).status == 403
    admin = admin_headers(live_client)
    cases = {
        "from=2025-03-02&to=2025-03-01": "from",
        "from=2024-01-01&to=2025-03-01": "from",
        "from=yesterday": "from",
        "to=2025-13-01": "to",
        "to=9999-12-31": "to",  # the day after it overflowed: was a 500
        "to=0001-01-01": "to",
        "days=3": "days",
    }
    for query, field in cases.items():
        resp = await live_client.get(f"{STATS}?{query}", headers=admin)
        assert resp.status == 422, query
        assert [e["field"] for e in (await resp.json())["errors"]] == [field], query
