"""The delivery pipeline: records, claiming with leases, retries, dead letters, quiet hours."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fittracker_plugins.notifications.delivery import Dispatcher, delivery_id
from fittracker_plugins.notifications.delivery_policy import RetryPolicy, iso
from fittracker_plugins.notifications.devices import DeviceStore

from fittracker.runtime import RUNTIME
from tests.helpers import auth, register
from tests.notifications.conftest import MakeDeliveryClient, MakeDispatcher
from tests.notifications.delivery_helpers import FakeClock, PigeonPlugin, notification, probe_context


async def pigeon_user(client: TestClient[Any, Any], devices: int = 1) -> str:
    """A registered user with ``devices`` pigeon devices; returns the user id."""
    body = await register(client)
    for n in range(devices):
        resp = await client.post(
            "/api/v1/notifications/devices",
            json={"platform": "pigeon", "token": f"loft-{n}-{body['user']['id']}"},
            headers=auth(body["access_token"]),
        )
        assert resp.status == 201, await resp.text()
    user_id: str = body["user"]["id"]
    return user_id


async def records(dispatcher: Dispatcher, nid: str = "n1") -> list[dict[str, Any]]:
    return await dispatcher.for_notification(nid)


async def test_enqueue_makes_one_record_per_channel_and_device_idempotently(
    make_delivery_client: MakeDeliveryClient, make_dispatcher: MakeDispatcher
) -> None:
    client = await make_delivery_client()
    dispatcher = await make_dispatcher(client)
    user = await pigeon_user(client, devices=2)
    for _ in range(2):  # the same notification twice: no duplicate deliveries
        await dispatcher.enqueue(notification(user), ["push", "email"], None)
    found = await records(dispatcher)
    assert sorted((r["channel"], r["state"], r["attempts"]) for r in found) == [
        ("email", "queued", 0),
        ("push", "queued", 0),
        ("push", "queued", 0),
    ]
    push = [r for r in found if r["channel"] == "push"]
    assert len({r["device_id"] for r in push}) == 2
    assert all(r["_id"] == delivery_id("n1", "push", r["device_id"]) for r in push)
    assert {r["category"] for r in found} == {"achievements"}
    with pytest.raises(ValueError, match="unknown delivery channels"):
        await dispatcher.enqueue(notification(user), ["sms"], None)


async def test_a_hook_provider_sends_the_push(
    make_delivery_client: MakeDeliveryClient, make_dispatcher: MakeDispatcher, pigeons: PigeonPlugin
) -> None:
    client = await make_delivery_client()
    dispatcher = await make_dispatcher(client)
    assert "pigeon" in dispatcher.platforms
    user = await pigeon_user(client)
    await dispatcher.enqueue(notification(user), ["push"], None)
    assert await dispatcher.run_once() == 1
    [(device, message)] = pigeons.provider.sent
    assert device.user_id == user and device.platform == "pigeon"
    assert (message.notification_id, message.title, message.body, message.category) == (
        "n1",
        "New record",
        "Bench press: 100 kg",
        "achievements",
    )
    assert dict(message.data) == {"exercise_id": "Bench_Press", "weight_kg": 100}
    [record] = await records(dispatcher)
    assert record["state"] == "sent" and record["attempts"] == 1 and record["provider_id"] == "coo-1"
    assert record["lease_until"] == "" and record["last_error"] is None
    assert await dispatcher.run_once() == 0  # nothing is sent twice
    await dispatcher.close()
    assert pigeons.provider.closed


async def test_retry_waits_with_backoff_then_sends(
    make_delivery_client: MakeDeliveryClient,
    make_dispatcher: MakeDispatcher,
    pigeons: PigeonPlugin,
    delivery_clock: FakeClock,
) -> None:
    client = await make_delivery_client(delivery_backoff_base_s=10.0)
    dispatcher = await make_dispatcher(client)
    user = await pigeon_user(client)
    pigeons.provider.script = ["retry"]
    await dispatcher.enqueue(notification(user), ["push"], None)
    assert await dispatcher.run_once() == 1
    [record] = await records(dispatcher)
    assert record["state"] == "queued" and record["attempts"] == 1
    assert record["last_error"] == "pigeon says retry"
    # Full jitter: the first retry is due within [now, now + base].
    assert (
        iso(delivery_clock.now)
        <= record["next_attempt_at"]
        <= iso(delivery_clock.now + timedelta(seconds=10))
    )
    delivery_clock.now = delivery_clock.now.replace(microsecond=0) - timedelta(seconds=1)
    assert await dispatcher.run_once() == 0  # not due yet
    delivery_clock.advance(12)
    assert await dispatcher.run_once() == 1
    [record] = await records(dispatcher)
    assert (record["state"], record["attempts"], record["last_error"]) == ("sent", 2, None)


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=2.0, cap_s=60.0, lease_s=30.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (40, 60.0)]:
        waits = [policy.backoff(attempt, rng).total_seconds() for _ in range(300)]
        assert all(0 <= w <= ceiling for w in waits)
        # Jitter spreads the waits over the whole range, not around one value.
        assert min(waits) < ceiling * 0.1 and max(waits) > ceiling * 0.9


async def test_dead_letter_after_max_attempts(
    make_delivery_client: MakeDeliveryClient,
    make_dispatcher: MakeDispatcher,
    pigeons: PigeonPlugin,
    delivery_clock: FakeClock,
) -> None:
    client = await make_delivery_client(delivery_max_attempts=3, delivery_backoff_base_s=1.0)
    dispatcher = await make_dispatcher(client)
    user = await pigeon_user(client)
    pigeons.provider.script = ["retry"] * 10
    await dispatcher.enqueue(notification(user), ["push"], None)
    for _ in range(5):
        await dispatcher.run_once()
        delivery_clock.advance(3600)
    [record] = await records(dispatcher)
    assert record["state"] == "dead" and record["attempts"] == 3
    assert record["last_error"] == "gave up after 3 attempts: pigeon says retry"
    assert len(pigeons.provider.sent) == 3
    metrics = client.app[RUNTIME].metrics.exposition().decode()
    assert 'fittracker_notification_deliveries_total{channel="push",state="dead"} 1.0' in metrics
    assert 'fittracker_notification_deliveries_total{channel="push",state="queued"} 1.0' in metrics


async def test_invalid_token_deactivates_the_device_without_retry(
    make_delivery_client: MakeDeliveryClient,
    make_dispatcher: MakeDispatcher,
    pigeons: PigeonPlugin,
    delivery_clock: FakeClock,
) -> None:
    client = await make_delivery_client()
    dispatcher = await make_dispatcher(client)
    user = await pigeon_user(client)
    pigeons.provider.script = ["invalid_token"]
    await dispatcher.enqueue(notification(user), ["push"], None)
    await dispatcher.run_once()
    [record] = await records(dispatcher)
    assert record["state"] == "failed" and record["attempts"] == 1
    assert record["last_error"].startswith("invalid token, device deactivated")
    [device] = await DeviceStore(probe_context(client).db).list_for(user)
    assert device["active"] is False
    delivery_clock.advance(3600)
    assert await dispatcher.run_once() == 0
    # Later notifications skip the inactive device.
    await dispatcher.enqueue(notification(user, "n2"), ["push"], None)
    assert await records(dispatcher, "n2") == []


async def test_quiet_hours_defer_until_not_before(
    make_delivery_client: MakeDeliveryClient,
    make_dispatcher: MakeDispatcher,
    pigeons: PigeonPlugin,
    delivery_clock: FakeClock,
) -> None:
    client = await make_delivery_client()
    dispatcher = await make_dispatcher(client)
    user = await pigeon_user(client)
    morning = delivery_clock.now + timedelta(hours=8)
    await dispatcher.enqueue(notification(user), ["push"], morning.isoformat().replace("+00:00", "Z"))
    [record] = await records(dispatcher)
    assert record["next_attempt_at"] == iso(morning)
    delivery_clock.advance(8 * 3600 - 1)
    assert await dispatcher.run_once() == 0 and pigeons.provider.sent == []
    delivery_clock.advance(1)
    assert await dispatcher.run_once() == 1 and len(pigeons.provider.sent) == 1


async def test_a_crashed_worker_s_lease_expires_and_another_worker_delivers(
    make_delivery_client: MakeDeliveryClient,
    make_dispatcher: MakeDispatcher,
    pigeons: PigeonPlugin,
    delivery_clock: FakeClock,
) -> None:
    client = await make_delivery_client(delivery_lease_s=30.0)
    crashed = await make_dispatcher(client)
    user = await pigeon_user(client)
    await crashed.enqueue(notification(user), ["push"], None)
    [claimed] = await crashed.claim_due()  # ...and the worker dies before sending
    assert claimed["attempts"] == 1 and claimed["lease_until"] == iso(
        delivery_clock.now + timedelta(seconds=30)
    )
    survivor = await make_dispatcher(client)  # a new process on the same database
    assert await survivor.run_once() == 0  # still leased
    delivery_clock.advance(30)
    assert await survivor.run_once() == 1
    [record] = await records(survivor)
    assert (record["state"], record["attempts"]) == ("sent", 2)
    assert len(pigeons.provider.sent) == 1


async def test_two_workers_never_claim_the_same_delivery(
    make_delivery_client: MakeDeliveryClient, make_dispatcher: MakeDispatcher
) -> None:
    client = await make_delivery_client()
    first, second = await make_dispatcher(client), await make_dispatcher(client)
    user = await pigeon_user(client, devices=3)
    for n in range(5):
        await first.enqueue(notification(user, f"n{n}"), ["push"], None)
    batches = await asyncio.gather(
        first.claim_due(), second.claim_due(), first.claim_due(), second.claim_due()
    )
    ids = [doc["_id"] for batch in batches for doc in batch]
    assert len(ids) == 15 and len(set(ids)) == 15


async def test_queued_deliveries_survive_a_restart_and_the_loop_sends_them(
    make_delivery_client: MakeDeliveryClient, pigeons: PigeonPlugin
) -> None:
    client = await make_delivery_client(delivery_poll_interval_s=0.05)
    ctx = probe_context(client)
    user = await pigeon_user(client)
    before = Dispatcher(ctx)
    await before.start(run=False)
    await before.enqueue(notification(user), ["push"], None)
    await before.close()  # stopped before sending anything
    after = Dispatcher(ctx)
    await after.start()
    try:
        for _ in range(100):
            if pigeons.provider.sent:
                break
            await asyncio.sleep(0.02)
        [record] = await after.for_notification("n1")
        assert record["state"] == "sent"
        # A new notification wakes the loop at once.
        await after.enqueue(notification(user, "n2"), ["push"], None)
        for _ in range(100):
            if len(pigeons.provider.sent) == 2:
                break
            await asyncio.sleep(0.02)
        assert [m.notification_id for _, m in pigeons.provider.sent] == ["n1", "n2"]
    finally:
        await after.close()


async def test_email_without_an_address_fails_clearly(
    make_delivery_client: MakeDeliveryClient, make_dispatcher: MakeDispatcher
) -> None:
    client = await make_delivery_client(smtp_host="127.0.0.1")
    dispatcher = await make_dispatcher(client)
    await dispatcher.enqueue(notification("ghost"), ["email"], None)
    await dispatcher.run_once()
    [record] = await records(dispatcher)
    assert record["state"] == "failed"
    assert record["last_error"] == "no email address for user ghost (not in users_directory)"


async def test_a_platform_without_provider_fails_clearly(
    make_delivery_client: MakeDeliveryClient, make_dispatcher: MakeDispatcher
) -> None:
    client = await make_delivery_client()  # no FCM settings: no FCM provider
    dispatcher = await make_dispatcher(client)
    body = await register(client)
    resp = await client.post(
        "/api/v1/notifications/devices",
        json={"platform": "fcm", "token": "f" * 40},
        headers=auth(body["access_token"]),
    )
    assert resp.status == 201
    await dispatcher.enqueue(notification(body["user"]["id"]), ["push"], None)
    await dispatcher.run_once()
    [record] = await records(dispatcher)
    assert (record["state"], record["last_error"]) == (
        "failed",
        "no push provider is configured for platform 'fcm'",
    )


async def test_in_app_deliveries_go_delivered_then_read_never_back(
    make_delivery_client: MakeDeliveryClient, make_dispatcher: MakeDispatcher
) -> None:
    client = await make_delivery_client()
    dispatcher = await make_dispatcher(client)
    await dispatcher.mark_in_app("n1", "u1", "delivered", category="social")
    await dispatcher.mark_in_app("n1", "u1", "delivered")
    [record] = await records(dispatcher)
    assert (record["channel"], record["state"], record["category"]) == ("in_app", "delivered", "social")
    await dispatcher.mark_in_app("n1", "u1", "read")
    await dispatcher.mark_in_app("n1", "u1", "delivered")  # late: must not undo the read
    [record] = await records(dispatcher)
    assert record["state"] == "read" and "read_at" in record and "delivered_at" in record
    assert await dispatcher.run_once() == 0  # in-app records are never picked up by the sender
    counts = await dispatcher.counts()
    assert counts["in_app"]["read"] == 1 and counts["push"]["queued"] == 0
