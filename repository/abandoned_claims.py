"""Claims whose answer never reached their caller, undone so that no job stays claimed
for a worker that is gone (jobs and documentation jobs alike: ``claimable``).

A claim is one conditional update, but its answer can still miss its caller: the
request's deadline passes after the database applied it, the connection breaks, or the
caller disconnects while it is in flight. Each claim carries a random ``claim_token``;
undoing it is one conditional update on that token and on the job still being PROCESSING,
so it never undoes a later claim of the same job. It puts the job back to PENDING and
gives the attempt back, as if the claim had not happened.

When the outcome is unknown (no answer: the database may have applied the claim, or may
apply it later still), the token is kept here and the undo is tried again on every lease
sweep, until the claim's lease would have ended anyway; after that the reaper requeues a
claim applied that late, counting its attempt.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import pymongo
from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from .claimable import JOBS, Claimable
from .limits import Limits
from .models import utcnow
from .mongo_types import Collection

logger = logging.getLogger("jobgraph.claims")

MAX_KEPT = 10_000
"""Tokens kept for later sweeps; past this, the oldest are left to the reaper."""


def release_filter(tokens: list[str], work: Claimable = JOBS) -> dict[str, Any]:
    return {"status": work.running, "claim_token": {"$in": tokens}}


def release_update(now: datetime, work: Claimable = JOBS) -> dict[str, Any]:
    return {
        "$set": {"status": work.pending, "claimed_by": None, "claim_token": None,
                 "lease_expires_at": None, **dict.fromkeys(work.claim_fields),
                 "updated_at": now},
        "$inc": {"attempts": -1, "version": 1},
    }


class AbandonedClaims:
    """Undoes claims whose caller is gone; keeps the tokens of those whose outcome is
    unknown, each until its lease would end."""

    def __init__(self, collection: Collection, limits: Limits,
                 work: Claimable = JOBS) -> None:
        self.collection = collection
        self.limits = limits
        self.work = work
        self._until: OrderedDict[str, datetime] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._until)

    async def claim(self, query: dict[str, Any], update: dict[str, Any] | list[Any], *,
                    sort: list[tuple[str, int]], token: str, now: datetime
                    ) -> dict[str, Any] | None:
        """One claim (``update`` stamps ``token``): the claimed document, or None. When the
        caller is cancelled meanwhile, or no answer comes, the claim is undone."""
        return await self.shielded(self.collection.find_one_and_update(
            query, update, sort=sort, return_document=ReturnDocument.AFTER),
            token=token, now=now)

    async def shielded(self, claiming: Awaitable[dict[str, Any] | None], *, token: str,
                       now: datetime) -> dict[str, Any] | None:
        """``claiming``'s answer: a claim stamping ``token`` made of one write or several
        (a queue's limit takes a transaction); undone as ``claim``'s is."""
        attempt = asyncio.ensure_future(claiming)
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            self.after_cancel(attempt, token, now)
            raise
        except PyMongoError:
            self.after_error(token, now)
            raise

    def after_cancel(self, attempt: asyncio.Future[Any], token: str, claimed_at: datetime
                     ) -> None:
        """The caller was cancelled while its claim was in flight: wait for the answer
        (the claim keeps its deadline), then undo whatever it took."""
        self._detach(self._undo_when_answered(attempt, token, claimed_at))

    def after_error(self, token: str, claimed_at: datetime) -> None:
        """The claim got no answer: it may have been applied, now or later."""
        self._keep(token, claimed_at)
        self._detach(self.release(token))

    async def release(self, token: str) -> bool:
        """Undo the claim with this token if it still stands; whether it did. Database
        errors are logged, and the token kept for the next sweep."""
        try:
            with pymongo.timeout(self.limits.database_timeout_seconds):
                doc = await self.collection.find_one_and_update(
                    release_filter([token], self.work), release_update(utcnow(), self.work),
                    projection={"_id": 1})
        except PyMongoError as exc:
            logger.warning("could not undo an abandoned claim yet: %s", str(exc).splitlines()[0])
            return False
        if doc is None:
            return False
        self._until.pop(token, None)
        logger.warning("undid the claim of %s %s: its answer never reached the caller",
                       self.work.kind, doc["_id"])
        return True

    async def sweep(self) -> int:
        """Undo every kept claim the database applied meanwhile; how many it undid."""
        now = utcnow()
        for token in [token for token, until in self._until.items() if until <= now]:
            del self._until[token]
        if not self._until:
            return 0
        with pymongo.timeout(self.limits.database_timeout_seconds):
            result = await self.collection.update_many(
                release_filter(list(self._until), self.work), release_update(now, self.work))
        if result.modified_count:
            logger.warning("undid %d claims of %ss whose answer never reached the caller",
                           result.modified_count, self.work.kind)
        return result.modified_count

    async def _undo_when_answered(self, attempt: asyncio.Future[Any], token: str,
                                  claimed_at: datetime) -> None:
        try:
            doc = await attempt
        except (PyMongoError, asyncio.CancelledError):
            self.after_error(token, claimed_at)
            return
        if doc is not None and not await self.release(token):
            self._keep(token, claimed_at)

    def _keep(self, token: str, claimed_at: datetime) -> None:
        self._until[token] = claimed_at + timedelta(seconds=self.limits.lease_seconds)
        while len(self._until) > MAX_KEPT:
            self._until.popitem(last=False)

    def _detach(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` on its own, outside the request's (maybe expired) deadline."""
        task = asyncio.get_running_loop().create_task(work, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
