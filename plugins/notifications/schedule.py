"""Scheduled sends: stored in ``scheduled``, fired by a loop in every notifications process.

A scheduled send is ``{_id, kind: send | reminder, user_id, category, type, title, body, data,
send_at, state, created_by, created_at, updated_at, sent_at, notification_id}``; ``send_at``
uses the fixed-width stored time form (:func:`~.delivery_policy.iso`), so "due" is a string
comparison on both storage backends, served by the ``(state, send_at)`` index.

States: ``pending`` -> ``firing`` -> ``sent``; ``pending`` -> ``cancelled``. The loop sleeps
until the next due item, but never longer than ``scheduled_poll_s`` (items other processes
add), and is woken early by :meth:`Scheduler.added` for items added in this process. It
claims a due item with a compare-and-set on ``(state, send_at)``, so with several workers
each item fires once; a claim carries a lease (``fire_until``) so that an item whose worker
died mid-fire is fired again later, with the same idempotency key ``scheduled:<id>``
(reminders, which are re-armed, add their ``send_at``), which notifies nobody twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fittracker_plugins.notifications.delivery_policy import iso, parse_iso, utcnow
from fittracker_plugins.notifications.service import Notifier

from fittracker import PluginContext
from fittracker.ids import random_hex
from fittracker.storage import Collection, Document

BATCH = 50


def public_scheduled(doc: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("user_id", "kind", "category", "title", "body", "state", "created_by", "created_at")
    return {
        "id": doc["_id"],
        **{key: doc[key] for key in keys},
        "data": doc.get("data") or {},
        "send_at": doc["send_at"],
        "sent_at": doc.get("sent_at"),
        "notification_id": doc.get("notification_id"),
    }


class ScheduledStore:
    def __init__(self, ctx: PluginContext) -> None:
        self.items: Collection = ctx.db.collection("scheduled")

    async def create_indexes(self) -> None:
        await self.items.create_index([("state", 1), ("send_at", 1)])
        await self.items.create_index([("user_id", 1), ("send_at", 1), ("_id", 1)])
        await self.items.create_index([("send_at", 1), ("_id", 1)])

    async def add(
        self, *, user_id: str, created_by: str, category: str, title: str, body: str,
        data: Mapping[str, Any], send_at: datetime,
    ) -> Document:  # fmt: skip
        now = iso(utcnow())
        doc: Document = {
            "_id": random_hex(),
            "kind": "send",
            "user_id": user_id,
            "category": category,
            "type": "scheduled",
            "title": title,
            "body": body,
            "data": dict(data),
            "send_at": iso(send_at),
            "state": "pending",
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
            "sent_at": None,
            "notification_id": None,
        }
        return await self.items.insert_one(doc)

    async def get(self, item_id: str) -> Document | None:
        return await self.items.find_one({"_id": item_id})

    async def page(self, query: Mapping[str, Any], limit: int) -> list[Document]:
        return await self.items.find(query, sort=[("send_at", 1), ("_id", 1)], limit=limit)

    async def cancel(self, item_id: str) -> Document | None:
        """Cancel a pending send; None when it is no longer pending."""
        now = iso(utcnow())
        return await self.items.update_one(
            {"_id": item_id, "state": "pending"}, {"$set": {"state": "cancelled", "updated_at": now}}
        )


class Scheduler:
    """This process's firing loop (see the module docstring)."""

    def __init__(self, ctx: PluginContext, store: ScheduledStore, notifier: Notifier) -> None:
        self.ctx = ctx
        self.items = store.items
        self.notifier = notifier
        self.poll_s = float(ctx.settings["scheduled_poll_s"])
        self.lease = timedelta(seconds=float(ctx.settings["scheduled_lease_s"]))
        self._wake = asyncio.Event()
        self._next: datetime | None = None  # when the loop plans to look again
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="notifications:scheduled")

    async def stop(self) -> None:
        """Stop the loop; an item cut off mid-fire is fired again once its lease ends."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def added(self, send_at: datetime) -> None:
        """An item was scheduled in this process: wake the loop if it is due before it looks."""
        if self._next is None or send_at < self._next:
            self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                while await self.fire_due() == BATCH:
                    pass  # a full batch: there may be more due right now
                delay = await self._until_next()
            except Exception:  # a storage hiccup must not stop scheduled sends in this process
                self.ctx.log.exception("firing scheduled notifications failed; retrying")
                delay = self.poll_s
            self._next = utcnow() + timedelta(seconds=delay)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._next = None

    async def _until_next(self) -> float:
        nearest = await self.items.find_one({"state": "pending"}, sort=[("send_at", 1)])
        if nearest is None:
            return self.poll_s
        wait = (parse_iso(nearest["send_at"]) - utcnow()).total_seconds()
        return min(self.poll_s, max(0.0, wait))

    async def fire_due(self) -> int:
        """Claim and fire what is due (one batch); returns how many items were claimed."""
        now = iso(utcnow())
        due = await self.items.find(
            {"$or": [{"state": "pending", "send_at": {"$lte": now}},
                     {"state": "firing", "fire_until": {"$lt": now}}]},
            sort=[("send_at", 1)],
            limit=BATCH,
        )  # fmt: skip
        claimed: list[Document] = []
        for doc in due:
            expected = {"_id": doc["_id"], "state": doc["state"], "send_at": doc["send_at"]}
            if doc["state"] == "firing":
                expected["fire_until"] = doc["fire_until"]
            owner = random_hex()
            won = await self.items.update_one(
                expected,
                {"$set": {"state": "firing", "owner": owner, "fire_until": iso(utcnow() + self.lease)}},
            )
            if won is not None:
                claimed.append(won)
        await asyncio.gather(*(self._fire(doc) for doc in claimed))
        return len(claimed)

    async def _fire(self, doc: Document) -> None:
        key = f"scheduled:{doc['_id']}" + (f":{doc['send_at']}" if doc["kind"] == "reminder" else "")
        try:
            result = await self.notifier.notify(
                doc["user_id"],
                category=doc["category"],
                type=doc["type"],
                title=doc["title"],
                body=doc["body"],
                data={**(doc.get("data") or {}), "scheduled_id": doc["_id"]},
                idempotency_key=key,
            )
        except Exception:
            # Leave it "firing": once the lease ends, a worker tries again (same key).
            self.ctx.log.exception("scheduled notification %s failed", doc["_id"])
            return
        now = iso(utcnow())
        # Filtered on our claim: a reminder re-armed meanwhile stays pending for its new time.
        await self.items.update_one(
            {"_id": doc["_id"], "state": "firing", "owner": doc["owner"]},
            {"$set": {"state": "sent", "sent_at": now, "updated_at": now,
                      "notification_id": result["id"] if result else None}},
        )  # fmt: skip
