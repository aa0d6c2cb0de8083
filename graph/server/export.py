"""``GET /export/jobs`` and ``GET /export/documentation-jobs``: a filtered list as NDJSON
(default) or CSV, under the caller's access, streamed from one database cursor.

The filter is the GraphQL list's own ``filter`` argument, given as JSON in the ``filter``
query parameter and coerced by the schema (``graph/engine/filters.py``); the MongoDB query
is the list's (``repository.exports``: the filter and the caller's read access), so an export
holds exactly what the list would page through, newest first. Memory stays constant: rows
are written a cursor batch at a time, and the response waits for the client to take each
chunk (the server's flow control) before reading further. A client that goes away ends
the stream and the cursor is closed at once (``killCursors``), not read to its end.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

from graph.auth.tokens import UnauthenticatedError
from graph.engine.filters import ListFilter
from repository.database import DatabaseError
from repository.errors import DomainError, ErrorCode, ValidationError
from repository.exports import export_cursor

from .error_bodies import error_body

logger = logging.getLogger("jobgraph.export")

BATCH_SIZE = 500
"""Documents per cursor batch (and rows per chunk written)."""
NDJSON = "application/x-ndjson"
CSV = "text/csv"
FORMATS = {"ndjson": NDJSON, "csv": CSV}
STATUS_OF = {ErrorCode.VALIDATION_ERROR: 400, ErrorCode.FORBIDDEN: 403,
             ErrorCode.NOT_FOUND: 404, ErrorCode.DATABASE_UNAVAILABLE: 503}

Column = tuple[str, str]
JOB_COLUMNS: list[Column] = [
    ("jobId", "_id"), ("jobType", "job_type"), ("status", "status"), ("priority", "priority"),
    ("owner", "owner"), ("batchId", "batch_id"), ("createdAt", "created_at"),
    ("updatedAt", "updated_at"), ("runAt", "run_at"),
    ("processingStartedAt", "processing_started_at"), ("completedAt", "completed_at"),
    ("claimedBy", "claimed_by"), ("attempts", "attempts"), ("maxAttempts", "max_attempts"),
    ("progressPercent", "progress.percent"), ("progressStep", "progress.step"),
    ("errorCode", "error.code"), ("errorMessage", "error.message"),
    ("parameters", "parameters"), ("results", "results"),
]
DOCUMENTATION_JOB_COLUMNS: list[Column] = [
    ("jobId", "_id"), ("repositoryName", "repository_name"),
    ("repositoryPath", "repository_path"), ("outputDirectory", "output_directory"),
    ("commitHash", "commit_hash"), ("branchName", "branch_name"), ("status", "status"),
    ("owner", "owner"), ("createdAt", "created_at"), ("updatedAt", "updated_at"),
    ("timestampStart", "timestamp_start"), ("timestampEnd", "timestamp_end"),
    ("claimedBy", "claimed_by"), ("attempts", "attempts"), ("moduleCount", "module_count"),
    ("errorMessage", "error_message"),
    ("totalFilesAnalyzed", "statistics.total_files_analyzed"),
    ("totalTokensUsed", "statistics.total_tokens_used"),
]


class Export:
    def __init__(self, view: Any, collection_of: Callable[[Any], Any], field: str,
                 columns: list[Column], name: str) -> None:
        self.view = view
        self.collection_of = collection_of
        self.filter = ListFilter(view.schema, field)
        self.columns = columns
        self.name = name
        self.projection = {path.split(".", 1)[0]: 1 for _, path in columns}

    async def handle(self, request: Request) -> Response:
        try:
            media = negotiate(request)
            if media is None:
                return JSONResponse(error_body(ErrorCode.NOT_ACCEPTABLE, "exports are "
                                               f"{NDJSON} or {CSV}"), status_code=406)
            principal = self.view.authenticator.identify(request.headers).principal
            given = self.filter.parse(request.query_params.get("filter"),
                                      self.view.decode_json)
            list_filter = (given or self.filter.empty()).to_filter()
            repository = self.collection_of(self.view.store_getter())
            cursor = export_cursor(repository, principal, list_filter, self.projection,
                                   BATCH_SIZE)
            first = await cursor.to_list(BATCH_SIZE)  # errors now, as a JSON answer
        except UnauthenticatedError as exc:
            response = JSONResponse(error_body(exc.code, exc.message), status_code=401)
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        except DomainError as exc:
            return JSONResponse(error_body(exc.code, exc.message),
                                status_code=STATUS_OF.get(exc.code, 400))
        except DatabaseError:
            return JSONResponse(error_body(ErrorCode.DATABASE_UNAVAILABLE,
                                           "MongoDB did not answer in time; retry later"),
                                status_code=503)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        extension = "csv" if media == CSV else "ndjson"
        return CursorResponse(
            self.rows(cursor, first, media), cursor, media_type=media,
            headers={"Content-Disposition":
                     f'attachment; filename="{self.name}-{stamp}.{extension}"',
                     "Cache-Control": "no-store"})

    async def rows(self, cursor: Any, first: list[dict[str, Any]], media: str
                   ) -> AsyncIterator[bytes]:
        names = [name for name, _ in self.columns]
        paths = [path.split(".") for _, path in self.columns]
        if media == CSV:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(names)

            def encode(docs: list[dict[str, Any]]) -> bytes:
                for doc in docs:
                    writer.writerow([csv_cell(pick(doc, path)) for path in paths])
                chunk = buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                return chunk
        else:
            def encode(docs: list[dict[str, Any]]) -> bytes:
                return "".join(json.dumps({name: plain(pick(doc, path)) for name, path
                                           in zip(names, paths, strict=True)},
                                          separators=(",", ":")) + "\n"
                               for doc in docs).encode()
        yield encode(first)  # (a CSV's header, when nothing matched)
        while True:
            docs = await cursor.to_list(BATCH_SIZE)
            if not docs:
                return
            yield encode(docs)


class CursorResponse(StreamingResponse):
    """Closes its cursor however the stream ends: finished, failed, or the client gone
    (then Starlette cancels the stream, or the server's ``send`` raises)."""

    def __init__(self, content: AsyncIterator[bytes], cursor: Any, **options: Any) -> None:
        super().__init__(content, **options)
        self.cursor = cursor

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
                try:
                    await self.cursor.close()
                except DatabaseError as exc:
                    logger.warning("closing an export's cursor failed: %s", exc)


def negotiate(request: Request) -> str | None:
    """``?format=`` first (VALIDATION_ERROR when unknown), then Accept; NDJSON by default."""
    given = request.query_params.get("format")
    if given is not None:
        if given.lower() not in FORMATS:
            raise ValidationError("format", f"must be one of {', '.join(FORMATS)}")
        return FORMATS[given.lower()]
    accept = request.headers.get("accept", "").lower()
    if not accept.strip():
        return NDJSON
    kinds = accepted(accept)
    for kind in kinds:
        if kind in (NDJSON, "application/jsonl", "application/json"):
            return NDJSON
        if kind == CSV:
            return CSV
    if any(kind in ("*/*", "application/*", "text/*") for kind in kinds):
        return CSV if "text/*" in kinds and "*/*" not in kinds else NDJSON
    return None


def accepted(accept: str) -> list[str]:
    """The media ranges of an Accept header, most preferred first (by ``q``, then as
    listed), leaving out those refused with ``q=0`` (RFC 9110, 12.5.1); an unreadable
    ``q`` counts as 1."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        kind, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    weight = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    weight = 1.0
        if kind and weight > 0:
            ranked.append((-weight, index, kind))
    return [kind for _, _, kind in sorted(ranked)]


def pick(doc: dict[str, Any], path: list[str]) -> Any:
    value: Any = doc
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""How a spreadsheet recognises a formula: text a client wrote (an error message, a step)
must not become one when an operator opens the export (OWASP's CSV injection)."""


def csv_cell(value: Any) -> Any:
    """Scalars as they are (a date in ISO 8601, null as empty), text that would read as a
    formula behind a ``'``; objects as JSON."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_routes(view: Any) -> list[Route]:
    return [
        Route("/export/jobs", Export(view, lambda store: store.jobs, "jobs", JOB_COLUMNS,
                                     "jobs").handle, methods=["GET"]),
        Route("/export/documentation-jobs",
              Export(view, lambda store: store.documentation_jobs, "documentationJobs",
                     DOCUMENTATION_JOB_COLUMNS, "documentation-jobs").handle, methods=["GET"]),
    ]
