"""The one schema, composed from each domain's roots."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from graph.config.settings import Settings
from graph.engine.documents import DocumentCache, unnamed_choice
from graph.engine.executor import FastExecutor
from graph.engine.express import SUBSCRIPTIONS, ExpressLane
from graph.engine.internals import graphql_schema
from graph.engine.plans import direct_subscribers
from graph.schema.batches.mutations import BatchMutations
from graph.schema.batches.queries import BatchQueries
from graph.schema.batches.subscriptions import BatchSubscriptions
from graph.schema.core.access import Viewer
from graph.schema.core.context import Info
from graph.schema.documentation_jobs.mutations import DocumentationJobMutations
from graph.schema.documentation_jobs.queries import DocumentationJobQueries
from graph.schema.documentation_jobs.subscriptions import DocumentationJobSubscriptions
from graph.schema.jobs.bulk import BulkJobMutations
from graph.schema.jobs.history import JobHistorySubscriptions
from graph.schema.jobs.mutations import JobMutations
from graph.schema.jobs.queries import JobQueries
from graph.schema.jobs.subscriptions import JobLogSubscriptions, JobSubscriptions
from graph.schema.queues.mutations import QueueMutations
from graph.schema.queues.queries import QueueQueries
from graph.schema.schedules.mutations import ScheduleMutations
from graph.schema.schedules.queries import ScheduleQueries
from graph.schema.webhooks.mutations import WebhookMutations
from graph.schema.webhooks.queries import WebhookQueries

from .batches.types import fetch_batches
from .core.dates import SCALARS as DATE_SCALARS
from .core.errors import ErrorCodes
from .core.json_values import SCALARS as JSON_SCALARS
from .core.node import node_queries
from .documentation_jobs.types import fetch_documentation_jobs
from .express import express_stream
from .jobs.types import fetch_jobs
from .queues.types import fetch_queues, fetch_workers
from .schedules.types import fetch_schedules
from .webhooks.types import fetch_deliveries, fetch_webhooks

EVERY_OPERATION_TYPE = frozenset(OperationType)

NodeQueries = node_queries({
    "SecretaryJob": fetch_jobs,
    "BatchJob": fetch_batches,
    "DocumentationJob": fetch_documentation_jobs,
    "Queue": fetch_queues,
    "Worker": fetch_workers,
    "Schedule": fetch_schedules,
    "Webhook": fetch_webhooks,
    "WebhookDelivery": fetch_deliveries,
})


@strawberry.type(description="Everything that can be read.")
class Query(JobQueries, BatchQueries, DocumentationJobQueries, QueueQueries, ScheduleQueries,
            WebhookQueries, NodeQueries):  # type: ignore[valid-type, misc]  # made by a function
    @strawberry.field(description="Who the server thinks you are.")
    def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        return Viewer(user_id=principal.user_id, roles=sorted(principal.roles),
                      anonymous=principal.is_anonymous)


@strawberry.type(description="Everything that changes state.")
class Mutation(JobMutations, BatchMutations, DocumentationJobMutations, QueueMutations,
               ScheduleMutations, WebhookMutations, BulkJobMutations):
    pass


@strawberry.type(description="Everything that can be followed as it changes: each "
                 "subscription sends the current state first, then every change.")
class Subscription(JobSubscriptions, BatchSubscriptions, DocumentationJobSubscriptions,
                   JobLogSubscriptions, JobHistorySubscriptions):
    pass


class Schema(strawberry.Schema):
    documents: DocumentCache | None = None
    """Parsed and validated documents, shared with the view's express lane."""
    express: ExpressLane | None = None
    """Subscriptions of validated documents run through it (``stream``)."""
    errors: type[ErrorCodes] = ErrorCodes
    """The extension that codes errors, and records what the express lane runs."""

    # Strawberry caches these two with ``functools.lru_cache`` on the method, keyed by the
    # schema itself: the last 128 schemas a process built stayed alive (the test suite
    # builds one per app: ~1M objects per worker, walked by every full collection). A
    # dict lookup and a scan of a few directives need no cache.
    def get_type_by_name(self, name: str) -> Any:  # type: ignore[override]  # an lru_cache there
        found = self.schema_converter.type_map.get(name)
        return None if found is None else found.definition

    def get_directive_by_name(self, graphql_name: str) -> Any:  # type: ignore[override]
        name_of = self.config.name_converter.from_directive
        return next((directive for directive in self.directives
                     if name_of(directive) == graphql_name), None)

    async def execute(self, query: str | None, variable_values: Any = None,
                      context_value: Any = None, root_value: Any = None,
                      operation_name: str | None = None,
                      allowed_operation_types: Iterable[OperationType] | None = None,
                      operation_extensions: Any = None) -> ExecutionResult:
        """Never a subscription: Strawberry would call its generator like a query resolver
        (INTERNAL_SERVER_ERROR). Subscriptions run through ``subscribe``/``stream`` (a
        WebSocket, SSE or multipart); refused here, the view answers UNSUPPORTED_TRANSPORT."""
        allowed = set(EVERY_OPERATION_TYPE if allowed_operation_types is None
                      else allowed_operation_types)
        allowed.discard(OperationType.SUBSCRIPTION)
        return await super().execute(query, variable_values, context_value, root_value,
                                     operation_name, self._refusable(query, operation_name,
                                                                     allowed),
                                     operation_extensions)

    async def subscribe(self, query: str | None, variable_values: Any = None,
                        context_value: Any = None, root_value: Any = None,
                        operation_name: str | None = None,
                        operation_extensions: Any = None) -> Any:
        """Any operation, not only subscriptions: only the legacy ``graphql-ws`` protocol's
        handler calls this, and its clients (gql, subscriptions-transport-ws) send queries
        and mutations over the socket too; those answer once, then complete."""
        return await self.stream(query, variable_values, context_value, root_value,
                                 operation_name, operation_extensions,
                                 EVERY_OPERATION_TYPE)

    async def stream(self, query: str | None, variable_values: Any = None,
                     context_value: Any = None, root_value: Any = None,
                     operation_name: str | None = None, operation_extensions: Any = None,
                     allowed_operation_types: Iterable[OperationType] | None = None) -> Any:
        """A subscription of a document already validated runs past Strawberry's
        extensions (``graph/schema/express.py``); anything else as Strawberry runs it."""
        lane = self.express
        prepared = None if lane is None or not query else lane.prepared(
            query, operation_name, SUBSCRIPTIONS)
        if lane is not None and prepared is not None and (
                allowed_operation_types is None
                or OperationType.SUBSCRIPTION in allowed_operation_types):
            document, operation = prepared
            return express_stream(lane, self.errors.record, document,
                                  operation.name.value if operation.name else None,
                                  context_value, root_value, variable_values, operation_name,
                                  operation_extensions)
        return await super().stream(query, variable_values, context_value, root_value,
                                    operation_name, operation_extensions,
                                    self._refusable(query, operation_name,
                                                    allowed_operation_types))

    def _refusable(self, query: str | None, operation_name: str | None,
                   allowed: Iterable[OperationType] | None) -> Any:
        """Every operation type for a document of several operations and no name, which
        validation refuses as the GraphQL spec says (``unnamed_choice``): Strawberry would
        first check the type of the first operation against the transport's, and refuse
        it for that ("queries are not allowed")."""
        if operation_name is not None or not query or self.documents is None:
            return allowed
        try:
            document = self.documents.parsed(query)[0]
        except GraphQLError:  # answered by Strawberry's parse, as before
            return allowed
        return EVERY_OPERATION_TYPE if unnamed_choice(document) else allowed

    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        """Strawberry would log every error with its traceback; ``graph.errors`` already
        logs the unexpected ones (and warns of database outages), expected ones not at all."""


def build_schema(settings: Settings | None = None,
                 errors: type[ErrorCodes] = ErrorCodes) -> Schema:
    """The schema; ``errors`` is the extension that codes errors (the server passes one
    that also measures and logs each operation)."""
    settings = settings or Settings()
    documents = DocumentCache(max_tokens=settings.max_tokens, max_depth=settings.max_query_depth,
                              max_aliases=settings.max_aliases,
                              max_fields=settings.max_query_fields)
    # Factories, not instances: a fresh extension per request (the caches are shared).
    extensions: list[Any] = [
        errors,  # error codes (and, from the server, metrics and logs)
        documents.extension,  # parse, limit and validate each distinct document once
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    schema = Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True, scalar_map={**DATE_SCALARS, **JSON_SCALARS}),
        execution_context_class=FastExecutor,
    )
    schema.documents = documents
    direct_subscribers(graphql_schema(schema), schema)
    schema.express = ExpressLane(schema)
    schema.errors = errors
    return schema


def export_sdl() -> str:
    """The SDL committed as ``schema.graphql``; independent of runtime settings."""
    return build_schema(Settings()).as_str() + "\n"
