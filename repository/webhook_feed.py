"""The outbox writer's state (``webhook_feed``): who writes, and where it has read to.

One process at a time turns changes into outbox entries: it holds a lease on the
``feed`` document, renewed while it works, and saves the change stream's resume token
there after the entries of every change up to it are written. Each save is conditional
on still holding the lease, so a writer that lost it (paused, partitioned) can no longer
move the position; whoever takes over resumes from the last saved token and writes the
same entries again, which the outbox keeps once.

The last batch status each batch was announced with lives here too
(``batch:<id>`` documents, removed a month after their last change).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from .models import utcnow
from .mongo_types import Collection

FEED = "feed"
BATCH_STATE_TTL_SECONDS = 31 * 24 * 3600

INDEXES = [
    IndexModel([("expires_at", ASCENDING)], name="expires_ttl", expireAfterSeconds=0),
]


class FeedState:
    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    async def acquire(self, holder: str, lease_seconds: float,
                      now: datetime | None = None) -> dict[str, Any] | None:
        """Take or renew the writer's lease; the feed document when this holder has it."""
        now = now or utcnow()
        try:
            return await self.collection.find_one_and_update(
                {"_id": FEED, "$or": [{"holder": holder}, {"lease_until": {"$lt": now}}]},
                {"$set": {"holder": holder,
                          "lease_until": now + timedelta(seconds=lease_seconds)}},
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return None  # another process holds it (the upsert found no match, then lost)

    async def release(self, holder: str) -> None:
        await self.collection.update_one({"_id": FEED, "holder": holder},
                                         {"$set": {"lease_until": utcnow()}})

    async def save_token(self, holder: str, token: Any) -> bool:
        """Move the position on; False when this holder lost the lease meanwhile."""
        result = await self.collection.update_one(
            {"_id": FEED, "holder": holder, "lease_until": {"$gt": utcnow()}},
            {"$set": {"resume_token": token, "saved_at": utcnow()}})
        return result.matched_count == 1

    async def batch_status(self, batch_id: str) -> str | None:
        doc = await self.collection.find_one({"_id": f"batch:{batch_id}"})
        return None if doc is None else doc.get("status")

    async def set_batch_status(self, batch_id: str, status: str) -> None:
        now = utcnow()
        await self.collection.update_one(
            {"_id": f"batch:{batch_id}"},
            {"$set": {"status": status,
                      "expires_at": now + timedelta(seconds=BATCH_STATE_TTL_SECONDS)}},
            upsert=True)
