"""From change-stream events to webhook events, and the messages they become.

The change stream is filtered in the database (``PIPELINE``) to what a webhook can be
sent: job inserts and status or progress updates, batch inserts, every documentation
job change. An update's ``updatedFields`` are exact for that change; the rest of the
document comes from the lookup (``fullDocument: updateLookup``), which may be a later
state, so only identity fields (type, batch, repository, readers) are taken from it.

Every event has a key unique to its change (collection, object id and the ``version``
the change gave the object), so replaying the stream after a crash produces the same
message ids and the outbox stores each message once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import Timestamp

from .webhooks import WebhookEvent

WATCHED = ("jobs", "batches", "documentation_jobs")
_WRITES = ["insert", "update", "replace"]
PIPELINE: list[dict[str, Any]] = [{"$match": {"$or": [
    {"ns.coll": "jobs", "operationType": {"$in": ["insert", "replace"]}},
    {"ns.coll": "jobs", "operationType": "update",
     "updateDescription.updatedFields.status": {"$exists": True}},
    {"ns.coll": "jobs", "operationType": "update",
     "updateDescription.updatedFields.progress": {"$exists": True}},
    {"ns.coll": "batches", "operationType": "insert"},
    {"ns.coll": "documentation_jobs", "operationType": {"$in": _WRITES}},
]}}, {"$unset": "fullDocument.logs"}]
"""The lookup's job leaves its log behind: a progress change of a job at the log's maxima
would otherwise bring megabytes to the outbox writer (``repository.changes``)."""
IDENTITY = ("_id", "readers", "job_type", "batch_id", "repository_name", "owner")
"""What is taken from the looked-up document: fields no change alters (``readers`` may
change, and is checked again against the current document at delivery time)."""


@dataclass(frozen=True)
class Event:
    type: WebhookEvent
    collection: str
    object_id: str
    key: str
    """Unique to the change and the event type: the message id is derived from it."""
    data: dict[str, Any]
    occurred_at: datetime
    cluster_time: Timestamp | None
    document: dict[str, Any]
    """The stored fields filters and access checks read (``IDENTITY``)."""


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """A stored value as JSON can carry it."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def plain_dict(value: dict[str, Any]) -> dict[str, Any]:
    """``plain`` of a document, typed as one."""
    return {str(key): plain(item) for key, item in value.items()}


def events_of(raw: dict[str, Any]) -> list[Event]:
    """The webhook events of one change-stream event (none, one or two)."""
    collection = (raw.get("ns") or {}).get("coll")
    operation = raw.get("operationType")
    looked_up = raw.get("fullDocument")
    if collection not in WATCHED or operation not in _WRITES or looked_up is None:
        return []  # a deleted object: nothing left to tell anyone about
    updated = (raw.get("updateDescription") or {}).get("updatedFields") or {}
    state = {**looked_up, **{key: value for key, value in updated.items() if "." not in key}}
    version = updated.get("version") if operation == "update" else looked_up.get("version")
    change = (f"{collection}:{looked_up['_id']}:v{version}" if version is not None
              else f"{collection}:{looked_up['_id']}:{(raw.get('_id') or {}).get('_data')}")
    occurred = raw.get("wallTime") or datetime.now(UTC)
    document = {name: looked_up.get(name) for name in IDENTITY}

    def event(kind: WebhookEvent, data: dict[str, Any]) -> Event:
        return Event(kind, collection, str(looked_up["_id"]), f"{kind.value}|{change}",
                     data, occurred, raw.get("clusterTime"), document)

    if collection == "jobs":
        found = []
        if operation != "update" or "status" in updated:
            found.append(event(WebhookEvent.JOB_STATUS_CHANGED, job_data(state)))
        if operation == "update" and updated.get("progress") is not None:
            found.append(event(WebhookEvent.JOB_PROGRESS, job_data(state)))
        return found
    if collection == "documentation_jobs":
        return [event(WebhookEvent.DOCUMENTATION_JOB_CHANGED, documentation_job_data(state))]
    return [event(WebhookEvent.BATCH_STATUS_CHANGED, {})]  # data added with the counts


def job_data(state: dict[str, Any]) -> dict[str, Any]:
    return plain_dict({
        "jobId": state["_id"], "jobType": state.get("job_type"), "status": state.get("status"),
        "batchId": state.get("batch_id"), "scheduleId": state.get("schedule_id"),
        "scheduledFor": state.get("scheduled_for"), "attempts": state.get("attempts"),
        "maxAttempts": state.get("max_attempts"), "retryable": state.get("retryable"),
        "progress": state.get("progress"), "error": state.get("error"),
        "version": state.get("version"), "updatedAt": state.get("updated_at")})


def documentation_job_data(state: dict[str, Any]) -> dict[str, Any]:
    return plain_dict({
        "jobId": state["_id"], "repositoryName": state.get("repository_name"),
        "status": state.get("status"), "commitHash": state.get("commit_hash"),
        "branchName": state.get("branch_name"), "timestampStart": state.get("timestamp_start"),
        "timestampEnd": state.get("timestamp_end"), "errorMessage": state.get("error_message"),
        "moduleCount": state.get("module_count"), "version": state.get("version"),
        "updatedAt": state.get("updated_at")})


def batch_event(trigger: Event, batch: dict[str, Any], status: str,
                counts: dict[str, int]) -> Event:
    """A batch's derived status changed, noticed at ``trigger`` (its insert, or a change
    of one of its jobs). Keyed by the trigger and the status, so a replay repeats it."""
    data = plain({"batchId": batch["_id"], "batchName": batch.get("batch_name"),
                  "status": status, "counts": counts})
    document = {name: batch.get(name) for name in IDENTITY}
    return Event(WebhookEvent.BATCH_STATUS_CHANGED, "batches", str(batch["_id"]),
                 f"{WebhookEvent.BATCH_STATUS_CHANGED.value}|{status}|{trigger.key}", data,
                 trigger.occurred_at, trigger.cluster_time, document)


def message_id(webhook_id: str, event: Event) -> str:
    """The Standard Webhooks message id (``webhook-id``) of an event sent to a webhook."""
    digest = hashlib.sha256(f"{webhook_id}|{event.key}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def payload(event: Event) -> dict[str, Any]:
    """The JSON body, in the Standard Webhooks shape: type, timestamp, data."""
    return {"type": event.type.value, "timestamp": iso(event.occurred_at), "data": event.data}
