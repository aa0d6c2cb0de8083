"""Each distinct document is parsed and validated once per process.

One extension instead of four (ParserCache, MaxTokensLimiter, the depth and alias
limiters, ValidationCache): the same checks, but per request only two dictionary
lookups, and no hashing of the whole parsed document (ValidationCache keys its LRU
cache on it, and graphql-core hashes AST nodes field by field). The size limits
(``graph/engine/limits.py``) run first, in time linear in the document; a document
over them meets no other rule.

Syntax errors (and too many tokens) are raised from the parse hook exactly as
ParserCache raises them, already coded; they are not cached, like ParserCache's.

A document seen for the first time is validated in a worker thread, one at a time:
within the limits, graphql-core's rules still cost up to a second of CPU on a 2,000-token
document (overlapping fields are compared pairwise), and an attacker who varies the
document would otherwise hold the event loop (every request, socket and the change
stream) for all of it. In a thread, the loop keeps its turn every few milliseconds.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError, OperationDefinitionNode, parse
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension

from repository.errors import ErrorCode

from .internals import provided_operation_name, validate_document
from .limits import DocumentLimits
from .literals import named_literals

TOO_MANY_TOKENS = "Syntax Error: Document contains more than"
"""How graphql-core's parser starts the error for ``max_tokens`` (the same class as a
syntax error): the one place its message is read."""


def syntax_error_code(error: GraphQLSyntaxError) -> ErrorCode:
    """A document over the token limit is too complex; anything else is a syntax error."""
    if error.message.startswith(TOO_MANY_TOKENS):
        return ErrorCode.QUERY_TOO_COMPLEX
    return ErrorCode.GRAPHQL_PARSE_FAILED


class DocumentCache:
    """Parsed documents by text, with their validation errors per rule set (LRU)."""

    def __init__(self, *, max_tokens: int, max_depth: int, max_aliases: int,
                 max_fields: int, maxsize: int = 1024) -> None:
        self.max_tokens = max_tokens
        self.maxsize = maxsize
        self.limits = DocumentLimits(max_depth, max_aliases, max_fields)
        self._validating: asyncio.Semaphore | None = None
        self.entries: OrderedDict[str, tuple[Any, dict[tuple[Any, ...], list[GraphQLError]]]] \
            = OrderedDict()

    def parsed(self, query: str) -> tuple[Any, dict[tuple[Any, ...], list[GraphQLError]]]:
        entry = self.entries.get(query)
        if entry is None:
            try:
                document = parse(query, max_tokens=self.max_tokens)
            except GraphQLSyntaxError as error:
                error.extensions = {"code": syntax_error_code(error).value}
                raise
            entry = (document, {})
            self.entries[query] = entry
            if len(self.entries) > self.maxsize:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(query)
        return entry

    async def validated(self, schema: Any, query: str, document: Any,
                        rules: Sequence[type[ASTValidationRule]]) -> list[GraphQLError]:
        _document, results = self.parsed(query)
        key = (id(schema), *rules)
        errors = results.get(key) if _document is document else None
        if errors is None:
            if self._validating is None:
                self._validating = asyncio.Semaphore(1)
            async with self._validating:
                errors = await asyncio.to_thread(self.validate, schema, document, tuple(rules))
            if _document is document:
                results[key] = errors
        return list(errors)

    def validate(self, schema: Any, document: Any,
                 rules: tuple[type[ASTValidationRule], ...]) -> list[GraphQLError]:
        return self.limits.check(document) or validate_document(schema, document,
                                                                named_literals(rules))

    def ready(self, query: str) -> Any:
        """The parsed document once it has been validated without error; else None."""
        entry = self.entries.get(query)
        if entry is None or not entry[1] or any(entry[1].values()):
            return None
        self.entries.move_to_end(query)
        return entry[0]

    def extension(self) -> PreparedDocuments:
        return PreparedDocuments(self)


class PreparedDocuments(SchemaExtension):
    def __init__(self, cache: DocumentCache) -> None:
        self.cache = cache

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            try:
                context.graphql_document = self.cache.parsed(context.query)[0]
            except GraphQLError:
                # Not raised from this hook, which runs outside Strawberry's error handling
                # when it streams (SSE, multipart, WebSocket): Strawberry parses again, with
                # the same token limit, and answers the error (``syntax_error_code``).
                context.parse_options = {**context.parse_options,
                                         "max_tokens": self.cache.max_tokens}
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is not None:
            errors = await self.cache.validated(
                context.schema._schema, context.query, context.graphql_document,
                tuple(context.validation_rules))
            if not errors and provided_operation_name(context) is None:
                errors = unnamed_choice(context.graphql_document)
            context.pre_execution_errors = errors
        yield


def unnamed_choice(document: Any) -> list[GraphQLError]:
    """The GraphQL spec's refusal of a document with several operations and no name
    (Strawberry would run the first)."""
    operations = sum(isinstance(definition, OperationDefinitionNode)
                     for definition in document.definitions)
    if operations <= 1:
        return []
    return [GraphQLError(
        "Must provide operation name if query contains multiple operations.",
        extensions={"code": ErrorCode.GRAPHQL_VALIDATION_FAILED.value})]
