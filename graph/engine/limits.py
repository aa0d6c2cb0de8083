"""Limits on what one document may ask for, measured in time linear in its size.

Depth, aliases and fields are counted on the document as if every fragment were written
out in full, but each fragment is measured once and its measures reused at every spread:
n fragments that each spread the next twice cost n steps, not 2**n (Strawberry's depth
and alias limiters walk every spread anew, so a 1 KB document could hold the event loop
for minutes). A document over a limit is refused before any other validation rule sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from repository.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class Measure:
    levels: int
    """Fields on the longest chain from the top of the selection down."""
    aliases: int
    fields: int


NOTHING = Measure(0, 0, 0)


class _Measurer:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.done: dict[str, Measure] = {}
        self.open: set[str] = set()

    def selection_set(self, node: SelectionSetNode | None) -> Measure:
        levels = aliases = fields = 0
        for selection in node.selections if node is not None else ():
            if isinstance(selection, FieldNode):
                inner = self.selection_set(selection.selection_set)
                # Introspection fields do not count for depth (GraphiQL's query nests
                # ``ofType`` deeply), as with Strawberry's limiter; their fields do count.
                introspection = selection.name.value.startswith("__")
                levels = max(levels, 1 + (0 if introspection else inner.levels))
                aliases += inner.aliases + (selection.alias is not None)
                fields += inner.fields + 1
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.selection_set(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
            else:  # pragma: no cover - graphql-core has no other selection
                continue
            levels = max(levels, inner.levels)
            aliases += inner.aliases
            fields += inner.fields
        return Measure(levels, aliases, fields)

    def fragment(self, name: str) -> Measure:
        found = self.done.get(name)
        if found is not None:
            return found
        definition = self.fragments.get(name)
        if definition is None or name in self.open:
            return NOTHING  # unknown or cyclic: the validation rules report it
        self.open.add(name)
        try:
            found = self.done[name] = self.selection_set(definition.selection_set)
        finally:
            self.open.discard(name)
        return found


@dataclass(frozen=True)
class DocumentLimits:
    max_depth: int
    max_aliases: int
    max_fields: int

    def check(self, document: DocumentNode) -> list[GraphQLError]:
        """The limits ``document`` exceeds, each error coded QUERY_TOO_COMPLEX."""
        fragments = {definition.name.value: definition for definition in document.definitions
                     if isinstance(definition, FragmentDefinitionNode)}
        measurer = _Measurer(fragments)
        errors: list[str] = []
        aliases = fields = 0
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            measure = measurer.selection_set(definition.selection_set)
            aliases += measure.aliases
            fields += measure.fields
            if measure.levels - 1 > self.max_depth:
                name = definition.name.value if definition.name else "anonymous"
                errors.append(f"'{name}' exceeds maximum operation depth of {self.max_depth}")
        if aliases > self.max_aliases:
            errors.append(f"{aliases} aliases found. Allowed: {self.max_aliases}")
        if fields > self.max_fields:
            errors.append(f"the document selects {fields} fields once its fragments are "
                          f"expanded. Allowed: {self.max_fields}")
        return [GraphQLError(message, extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value})
                for message in errors]
