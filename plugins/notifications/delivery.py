"""The delivery pipeline: durable, retried, at-least-once push and email sends.

``enqueue`` writes one record per notification x channel (x device for push) into the
``deliveries`` collection; a sender loop claims due records with a lease, sends them and
records the outcome. Everything lives in the database, so a restart resumes where the last
process stopped, and several workers can share the work:

- **claim**: a compare-and-set on ``(state, lease_until, attempts)`` sets ``lease_until`` and a
  fresh ``lease_owner``; two workers never both win the same record. A worker that dies
  mid-send leaves its lease to expire, and the record becomes claimable again (the send may
  then happen twice: at-least-once, which is why webhook-id / apns-id stay stable);
- **retry**: exponential backoff with full jitter (:class:`RetryPolicy`); after
  ``delivery_max_attempts`` the record is ``dead`` (dead-letter, kept for inspection);
- **invalid token**: the device is deactivated and the record ``failed``, without retry.

States: ``queued`` -> ``sent`` | ``failed`` | ``dead``; in-app records (``mark_in_app``) go
``delivered`` -> ``read``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable
from typing import Any, Literal

from aiohttp import web
from fittracker_plugins.notifications.delivery_policy import Clock, RetryPolicy, iso, parse_iso, utcnow
from fittracker_plugins.notifications.delivery_senders import Senders, SendResult, delivery_metric

from fittracker import PluginContext
from fittracker.ids import random_hex
from fittracker.push import PushProvider
from fittracker.storage import Document, DuplicateKeyError

CHANNELS = ("push", "email")
InAppState = Literal["delivered", "read"]


def delivery_id(notification_id: str, channel: str, device_id: str | None = None) -> str:
    """Deterministic, so enqueueing the same notification twice cannot duplicate a send."""
    return f"{notification_id}.{channel}" + (f".{device_id}" if device_id else "")


class Dispatcher:
    """Enqueues deliveries and runs this process's sender loop (see the module docstring)."""

    def __init__(
        self, ctx: PluginContext, *, clock: Clock = utcnow, rng: random.Random | None = None
    ) -> None:
        self.ctx = ctx
        self.policy = RetryPolicy.from_settings(ctx.settings)
        self.deliveries = ctx.db.collection("deliveries")
        self.senders = Senders(ctx, clock)
        self._clock = clock
        self._rng = rng or random.Random()
        self._batch = int(ctx.settings["delivery_batch_size"])
        self._poll_s = float(ctx.settings["delivery_poll_interval_s"])
        self._limit = asyncio.Semaphore(int(ctx.settings["delivery_concurrency"]))
        self._metric = delivery_metric(ctx)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def platforms(self) -> frozenset[str]:
        """Platforms a device may be registered for: those some provider serves."""
        return self.senders.platforms

    @property
    def providers(self) -> dict[str, PushProvider]:
        return self.senders.providers

    async def start(self, *, run: bool = True) -> None:
        """Create indexes, load providers and (unless ``run`` is false) start sending."""
        await self.deliveries.create_index([("state", 1), ("next_attempt_at", 1)])
        await self.deliveries.create_index([("notification_id", 1)])
        await self.deliveries.create_index([("user_id", 1), ("created_at", -1)])
        await self.senders.start()
        if run and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.ctx.name}-delivery")

    async def close(self) -> None:
        """Stop the loop (an interrupted send stays leased, then is retried) and providers."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.senders.close()

    # --- enqueueing ---------------------------------------------------------------------------

    async def enqueue(
        self, notification: dict[str, Any], channels: list[str], not_before: str | None = None
    ) -> None:
        """Queue ``notification`` on ``channels`` (push: one record per active device).

        ``not_before`` (ISO-8601) defers the first attempt, e.g. past the user's quiet hours.
        Idempotent per (notification, channel, device).
        """
        unknown = set(channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown delivery channels {sorted(unknown)}; expected a subset of {CHANNELS}")
        now = self._clock()
        due = max(now, parse_iso(not_before)) if not_before else now
        user_id = str(notification["user_id"])
        base: Document = {
            "notification_id": str(notification["id"]),
            "user_id": user_id,
            "category": str(notification.get("category", "")),
            "state": "queued",
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": iso(due),
            "lease_until": "",  # "" sorts before every time: not leased
            "lease_owner": None,
            "created_at": iso(now),
            "updated_at": iso(now),
            "message": {
                key: notification.get(key) for key in ("type", "title", "body", "data", "created_at")
            },
        }
        records: list[Document] = []
        for channel in dict.fromkeys(channels):
            if channel == "push":
                # No active device: no push record (nothing was attempted, nothing failed).
                for device in await self.senders.devices.active_for(user_id):
                    records.append(self._record(base, "push", device["_id"]))
            else:
                records.append(self._record(base, channel, None))
        for record in records:
            with contextlib.suppress(DuplicateKeyError):
                await self.deliveries.insert_one(record)
                self._metric.labels(channel=record["channel"], state="queued").inc()
        if due <= now:
            self._wake.set()

    @staticmethod
    def _record(base: Document, channel: str, device_id: str | None) -> Document:
        return {
            **base,
            "_id": delivery_id(base["notification_id"], channel, device_id),
            "channel": channel,
            "device_id": device_id,
        }

    async def mark_in_app(
        self, notification_id: str, user_id: str, state: InAppState, *, category: str | None = None
    ) -> None:
        """Track the in-app channel: ``delivered`` (in the inbox / sent on a socket), ``read``.

        Never moves back from ``read``; repeating a mark changes nothing.
        """
        if state not in ("delivered", "read"):
            raise ValueError("an in-app delivery is 'delivered' or 'read'")
        now = iso(self._clock())
        earlier = ["delivered", "read"] if state == "delivered" else ["read"]
        insert = {
            "notification_id": notification_id,
            "user_id": user_id,
            "channel": "in_app",
            "device_id": None,
            "category": category or "",
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": now,
            "lease_until": "",
            "lease_owner": None,
            "created_at": now,
        }
        try:
            await self.deliveries.update_one(
                {"_id": delivery_id(notification_id, "in_app"), "state": {"$nin": earlier}},
                {"$set": {"state": state, "updated_at": now, f"{state}_at": now}, "$setOnInsert": insert},
                upsert=True,
            )
        except DuplicateKeyError:  # already in that state (or further): the filter matched nothing
            return
        self._metric.labels(channel="in_app", state=state).inc()

    # --- sending ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                handled = await self.run_once()
            except Exception:  # a storage hiccup must not kill the loop
                self.ctx.log.exception("delivery round failed; retrying")
                handled = 0
            if handled < self._batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def run_once(self) -> int:
        """Claim the due deliveries (one batch), send them, record outcomes; returns how many."""
        claimed = await self.claim_due()
        await asyncio.gather(*(self._deliver(doc) for doc in claimed))
        return len(claimed)

    async def claim_due(self, limit: int | None = None) -> list[Document]:
        """Lease up to ``limit`` due records to this worker (compare-and-set, see above)."""
        now = self._clock()
        now_s = iso(now)
        due = {"state": "queued", "next_attempt_at": {"$lte": now_s}, "lease_until": {"$lte": now_s}}
        candidates = await self.deliveries.find(
            due, sort=[("next_attempt_at", 1)], limit=limit or self._batch
        )
        lease_until = iso(now + self.policy.lease)
        claimed: list[Document] = []
        for doc in candidates:
            won = await self.deliveries.update_one(
                {
                    "_id": doc["_id"],
                    "state": "queued",
                    "lease_until": doc["lease_until"],
                    "attempts": doc["attempts"],
                },
                {
                    "$set": {
                        "lease_until": lease_until,
                        "lease_owner": random_hex(),
                        "updated_at": now_s,
                    },
                    "$inc": {"attempts": 1},
                },
            )
            if won is not None:
                claimed.append(won)
        return claimed

    async def _deliver(self, doc: Document) -> None:
        async with self._limit:
            try:
                # A send that outlives its lease may be taken over by another worker: give up first.
                result = await asyncio.wait_for(self.senders.send(doc), self.policy.lease_s * 0.9)
            except TimeoutError:
                result = SendResult("retry", "the send took longer than the lease (delivery_lease_s)")
            except Exception as exc:  # a provider bug must not lose the record: retry it
                self.ctx.log.exception("delivery %s raised", doc["_id"])
                result = SendResult("retry", f"unexpected error: {type(exc).__name__}: {exc}")
            await self._finish(doc, result)

    async def _finish(self, doc: Document, result: SendResult) -> None:
        now = self._clock()
        outcome, detail = result.outcome, result.detail
        changes: dict[str, Any] = {"lease_until": "", "lease_owner": None, "updated_at": iso(now)}
        if outcome == "sent":
            changes.update(state="sent", sent_at=iso(now), last_error=None, provider_id=result.provider_id)
        elif outcome == "retry" and doc["attempts"] < self.policy.max_attempts:
            wait = self.policy.backoff(doc["attempts"], self._rng)
            changes.update(state="queued", last_error=detail, next_attempt_at=iso(now + wait))
        elif outcome == "retry":
            changes.update(state="dead", last_error=f"gave up after {doc['attempts']} attempts: {detail}")
        else:
            changes.update(state="failed", last_error=detail)
        updated = await self.deliveries.update_one(
            {"_id": doc["_id"], "lease_owner": doc["lease_owner"]}, {"$set": changes}
        )
        if updated is None:
            # Our lease expired and another worker took the record over: its outcome wins.
            self.ctx.log.warning("delivery %s: lease lost before recording %s", doc["_id"], outcome)
            return
        if changes["state"] != "queued":
            self._metric.labels(channel=doc["channel"], state=changes["state"]).inc()

    # --- inspection ---------------------------------------------------------------------------

    async def for_notification(self, notification_id: str) -> list[Document]:
        return await self.deliveries.find({"notification_id": notification_id}, sort=[("_id", 1)])

    async def counts(
        self, channels: Iterable[str] = ("push", "email", "in_app")
    ) -> dict[str, dict[str, int]]:
        """``{channel: {state: count}}`` over every delivery (for stats and health)."""
        out: dict[str, dict[str, int]] = {}
        for channel in channels:
            states = ("queued", "sent", "delivered", "read", "failed", "dead")
            out[channel] = {s: await self.deliveries.count({"channel": channel, "state": s}) for s in states}
        return out


DISPATCHER = web.AppKey("fittracker_plugins.notifications.dispatcher", Dispatcher)
