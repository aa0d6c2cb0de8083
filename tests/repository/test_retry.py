"""Retry policies: validation, fixed and jittered exponential delays, stored form."""

from __future__ import annotations

import random

import pytest

from repository.errors import ValidationError
from repository.retry import Backoff, RetryPolicy


def test_fixed_backoff_waits_the_base_every_time() -> None:
    policy = RetryPolicy(backoff=Backoff.FIXED, base_seconds=7)

    assert [policy.delay(attempt) for attempt in (1, 2, 10)] == [7, 7, 7]


def test_exponential_backoff_is_jittered_below_a_doubling_ceiling_and_the_cap() -> None:
    policy = RetryPolicy(backoff=Backoff.EXPONENTIAL, base_seconds=2, cap_seconds=30)
    rng = random.Random(4)

    delays = {attempt: [policy.delay(attempt, rng) for _ in range(200)]
              for attempt in (1, 2, 3, 4, 5, 9)}

    for attempt, drawn in delays.items():
        ceiling = min(30, 2 * 2 ** (attempt - 1))
        assert all(0 <= delay <= ceiling for delay in drawn)
        assert max(drawn) > 0.8 * ceiling  # the whole range is used, not a constant
    assert max(delays[9]) <= 30


@pytest.mark.parametrize("arguments, field", [
    ({"max_attempts": 0}, "retryPolicy.maxAttempts"),
    ({"max_attempts": 101}, "retryPolicy.maxAttempts"),
    ({"base_seconds": -1}, "retryPolicy.baseSeconds"),
    ({"base_seconds": 10, "cap_seconds": 5}, "retryPolicy.capSeconds"),
    ({"cap_seconds": 10**9}, "retryPolicy.capSeconds"),
])
def test_out_of_range_policies_are_refused(arguments: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RetryPolicy(**arguments)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_a_policy_round_trips_through_its_document_and_defaults_fill_gaps() -> None:
    policy = RetryPolicy(5, Backoff.FIXED, 1.5, 9)
    default = RetryPolicy()

    assert RetryPolicy.from_document(policy.to_document(), default) == policy
    assert RetryPolicy.from_document(None, default) is default
    assert RetryPolicy.from_document({"max_attempts": 7}, default) == RetryPolicy(7)
