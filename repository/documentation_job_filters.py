"""Which documentation jobs a list, a count or a statistic is about, and their orders.

``DocumentationJobFilter`` and ``documentation_job_filter_query`` play the part of
``repository.job_filters`` for the ``documentation_jobs`` collection.

The seed keeps a run's start and end as ISO strings (``timestamp_start``,
``timestamp_end``); beside them every write stores the same instants as dates
(``started_at``, ``ended_at``), which sort and compare as instants. Documents stored
before those existed are backfilled when the indexes are ensured (at start-up); one
without a date (e.g. written meanwhile by an older process) is in no started/ended range
and in no STARTED/ENDED order, as a job that never started or ended would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne

from .job_filters import ACCESS_PREFIXES, MAX_TEXT, check_list, check_range, one_of, open_range
from .models import DocumentationJobStatus
from .mongo_types import Collection
from .pagination import SortOrder
from .validation import check_text


class DocumentationJobOrderField(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    STARTED = "started"
    ENDED = "ended"


ORDER_KEYS = {
    DocumentationJobOrderField.CREATED: "created_at",
    DocumentationJobOrderField.UPDATED: "updated_at",
    DocumentationJobOrderField.STARTED: "started_at",
    DocumentationJobOrderField.ENDED: "ended_at",
}


def documentation_job_order(by: DocumentationJobOrderField = DocumentationJobOrderField.CREATED,
                            descending: bool = True) -> SortOrder:
    """A documentation jobs list's order; by a run's start or end, only the jobs that have
    one are listed (a keyset cannot step past a null)."""
    key = ORDER_KEYS[by]
    only = {key: {"$ne": None}} if by in (DocumentationJobOrderField.STARTED,
                                          DocumentationJobOrderField.ENDED) else {}
    return SortOrder(by.value, (key,), descending, only)


FILTERED_FIELDS = ("status", "repository_name", "created_at", "updated_at", "started_at",
                   "ended_at")


def list_indexes() -> list[IndexModel]:
    """Per order and access prefix: the prefix, the order's key and ``_id``, then every
    other filtered field (named like ``readers_list_started``)."""
    indexes = []
    for by, key in ORDER_KEYS.items():
        for prefix, prefix_name in ACCESS_PREFIXES.items():
            lead = [prefix] if prefix else []
            keys = [(name, ASCENDING) for name in lead]
            keys += [(key, DESCENDING), ("_id", DESCENDING)]
            keys += [(name, ASCENDING) for name in FILTERED_FIELDS if name != key]
            indexes.append(IndexModel(keys, name="_".join(
                filter(None, [prefix_name, "list", by.value]))))
    return indexes


DOCUMENTATION_LIST_INDEXES = list_indexes()


@dataclass(frozen=True)
class DocumentationJobFilter:
    """All given conditions hold; ranges exclude their ends."""

    status: DocumentationJobStatus | None = None
    repository_name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    statuses: tuple[DocumentationJobStatus, ...] | None = None
    repository_names: tuple[str, ...] | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    ended_after: datetime | None = None
    ended_before: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("statuses", "repository_names"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    def check(self) -> DocumentationJobFilter:
        one_of(self, "status", "statuses")
        one_of(self, "repository_name", "repository_names")
        check_list("statuses", self.statuses)
        check_list("repositoryNames", self.repository_names)
        for name in (*(self.repository_names or ()), self.repository_name):
            if name is not None:
                check_text("repositoryNames" if self.repository_names else "repositoryName",
                           name, max_length=MAX_TEXT)
        for name in ("created", "started", "ended"):
            check_range(name, getattr(self, f"{name}_after"), getattr(self, f"{name}_before"))
        return self

    def query(self) -> dict[str, Any]:
        return documentation_job_filter_query(self)


def documentation_job_filter_query(job_filter: DocumentationJobFilter) -> dict[str, Any]:
    """The MongoDB filter of ``job_filter`` (checked), without any access condition."""
    job_filter.check()
    query: dict[str, Any] = {}
    statuses = job_filter.statuses or (
        None if job_filter.status is None else (job_filter.status,))
    if statuses:
        values = list(dict.fromkeys(status.value for status in statuses))
        query["status"] = values[0] if len(values) == 1 else {"$in": values}
    names = job_filter.repository_names or (
        None if job_filter.repository_name is None else (job_filter.repository_name,))
    if names:
        unique = list(dict.fromkeys(names))
        query["repository_name"] = unique[0] if len(unique) == 1 else {"$in": unique}
    for name, stored in (("created", "created_at"), ("started", "started_at"),
                         ("ended", "ended_at")):
        bounds = open_range(getattr(job_filter, f"{name}_after"),
                            getattr(job_filter, f"{name}_before"))
        if bounds:
            query[stored] = bounds
    return query


async def backfill_dates(collection: Collection, batch: int = 500) -> int:
    """``started_at``/``ended_at`` from the seed's ISO strings, for documents stored before
    they existed; idempotent, and cheap once done (nothing left to match)."""
    changed = 0
    for text, date in (("timestamp_start", "started_at"), ("timestamp_end", "ended_at")):
        while True:
            docs = await collection.find(
                {text: {"$type": "string"}, date: {"$exists": False}},
                projection={text: 1}, limit=batch).to_list()
            writes = [UpdateOne({"_id": doc["_id"], date: {"$exists": False}},
                                {"$set": {date: parse_instant(doc[text])}}) for doc in docs]
            if writes:
                changed += (await collection.bulk_write(writes, ordered=False)).modified_count
            if len(docs) < batch:
                break
    return changed


def parse_instant(text: str) -> datetime | None:
    """A seed timestamp as a date; one that does not parse is stored as None (no date)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
