"""The one schema, composed from each domain's roots."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from .access import Viewer
from .batches.mutations import BatchMutations
from .batches.queries import BatchQueries
from .context import Info
from .documentation_jobs.mutations import DocumentationJobMutations
from .documentation_jobs.queries import DocumentationJobQueries
from .execution import FastExecutor
from .jobs.mutations import JobMutations
from .jobs.queries import JobQueries
from .observability import Observability
from .prepared import DocumentCache
from .realtime.subscriptions import Subscription
from .settings import Settings


@strawberry.type(description="Everything that can be read.")
class Query(JobQueries, BatchQueries, DocumentationJobQueries):
    @strawberry.field(description="Who the server thinks you are.")
    def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        return Viewer(user_id=principal.user_id, roles=sorted(principal.roles),
                      anonymous=principal.is_anonymous)


@strawberry.type(description="Everything that changes state.")
class Mutation(JobMutations, BatchMutations, DocumentationJobMutations):
    pass


class Schema(strawberry.Schema):
    documents: DocumentCache | None = None
    """Parsed and validated documents, shared with the view's express lane."""

    async def execute(self, query: str | None, variable_values: Any = None,
                      context_value: Any = None, root_value: Any = None,
                      operation_name: str | None = None,
                      allowed_operation_types: Iterable[OperationType] | None = None,
                      operation_extensions: Any = None) -> ExecutionResult:
        """Never a subscription: Strawberry would call its generator like a query resolver
        (INTERNAL_SERVER_ERROR). Subscriptions run through ``subscribe``/``stream`` (a
        WebSocket, SSE or multipart); refused here, the view answers UNSUPPORTED_TRANSPORT."""
        allowed = set(DEFAULT_ALLOWED_OPERATION_TYPES if allowed_operation_types is None
                      else allowed_operation_types)
        allowed.discard(OperationType.SUBSCRIPTION)
        return await super().execute(query, variable_values, context_value, root_value,
                                     operation_name, allowed, operation_extensions)

    async def subscribe(self, query: str | None, variable_values: Any = None,
                        context_value: Any = None, root_value: Any = None,
                        operation_name: str | None = None,
                        operation_extensions: Any = None) -> Any:
        """Any operation, not only subscriptions: only the legacy ``graphql-ws`` protocol's
        handler calls this, and its clients (gql, subscriptions-transport-ws) send queries
        and mutations over the socket too; those answer once, then complete."""
        return await self.stream(query, variable_values, context_value, root_value,
                                 operation_name, operation_extensions,
                                 DEFAULT_ALLOWED_OPERATION_TYPES)

    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        """Strawberry would log every error with its traceback; ``graph.errors`` already
        logs the unexpected ones (and warns of database outages), expected ones not at all."""


def build_schema(settings: Settings | None = None) -> Schema:
    settings = settings or Settings()
    documents = DocumentCache(max_tokens=settings.max_tokens, max_depth=settings.max_query_depth,
                              max_aliases=settings.max_aliases)
    # Factories, not instances: a fresh extension per request (the caches are shared).
    extensions: list = [
        Observability,  # error codes, then metrics and logs
        documents.extension,  # parse, limit and validate each distinct document once
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    schema = Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True),
        execution_context_class=FastExecutor,
    )
    schema.documents = documents
    return schema


def export_sdl() -> str:
    """The SDL committed as ``schema.graphql``; independent of runtime settings."""
    return build_schema(Settings()).as_str() + "\n"
