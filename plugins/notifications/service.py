"""``Notifier.notify``: the one way anything becomes a notification.

Event rules call it today; bulk and scheduled sends will too. It decides the channels from
the user's preferences, stores the inbox item in the user's stream (``in_app``), announces it
to every process for live delivery, and hands push and email to the delivery pipeline's
dispatcher, deferred to the end of the user's quiet hours when they are on.

Idempotency: with an ``idempotency_key``, the plan (notification, channels, deferral) is
claimed in ``idempotency`` under a hash of (user, key) before any side effect. A second call
within ``idempotency_ttl_s`` returns the first result; a call that finds an unfinished claim
(the first caller crashed, and the bus redelivered) finishes that same plan, whose every step
is safe to repeat: the stream dedupes by seq and the dispatcher by notification id. The
notification that only goes to the stream (the user's own progress, a category set to in-app
only) keeps no claim: its entry is stored under the claim's id and is the claim, so a repeat
finds it there and announces it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from fittracker_plugins.notifications.models import CATEGORIES, PROGRESS
from fittracker_plugins.notifications.prefs import Effective, PreferenceStore, fixed_channels
from fittracker_plugins.notifications.stream import Stream, iso, public_item

from fittracker import PluginContext
from fittracker.ids import random_hex
from fittracker.storage import Collection, Database, Document, DuplicateKeyError

Clock = Callable[[], datetime]


class DispatcherLike(Protocol):
    """The delivery pipeline's seam (``fittracker_plugins.notifications.delivery.Dispatcher``)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(
        self, notification: dict[str, Any], channels: list[str], not_before: str | None
    ) -> None: ...


class InAppTracker(Protocol):
    """Records the in-app channel in the delivery records (``Dispatcher.mark_in_app``)."""

    async def mark_in_app(
        self,
        notification_id: str,
        user_id: str,
        state: Literal["delivered", "read"],
        *,
        category: str | None = None,
    ) -> None: ...


def claim_id(user_id: str, key: str) -> str:
    return hashlib.sha256(f"{user_id}\x00{key}".encode()).hexdigest()[:32]


class Notifier:
    def __init__(
        self,
        ctx: PluginContext,
        db: Database,
        stream: Stream,
        prefs: PreferenceStore,
        dispatcher: DispatcherLike,
        clock: Clock = lambda: datetime.now(UTC),
        in_app: InAppTracker | None = None,
    ) -> None:
        self.ctx = ctx
        self.in_app = in_app
        self.stream = stream
        self.prefs = prefs
        self.dispatcher = dispatcher
        self.clock = clock
        self.claims: Collection = db.collection("idempotency")
        self.ttl = timedelta(seconds=float(ctx.settings.get("idempotency_ttl_s", 86_400)))

    async def create_indexes(self) -> None:
        await self.claims.create_index([("created_at", 1)])

    async def notify(
        self,
        user_id: str,
        *,
        category: str,
        type: str,
        title: str,
        body: str,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any] | None:
        """Notify ``user_id``; returns the notification, or None when every channel is off.

        ``category`` is one of the preference categories, or ``progress`` for a live-only
        mirror of the user's own activity (never in the inbox, never pushed or emailed).
        """
        if category not in CATEGORIES and category != PROGRESS:
            raise ValueError(f"unknown notification category {category!r}")
        now = self.clock()
        key = claim_id(user_id, idempotency_key) if idempotency_key else None
        prefs: Effective | None = None
        channels = fixed_channels(category)
        if channels is None:  # the progress mirror needs no preferences: skip reading them
            prefs = await self.prefs.effective(user_id)
            channels = prefs.channels(category)
        stream_only = key is not None and channels == ["in_app"]
        notification: dict[str, Any] = {
            "id": key if stream_only else random_hex(),
            "user_id": user_id,
            "category": category,
            "type": type,
            "title": title,
            "body": body,
            "data": dict(data or {}),
            "created_at": iso(now),
        }
        if stream_only:
            return await self._in_app_once(notification, now)
        if key is not None:
            earlier = await self._earlier(key, now)
            if earlier is not None:
                return await self._finish(earlier)
        plan = await self._plan(notification, prefs, channels, now)
        if key is not None:
            plan.update(_id=key, key=idempotency_key, created_at=iso(now))
            try:
                await self.claims.insert_one(plan)
            except DuplicateKeyError:  # a concurrent call claimed it first: finish theirs
                theirs = await self.claims.find_one({"_id": key})
                if theirs is not None:
                    return await self._finish(theirs)
        return await self._finish(plan)

    async def _in_app_once(self, notification: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Only the stream: the stored entry is the claim (its id is the claim's), so a repeat
        finds it and announces it again instead of keeping a claim beside it."""
        notification["seq"] = await self.stream.next_seq(notification["user_id"])
        doc = await self.stream.store(self._entry(notification))
        if doc["seq"] != notification["seq"] and doc["created_at"] < iso(now - self.ttl):
            notification["id"] = random_hex()  # an entry from before the TTL: the key is fresh again
            doc = await self.stream.store(self._entry(notification))
        return await self._announce(doc)

    async def _earlier(self, key: str, now: datetime) -> Document | None:
        doc = await self.claims.find_one({"_id": key})
        if doc is None:
            return None
        if doc["created_at"] < iso(now - self.ttl):
            await self.claims.delete_one({"_id": key, "created_at": doc["created_at"]})
            return None
        return doc

    async def _plan(
        self, notification: dict[str, Any], prefs: Effective | None, channels: list[str], now: datetime
    ) -> Document:
        if "in_app" in channels:
            notification["seq"] = await self.stream.next_seq(notification["user_id"])
        external = prefs is not None and set(channels) - {"in_app"}
        quiet_end = prefs.quiet_until(now) if prefs is not None and external else None
        return {
            "notification": notification,
            "channels": channels,
            "not_before": iso(quiet_end) if quiet_end else None,
            "done": False,
        }

    async def _finish(self, plan: Document) -> dict[str, Any] | None:
        """Carry out a plan; every step may run twice without doing anything twice."""
        if plan.get("done"):
            return plan.get("result")
        notification: dict[str, Any] = plan["notification"]
        channels: list[str] = plan["channels"]
        if not channels:
            result = None
        elif "in_app" in channels:
            result = await self._announce(await self.stream.store(self._entry(notification)))
        else:
            result = {k: v for k, v in notification.items() if k != "user_id"}
        external = [c for c in channels if c != "in_app"]
        if external:
            await self.dispatcher.enqueue(dict(notification), external, plan.get("not_before"))
        if "_id" in plan:
            await self.claims.update_one({"_id": plan["_id"]}, {"$set": {"done": True, "result": result}})
        return result

    async def _announce(self, doc: Document) -> dict[str, Any]:
        """Announce a stored entry (again, after a crash: every step may repeat)."""
        await self.stream.publish(doc)
        if self.in_app is not None and doc["inbox"]:  # stored and announced: delivered in-app
            await self.in_app.mark_in_app(doc["_id"], doc["user_id"], "delivered", category=doc["category"])
        return public_item(doc)

    @staticmethod
    def _entry(notification: Mapping[str, Any]) -> Document:
        progress = notification["category"] == PROGRESS
        return {
            "_id": notification["id"],
            "user_id": notification["user_id"],
            "seq": notification["seq"],
            "kind": "progress" if progress else "notification",
            "inbox": not progress,
            "category": notification["category"],
            "type": notification["type"],
            "title": notification["title"],
            "body": notification["body"],
            "data": notification["data"],
            "created_at": notification["created_at"],
            "read_at": None,
        }

    async def forget_old_claims(self) -> int:
        return await self.claims.delete_many({"created_at": {"$lt": iso(self.clock() - self.ttl)}})
