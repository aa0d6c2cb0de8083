"""The ``DateTime`` scalar: an instant the database can store, in UTC.

Strawberry's own accepts any ISO 8601 text, including instants outside what Python and
BSON dates hold once moved to UTC (``0001-01-01T00:00:00+14:00`` is still year 0 there):
the database driver then failed deep inside a resolver (INTERNAL_SERVER_ERROR). Here
every input is moved to UTC while it is coerced, so such a value is refused as a bad
input value (GRAPHQL_VALIDATION_FAILED, naming the variable or argument) before anything
runs, and resolvers only ever see aware UTC datetimes. A value without an offset means
UTC, as it did before (the driver stored naive datetimes as UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dateutil.parser
import strawberry
from strawberry.exceptions import StrawberryInputCoercionError

from graph.engine.internals import isoformat

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
RANGE = f"{EARLIEST.isoformat()} to {LATEST.isoformat()}"


def parse_instant(value: Any) -> datetime:
    """ISO 8601 text (as Strawberry's scalar reads it) to an aware UTC datetime."""
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{value}". Expected a string.')
    try:
        parsed = dateutil.parser.isoparse(value)
    except OverflowError:  # 9999-12-31T24:00:00 rolls over into year 10000
        raise out_of_range(value) from None
    except ValueError as exc:
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{value}". {exc}') from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise out_of_range(value) from None


def out_of_range(value: str) -> StrawberryInputCoercionError:
    return StrawberryInputCoercionError(
        f'Value cannot represent a DateTime: "{value}" is outside the supported range, '
        f"{RANGE} (in UTC).")


DateTime = strawberry.scalar(
    name="DateTime",
    description=("An instant, as ISO 8601 text (`2025-03-01T12:00:00+00:00`); without an "
                 f"offset it is UTC. Inputs must lie within {RANGE} once moved to UTC."),
    serialize=isoformat,  # the same function Strawberry's has: the fast path knows it
    parse_value=parse_instant,
)

SCALARS: dict[object, Any] = {datetime: DateTime}
"""For ``StrawberryConfig(scalar_map=...)``: every ``datetime`` is this scalar."""
