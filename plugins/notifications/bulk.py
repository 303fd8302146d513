"""Bulk sends: one admin request, up to every user, run in the background in batches.

A job is a document in ``bulk_jobs``; everything a runner needs to go on lives in it:
``{_id, audience, message, state, total, sent, failed, skipped, cursor, lease_owner,
lease_until, ...}``. Recipients are read a page at a time in ``_id`` order after ``cursor``
(from ``users_directory``, from ``follows``, or from the job's own sorted id list), so even
100k recipients are never in memory at once.

Each process runs a :class:`BulkRunner`: it claims runnable jobs (``queued``, or ``running``
with an expired lease) with a compare-and-set, runs each on ``ctx.jobs``, and after every
batch writes the cursor and counters in ONE update that also renews the lease. A crash
between two batches loses at most the last batch's bookkeeping; that batch is then sent again
with the same idempotency keys (``bulk:<job id>:<user id>``), which ``notify`` answers
without sending anything twice. A clean shutdown stops between batches and frees the lease,
so the next process resumes at once. Cancelling is a state change the runner sees at its
next progress write (which is filtered on ``state: running``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fittracker_plugins.notifications.delivery_policy import iso, utcnow
from fittracker_plugins.notifications.service import Notifier, claim_id

from fittracker import PluginContext
from fittracker.ids import random_hex
from fittracker.storage import Collection, Document, DuplicateKeyError

RUNNABLE = ["queued", "running"]
FINISHED = ("done", "cancelled", "failed")


def audience_of(body: Mapping[str, Any]) -> Document:
    """The stored audience: ``{kind: all}``, ``{kind: followers_of, user_id}`` or
    ``{kind: user_ids, user_ids}`` (sorted, without duplicates: the cursor is the last id sent)."""
    if body.get("all"):
        return {"kind": "all"}
    if body.get("followers_of"):
        return {"kind": "followers_of", "user_id": body["followers_of"]}
    return {"kind": "user_ids", "user_ids": sorted(set(body["user_ids"]))}


def public_job(doc: Mapping[str, Any]) -> dict[str, Any]:
    audience = dict(doc["audience"])
    if audience["kind"] == "user_ids":  # the list can be long: show its size, not its content
        audience = {"kind": "user_ids", "count": len(audience.pop("user_ids"))}
    fields = ("state", "total", "sent", "failed", "skipped", "category", "title", "created_by")
    times = ("created_at", "updated_at", "started_at", "finished_at")
    return {
        "id": doc["_id"],
        "audience": audience,
        **{key: doc[key] for key in fields},
        **{key: doc.get(key) for key in times},
        "error": doc.get("error"),
    }


class BulkJobs:
    """The jobs collection: create, read, list and cancel (the runner does the rest)."""

    def __init__(self, ctx: PluginContext) -> None:
        self.jobs: Collection = ctx.db.collection("bulk_jobs")

    async def create_indexes(self) -> None:
        await self.jobs.create_index([("state", 1), ("lease_until", 1)])
        await self.jobs.create_index([("created_at", -1), ("_id", -1)])

    async def create(self, admin_id: str, body: Mapping[str, Any]) -> tuple[Document, bool]:
        """Store a queued job; with an ``idempotency_key``, the same key returns the first job
        (and ``False``: nothing new was created)."""
        key = body.get("idempotency_key")
        now = iso(utcnow())
        doc: Document = {
            "_id": claim_id("bulk", key) if key else random_hex(),
            "audience": audience_of(body["audience"]),
            "category": body["category"],
            "title": body["title"],
            "body": body["body"],
            "data": dict(body.get("data") or {}),
            "idempotency_key": key,
            "created_by": admin_id,
            "state": "queued",
            "total": None,
            "sent": 0,
            "failed": 0,
            "skipped": 0,
            "cursor": "",
            "lease_owner": None,
            "lease_until": "",  # "" sorts before every time: claimable
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "finished_at": None,
            "error": None,
        }
        try:
            return await self.jobs.insert_one(doc), True
        except DuplicateKeyError:
            earlier = await self.jobs.find_one({"_id": doc["_id"]})
            assert earlier is not None  # jobs are never deleted
            return earlier, False

    async def get(self, job_id: str) -> Document | None:
        return await self.jobs.find_one({"_id": job_id})

    async def page(self, after: list[Mapping[str, Any]], limit: int) -> list[Document]:
        query: dict[str, Any] = {"$and": after} if after else {}
        return await self.jobs.find(query, sort=[("created_at", -1), ("_id", -1)], limit=limit)

    async def cancel(self, job_id: str) -> Document | None:
        """Cancel a queued or running job; None when it has already finished (or is unknown)."""
        now = iso(utcnow())
        return await self.jobs.update_one(
            {"_id": job_id, "state": {"$in": RUNNABLE}},
            {"$set": {"state": "cancelled", "finished_at": now, "updated_at": now, "lease_until": ""}},
        )


class BulkRunner:
    """This process's share of the bulk work (see the module docstring)."""

    def __init__(self, ctx: PluginContext, store: BulkJobs, notifier: Notifier) -> None:
        self.ctx = ctx
        self.jobs = store.jobs
        self.notifier = notifier
        self.directory: Collection = ctx.db.collection("users_directory")
        self.follows: Collection = ctx.db.collection("follows")
        self.owner = random_hex()
        settings = ctx.settings
        self.batch = int(settings["bulk_batch_size"])
        self.pause_s = float(settings["bulk_pause_s"])
        self.lease = timedelta(seconds=float(settings["bulk_lease_s"]))
        self.poll_s = float(settings["bulk_poll_s"])
        self.limit = asyncio.Semaphore(int(settings["bulk_concurrency"]))
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="notifications:bulk")

    def kick(self) -> None:
        """A job was just created here: look for it now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; running jobs stop after their current batch (ctx.jobs awaits them)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.claim_and_spawn()
            except Exception:  # a storage hiccup must not end bulk sending in this process
                self.ctx.log.exception("looking for bulk jobs failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def claim_and_spawn(self) -> None:
        now = iso(utcnow())
        candidates = await self.jobs.find(
            {"state": {"$in": RUNNABLE}, "lease_until": {"$lt": now}}, sort=[("created_at", 1)], limit=10
        )
        for doc in candidates:
            if self._stopping or doc["_id"] in self._running:
                continue
            claimed = await self.jobs.update_one(
                {"_id": doc["_id"], "state": {"$in": RUNNABLE}, "lease_until": doc["lease_until"]},
                {
                    "$set": {
                        "state": "running",
                        "lease_owner": self.owner,
                        "lease_until": self._lease_end(),
                        "started_at": doc.get("started_at") or now,
                        "updated_at": now,
                    }
                },
            )
            if claimed is not None:
                self._running.add(claimed["_id"])
                await self.ctx.jobs.spawn(self._run(claimed))

    def _lease_end(self) -> str:
        return iso(utcnow() + self.lease)

    async def _run(self, job: Document) -> None:
        job_id = job["_id"]
        try:
            await self._send_all(job)
        except Exception as exc:
            self.ctx.log.exception("bulk job %s failed", job_id)
            now = iso(utcnow())
            await self.jobs.update_one(
                {"_id": job_id, "lease_owner": self.owner, "state": "running"},
                {"$set": {"state": "failed", "error": f"{type(exc).__name__}: {exc}", "finished_at": now,
                          "updated_at": now, "lease_until": ""}},
            )  # fmt: skip
        finally:
            self._running.discard(job_id)

    async def _send_all(self, job: Document) -> None:
        mine = {"_id": job["_id"], "lease_owner": self.owner, "state": "running"}
        if job["total"] is None:
            total = await self._count(job["audience"])
            if await self.jobs.update_one(mine, {"$set": {"total": total}}) is None:
                return  # cancelled meanwhile
        cursor = str(job["cursor"])
        while not self._stopping:
            recipients, next_cursor = await self._page(job["audience"], cursor)
            outcomes = await asyncio.gather(*(self._notify(job, user_id) for user_id in recipients))
            last = len(recipients) < self.batch
            now = iso(utcnow())
            changes: dict[str, Any] = {
                "cursor": next_cursor,
                "updated_at": now,
                "lease_until": self._lease_end(),
            }
            if last:
                changes.update(state="done", finished_at=now, lease_until="")
            counts = {key: outcomes.count(key) for key in ("sent", "failed", "skipped")}
            if await self.jobs.update_one(mine, {"$set": changes, "$inc": counts}) is None:
                # Cancelled meanwhile: this batch's sends happened, so count them, then stop.
                # (If the lease was lost instead, the new owner counts them: nothing matches.)
                owned = {"_id": job["_id"], "lease_owner": self.owner, "state": "cancelled"}
                await self.jobs.update_one(owned, {"$set": {"cursor": next_cursor}, "$inc": counts})
                return
            if last:
                return
            cursor = next_cursor
            await asyncio.sleep(self.pause_s)  # yield to request handlers between batches
        # Shutting down: free the lease so that the next process resumes right away.
        await self.jobs.update_one(mine, {"$set": {"lease_until": "", "updated_at": iso(utcnow())}})

    async def _notify(self, job: Document, user_id: str) -> str:
        async with self.limit:
            try:
                result = await self.notifier.notify(
                    user_id,
                    category=job["category"],
                    type="bulk",
                    title=job["title"],
                    body=job["body"],
                    data={**job["data"], "bulk_id": job["_id"]},
                    idempotency_key=f"bulk:{job['_id']}:{user_id}",
                )
            except Exception:
                self.ctx.log.exception("bulk job %s: notifying %s failed", job["_id"], user_id)
                return "failed"
        return "skipped" if result is None else "sent"

    async def _count(self, audience: Mapping[str, Any]) -> int:
        if audience["kind"] == "all":
            return await self.directory.count({})
        if audience["kind"] == "followers_of":
            return await self.follows.count({"followee_id": audience["user_id"], "active": True})
        return len(audience["user_ids"])

    async def _page(self, audience: Mapping[str, Any], cursor: str) -> tuple[list[str], str]:
        """The next batch of recipients after ``cursor``, and the cursor after them."""
        if audience["kind"] == "user_ids":
            ids: list[str] = audience["user_ids"]
            start = bisect.bisect_right(ids, cursor) if cursor else 0
            batch = ids[start : start + self.batch]
            return batch, batch[-1] if batch else cursor
        if audience["kind"] == "all":
            docs = await self.directory.find({"_id": {"$gt": cursor}}, sort=[("_id", 1)], limit=self.batch)
            return [d["_id"] for d in docs], docs[-1]["_id"] if docs else cursor
        docs = await self.follows.find(
            {"followee_id": audience["user_id"], "active": True, "_id": {"$gt": cursor}},
            sort=[("_id", 1)],
            limit=self.batch,
        )
        return [d["follower_id"] for d in docs], docs[-1]["_id"] if docs else cursor
