"""Each distinct document is parsed and validated once per process.

One extension instead of four (ParserCache, MaxTokensLimiter, the depth and alias
limiters, ValidationCache): the same checks, but per request only two dictionary
lookups, and no hashing of the whole parsed document (ValidationCache keys its LRU
cache on it, and graphql-core hashes AST nodes field by field).

Syntax errors (and too many tokens) are raised from the parse hook exactly as
ParserCache raises them; they are not cached, like ParserCache's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import GraphQLError, parse
from graphql.validation import ASTValidationRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.schema import validate_document


class DocumentCache:
    """Parsed documents by text, with their validation errors per rule set (LRU)."""

    def __init__(self, *, max_tokens: int, max_depth: int, max_aliases: int,
                 maxsize: int = 1024) -> None:
        self.max_tokens = max_tokens
        self.maxsize = maxsize
        # The limiters build a new rule class per instance: build them once.
        self.limit_rules: tuple[type[ASTValidationRule], ...] = (
            *QueryDepthLimiter(max_depth=max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
        )
        self.entries: OrderedDict[str, tuple[Any, dict[tuple[Any, ...], list[GraphQLError]]]] \
            = OrderedDict()

    def parsed(self, query: str) -> tuple[Any, dict[tuple[Any, ...], list[GraphQLError]]]:
        entry = self.entries.get(query)
        if entry is None:
            entry = (parse(query, max_tokens=self.max_tokens), {})
            self.entries[query] = entry
            if len(self.entries) > self.maxsize:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(query)
        return entry

    def validated(self, schema: Any, query: str, document: Any,
                  rules: Sequence[type[ASTValidationRule]]) -> list[GraphQLError]:
        _document, results = self.parsed(query)
        key = (id(schema), *rules)
        errors = results.get(key) if _document is document else None
        if errors is None:
            errors = validate_document(schema, document, (*rules, *self.limit_rules))
            if _document is document:
                results[key] = errors
        return list(errors)

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
                # the same token limit, and reports the error as a result.
                context.parse_options = {**context.parse_options,
                                         "max_tokens": self.cache.max_tokens}
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is not None:
            context.pre_execution_errors = self.cache.validated(
                context.schema._schema, context.query, context.graphql_document,
                tuple(context.validation_rules))
        yield
