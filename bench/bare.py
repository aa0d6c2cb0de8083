"""The floor of this stack: bare Starlette endpoints in the API's own process.

Each answers the same HTTP request as its GraphQL counterpart (the same body, the same
bearer token, verified the same way) with the same pymongo calls and the same JSON,
built by hand and encoded with orjson. No GraphQL, no models. ``bench`` checks at start
that both answers are equal, so the baseline cannot drift from what it stands for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graph.auth.tokens import Authenticator
from repository.access import read_filter
from repository.pagination import encode_cursor

LAST_LOGS = 10


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def job_json(doc: dict[str, Any]) -> dict[str, Any]:
    progress = doc.get("progress")
    logs = (doc.get("logs") or [])[-LAST_LOGS:]
    return {
        "jobId": doc["_id"],
        "jobType": doc["job_type"],
        "status": doc["status"],
        "parameters": doc.get("parameters"),
        "createdAt": _iso(doc["created_at"]),
        "updatedAt": _iso(doc["updated_at"]),
        "results": doc.get("results"),
        "batchId": doc.get("batch_id"),
        "owner": doc.get("owner"),
        "processingStartedAt": _iso(doc.get("processing_started_at")),
        "completedAt": _iso(doc.get("completed_at")),
        "claimedBy": doc.get("claimed_by"),
        "leaseExpiresAt": _iso(doc.get("lease_expires_at")),
        "attempts": doc.get("attempts", 0),
        "maxAttempts": doc.get("max_attempts", 3),
        "retryable": doc.get("retryable", True),
        "logSeq": doc.get("log_seq", 0),
        "version": doc.get("version", 0),
        "progress": None if progress is None else {
            "step": progress["step"], "percent": progress["percent"],
            "message": progress.get("message")},
        "logs": [{"timestamp": _iso(entry["timestamp"]), "level": entry["level"].upper(),
                  "message": entry["message"], "seq": entry.get("seq", 0),
                  "attempt": entry.get("attempt", 1)} for entry in logs],
    }


def _json(data: dict[str, Any]) -> Response:
    return Response(orjson.dumps({"data": data}), media_type="application/json")


def bare_routes(authenticator: Authenticator) -> list[Route]:
    async def job(request: Request) -> Response:
        variables = orjson.loads(await request.body())["variables"]
        principal = authenticator.identify(request.headers).principal
        jobs = request.app.state.store.jobs.collection
        doc = await jobs.find_one({"_id": variables["id"],
                                   **read_filter(principal, claimable=True)})
        return _json({"job": None if doc is None else job_json(doc)})

    async def jobs_page(request: Request) -> Response:
        variables = orjson.loads(await request.body())["variables"]
        principal = authenticator.identify(request.headers).principal
        store = request.app.state.store
        first = variables["first"]
        docs = await store.jobs.collection.find(
            read_filter(principal, claimable=True),
            sort=[("created_at", -1), ("_id", -1)], limit=first + 1).to_list()
        more, docs = len(docs) > first, docs[:first]
        batch_ids = list(dict.fromkeys(doc["batch_id"] for doc in docs if doc.get("batch_id")))
        names = {}
        if batch_ids:
            batches = await store.batches.collection.find(
                {"_id": {"$in": batch_ids}, **read_filter(principal)}).to_list()
            names = {batch["_id"]: {"batchName": batch["batch_name"]} for batch in batches}
        edges = []
        for doc in docs:
            node = job_json(doc)
            node["batch"] = names.get(doc.get("batch_id"))
            edges.append({"node": node})
        end = encode_cursor(docs[-1]["created_at"], docs[-1]["_id"]) if docs else None
        return _json({"jobs": {"edges": edges,
                               "pageInfo": {"hasNextPage": more, "endCursor": end}}})

    return [Route("/bare/job", job, methods=["POST"]),
            Route("/bare/jobs", jobs_page, methods=["POST"])]
