"""Delivery analytics from the ``deliveries`` collection: counts and rates per channel, category, day.

Definitions (also in the OpenAPI description):

- every delivery record (one per notification x channel, x device for push) created in the
  window counts once, in its CURRENT state: ``queued, sent, delivered, read, failed, dead``;
  its day is the UTC day of its ``created_at``;
- in-app records start ``delivered`` (stored in the inbox and pushed to open sockets) and
  become ``read``; push and email records end at ``sent`` (providers give no receipts) or
  ``failed`` / ``dead``;
- ``delivery_rate`` = (delivered + read) / (sent + delivered + read): of what was handed
  over, the share known to have arrived; 0 for push and email, which have no receipts;
- ``read_rate`` = read / (delivered + read);
- ``failure_rate`` = (failed + dead) / (sent + delivered + read + failed + dead): of the
  finished records (queued ones are still in flight), the share that never made it;
- a rate whose denominator is 0 is null.

The records are read in pages of ``PAGE`` in ``(created_at, _id)`` order, so a window of any
size is summed in bounded memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fittracker_plugins.notifications.delivery_policy import iso
from fittracker_plugins.notifications.models import CATEGORIES, CHANNELS

from fittracker.storage import Collection

PAGE = 1000
STATES = ("queued", "sent", "delivered", "read", "failed", "dead")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summary(counts: Mapping[str, int]) -> dict[str, Any]:
    """Counts of each state, their total, and the rates defined in the module docstring."""
    c = {state: int(counts.get(state, 0)) for state in STATES}
    handed_over = c["sent"] + c["delivered"] + c["read"]
    arrived = c["delivered"] + c["read"]
    lost = c["failed"] + c["dead"]
    return {
        **c,
        "total": sum(c.values()),
        "rates": {
            "delivery_rate": _rate(arrived, handed_over),
            "read_rate": _rate(c["read"], arrived),
            "failure_rate": _rate(lost, handed_over + lost),
        },
    }


class DeliveryStats:
    def __init__(self, deliveries: Collection) -> None:
        self.deliveries = deliveries

    async def create_indexes(self) -> None:
        await self.deliveries.create_index([("created_at", 1), ("_id", 1)])

    async def compute(self, first: date, last: date) -> dict[str, Any]:
        """Stats of the records created on days ``first`` .. ``last`` (UTC, both included)."""
        start = _day_start(first)
        end = _day_start(last + timedelta(days=1))
        channels: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        categories: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        days: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        totals: defaultdict[str, int] = defaultdict(int)
        after: tuple[str, str] | None = None
        while True:
            clauses: list[dict[str, Any]] = [{"created_at": {"$gte": start, "$lt": end}}]
            if after is not None:
                clauses.append(
                    {
                        "$or": [
                            {"created_at": {"$gt": after[0]}},
                            {"created_at": after[0], "_id": {"$gt": after[1]}},
                        ]
                    }
                )
            docs = await self.deliveries.find(
                {"$and": clauses}, sort=[("created_at", 1), ("_id", 1)], limit=PAGE
            )
            for doc in docs:
                state = str(doc.get("state"))
                if state not in STATES:
                    continue
                totals[state] += 1
                channels[str(doc.get("channel"))][state] += 1
                categories[str(doc.get("category") or "unknown")][state] += 1
                days[str(doc["created_at"])[:10]][state] += 1
            if len(docs) < PAGE:
                break
            after = (docs[-1]["created_at"], docs[-1]["_id"])
        every_day = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "totals": summary(totals),
            "channels": {name: summary(channels[name]) for name in sorted({*CHANNELS, *channels})},
            "categories": {name: summary(categories[name]) for name in sorted({*CATEGORIES, *categories})},
            "days": [{"date": d.isoformat(), **summary(days[d.isoformat()])} for d in every_day],
        }


def _day_start(day: date) -> str:
    return iso(datetime.combine(day, time.min, tzinfo=UTC))
