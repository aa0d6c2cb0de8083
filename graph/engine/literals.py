"""Literal values refused by validation name the argument and the place inside it.

graphql-core's ValuesOfCorrectTypeRule reports only the scalar's message
(``Value cannot represent a DateTime: ...``), so a client whose document holds several
literals learns which one only from a line and column. A bad variable's error already
says ``Variable '$f' has invalid value at .createdAfter: ...``; this rule words a bad
literal the same way graphql-core's executor does: ``Argument 'filter' has invalid value
at .createdAfter: ...``. Same checks, same locations; only the message is longer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError, validate_input_literal
from graphql.language import SKIP, ArgumentNode, ValueNode, VisitorAction
from graphql.validation import ASTValidationRule, ValuesOfCorrectTypeRule


class NamedValuesOfCorrectTypeRule(ValuesOfCorrectTypeRule):
    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.argument: str | None = None

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self.argument = node.name.value

    def leave_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self.argument = None

    def is_valid_value_node(self, node: ValueNode, input_type: Any) -> VisitorAction:
        if input_type:
            argument = self.argument

            def on_error(error: GraphQLError, path: Sequence[str | int]) -> None:
                if argument is not None:
                    error = GraphQLError(
                        f"Argument '{argument}' has invalid value{where(path)}: "
                        f"{error.message}", error.nodes, original_error=error.original_error)
                self.report_error(error)

            validate_input_literal(node, input_type, on_error, None, None,
                                   self.context.hide_suggestions)
        return SKIP


def where(path: Sequence[str | int]) -> str:
    if not path:
        return ""
    return " at " + "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)


def named_literals(rules: Sequence[type[ASTValidationRule]]
                   ) -> tuple[type[ASTValidationRule], ...]:
    """The rules with graphql-core's literal check replaced by the one that names."""
    return tuple(NamedValuesOfCorrectTypeRule if rule is ValuesOfCorrectTypeRule else rule
                 for rule in rules)
