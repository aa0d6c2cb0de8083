"""Which jobs a list, a count or a statistic is about, and the orders a list may take.

``JobFilter`` is the one description of a set of jobs; ``job_filter_query`` is the one
place that turns it into a MongoDB filter (checked first: a contradiction or an
out-of-range value is a VALIDATION_ERROR naming the field). Lists, counts, statistics
and anything else that acts on "the jobs matching a filter" combine it with the caller's
access filter, so each gets every condition below for free.

Every condition and order is served by an index (``LIST_INDEXES``, checked by
tests/repository/test_index_coverage.py): the tight ``*_created`` indexes for status,
type and batch in the default order, and per order a wide index whose keys after the
order's hold every other filtered field, so MongoDB decides each condition from index
keys and never sorts in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from .errors import ValidationError
from .models import JobStatus
from .pagination import SortOrder
from .validation import check_text

MAX_FILTER_VALUES = 50
"""The most values one list condition (``statuses``, ``job_types``) may hold."""
MAX_TEXT = 1000
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000


class JobOrderField(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    FINISHED = "finished"
    PRIORITY = "priority"


ORDER_KEYS: dict[JobOrderField, tuple[str, ...]] = {
    JobOrderField.CREATED: ("created_at",),
    JobOrderField.UPDATED: ("updated_at",),
    JobOrderField.FINISHED: ("completed_at",),
    JobOrderField.PRIORITY: ("priority", "created_at"),
}
FINISHED_ONLY = {"completed_at": {"$ne": None}}
"""Ordered by finish time, a list holds finished jobs only (a keyset cannot step past a
job without one)."""


def job_order(by: JobOrderField = JobOrderField.CREATED, descending: bool = True) -> SortOrder:
    """A jobs list's order: ``by``'s keys, then ``_id``."""
    return SortOrder(by.value, ORDER_KEYS[by], descending,
                     FINISHED_ONLY if by is JobOrderField.FINISHED else {})


FILTERED_FIELDS = ("status", "job_type", "batch_id", "owner", "claimed_by", "error.code",
                   "priority", "created_at", "updated_at", "completed_at")
"""Every field a ``JobFilter`` condition reads."""
ACCESS_PREFIXES = {"": "", "readers": "readers", "claimed_by": "claimed"}
"""The read filter's own equality (none for admins, a reader's, a worker's branch)."""


def list_indexes() -> list[IndexModel]:
    """Per order and access prefix, one index: the prefix, the order's keys and ``_id``,
    then every other filtered field (named like ``readers_list_updated``)."""
    indexes = []
    for by, keys in ORDER_KEYS.items():
        for prefix, prefix_name in ACCESS_PREFIXES.items():
            lead = [prefix] if prefix else []
            rest = [name for name in FILTERED_FIELDS if name not in (*lead, *keys)]
            index_keys = [(name, ASCENDING) for name in lead]
            index_keys += [(name, DESCENDING) for name in (*keys, "_id")]
            index_keys += [(name, ASCENDING) for name in rest]
            name = "_".join(filter(None, [prefix_name, "list", by.value]))
            indexes.append(IndexModel(index_keys, name=name))
    return indexes


LIST_INDEXES = list_indexes()


@dataclass(frozen=True)
class JobFilter:
    """All given conditions hold. Ranges are open (``*_after``/``*_before`` exclude their
    instant); priorities are inclusive. ``status``/``job_type`` are the one-value forms of
    ``statuses``/``job_types`` (give one form or the other)."""

    status: JobStatus | None = None
    job_type: str | None = None
    batch_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    statuses: tuple[JobStatus, ...] | None = None
    job_types: tuple[str, ...] | None = None
    has_batch: bool | None = None
    owner: str | None = None
    claimed_by: str | None = None
    error_code: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    finished_after: datetime | None = None
    finished_before: datetime | None = None
    min_priority: int | None = None
    max_priority: int | None = None

    def __post_init__(self) -> None:
        for name in ("statuses", "job_types"):  # lists from GraphQL, tuples stay hashable
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    @property
    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def wanted_statuses(self) -> list[JobStatus] | None:
        if self.statuses is not None:
            return list(dict.fromkeys(self.statuses))
        return None if self.status is None else [self.status]

    def wanted_types(self) -> list[str] | None:
        if self.job_types is not None:
            return list(dict.fromkeys(self.job_types))
        return None if self.job_type is None else [self.job_type]

    def check(self) -> JobFilter:
        """VALIDATION_ERROR, naming the field (by its GraphQL name), for a contradiction,
        an empty or too long list, a reversed range or an out-of-range priority."""
        one_of(self, "status", "statuses")
        one_of(self, "job_type", "job_types")
        check_list("statuses", self.statuses)
        check_list("jobTypes", self.job_types)
        for job_type in self.wanted_types() or ():
            check_text("jobTypes" if self.job_types else "jobType", job_type,
                       max_length=MAX_TEXT)
        for name, value in (("batchId", self.batch_id), ("owner", self.owner),
                            ("claimedBy", self.claimed_by), ("errorCode", self.error_code)):
            if value is not None:  # given: not empty either
                check_text(name, value, max_length=MAX_TEXT)
        if self.batch_id is not None and self.has_batch is False:
            raise ValidationError("hasBatch", "is false, but batchId names a batch")
        for name in ("created", "updated", "finished"):
            check_range(name, getattr(self, f"{name}_after"), getattr(self, f"{name}_before"))
        for name, priority in (("minPriority", self.min_priority),
                               ("maxPriority", self.max_priority)):
            if priority is not None and not MIN_PRIORITY <= priority <= MAX_PRIORITY:
                raise ValidationError(name, f"must be between {MIN_PRIORITY} and "
                                      f"{MAX_PRIORITY}")
        if (self.min_priority is not None and self.max_priority is not None
                and self.min_priority > self.max_priority):
            raise ValidationError("minPriority", "must not be above maxPriority")
        return self

    def query(self) -> dict[str, Any]:
        return job_filter_query(self)

    def may_have_matched(self, changed: frozenset[str] | None) -> bool:
        """Whether a job that does not ``match`` now may have before a change that wrote
        ``changed`` (its top-level fields; None: unknown): a field ``matches`` reads."""
        if changed is None:
            return True
        return any(name in changed for name, condition in (
            ("status", self.wanted_statuses()), ("job_type", self.wanted_types()),
            ("batch_id", self.batch_id)) if condition is not None)

    def matches(self, document: dict[str, Any] | None) -> bool:
        """Whether a stored job document passes the status, type and batch conditions
        (what a filtered subscription asks for)."""
        if document is None:
            return False
        statuses, types = self.wanted_statuses(), self.wanted_types()
        return ((statuses is None or document.get("status") in {s.value for s in statuses})
                and (types is None or document.get("job_type") in types)
                and (self.batch_id is None or document.get("batch_id") == self.batch_id))


def job_filter_query(job_filter: JobFilter) -> dict[str, Any]:
    """The MongoDB filter of ``job_filter`` (checked), without any access condition."""
    job_filter.check()
    query: dict[str, Any] = {}
    statuses = job_filter.wanted_statuses()
    if statuses is not None:
        values = [status.value for status in statuses]
        query["status"] = values[0] if len(values) == 1 else {"$in": values}
    types = job_filter.wanted_types()
    if types is not None:
        query["job_type"] = types[0] if len(types) == 1 else {"$in": types}
    if job_filter.batch_id is not None:
        query["batch_id"] = job_filter.batch_id
    elif job_filter.has_batch is not None:
        query["batch_id"] = {"$ne": None} if job_filter.has_batch else None
    for name, value in (("owner", job_filter.owner), ("claimed_by", job_filter.claimed_by),
                        ("error.code", job_filter.error_code)):
        if value is not None:
            query[name] = value
    for name, stored in (("created", "created_at"), ("updated", "updated_at"),
                         ("finished", "completed_at")):
        bounds = open_range(getattr(job_filter, f"{name}_after"),
                            getattr(job_filter, f"{name}_before"))
        if bounds:
            query[stored] = bounds
    priority = {op: bound for op, bound in (("$gte", job_filter.min_priority),
                                            ("$lte", job_filter.max_priority))
                if bound is not None}
    if priority:
        query["priority"] = priority
    return query


def check_order(job_filter: JobFilter, order: SortOrder) -> None:
    """Refuse a filter that the order makes empty for sure."""
    statuses = job_filter.wanted_statuses()
    if order.only is FINISHED_ONLY and statuses is not None and not (
            {JobStatus.COMPLETED, JobStatus.FAILED} & set(statuses)):
        raise ValidationError("orderBy", "FINISHED lists finished jobs only (COMPLETED or "
                              "FAILED), and the filter asks for none of them")


def one_of(value: Any, single: str, several: str) -> None:
    if getattr(value, single) is not None and getattr(value, several) is not None:
        raise ValidationError(graphql_name(several),
                              f"cannot be combined with {graphql_name(single)}; give one")


def check_list(field: str, values: tuple[Any, ...] | None) -> None:
    if values is None:
        return
    if not values:
        raise ValidationError(field, "must not be empty (leave it out for any)")
    if len(values) > MAX_FILTER_VALUES:
        raise ValidationError(field, f"holds {len(values)} values; at most "
                              f"{MAX_FILTER_VALUES}")


def check_range(name: str, after: datetime | None, before: datetime | None) -> None:
    if after is not None and before is not None and after >= before:
        raise ValidationError(f"{name}After", f"must be before {name}Before (the range "
                              "excludes both ends)")


def open_range(after: datetime | None, before: datetime | None) -> dict[str, Any]:
    return {op: bound for op, bound in (("$gt", after), ("$lt", before)) if bound is not None}


def graphql_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
