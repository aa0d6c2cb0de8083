"""Strict JSON for request bodies, GET parameters and WebSocket messages.

orjson refuses (as a JSON error, so 400 BAD_REQUEST) what ``json.loads`` lets through
to fail later as a 500 or a masked error: invalid UTF-8, lone surrogates (``"\\ud800"``,
which no string in MongoDB can hold), NaN/Infinity and nesting beyond 1,024 levels.

Nesting is bounded by our own rule (``JOBGRAPH_MAX_BODY_DEPTH``), checked without
recursion, so the answer never depends on the interpreter's recursion limit (Python
3.12 and 3.11 stop ``json.loads`` at different depths).

orjson reads integers beyond 64 bits as floats, which would store a different number;
when the value holds such a float, the text (within the depth limit, so ``json`` can
read it on any Python) is read again with ``json``, which keeps integers exact, so that
storing one that big is refused instead of rounded.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

HUGE = 2**63


class TooDeep(json.JSONDecodeError):
    """A body nested deeper than the configured limit (answered like other bad JSON)."""


def inspect(value: Any, max_depth: int) -> bool:
    """Whether ``value`` holds an integer beyond 64 bits (a float that orjson made of it);
    raises ``TooDeep`` when it nests deeper than ``max_depth`` containers."""
    stack = [(value, 1)]
    huge = False
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is float:
            huge = huge or (item.is_integer() and abs(item) >= HUGE)
        elif kind is dict or kind is list:
            if depth > max_depth:
                raise TooDeep(f"the JSON nests deeper than {max_depth} levels", "", 0)
            children = item.values() if kind is dict else item
            stack.extend((child, depth + 1) for child in children
                         if type(child) in (dict, list, float))
    return huge


def decode(data: str | bytes, max_depth: int) -> Any:
    value = orjson.loads(data)
    if not inspect(value, max_depth):
        return value
    return json.loads(data)
