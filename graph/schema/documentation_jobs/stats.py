"""``documentationJobStats``: the GraphQL shape of repository.stats' answer (fields only)."""

from __future__ import annotations

import strawberry

from graph.schema.jobs.stats import StatCount


@strawberry.type(description="Tokens used by the documentation jobs sharing one value.")
class TokenUsage:
    key: str | None = strawberry.field(
        description="The repository name or main model (null: jobs without one).")
    jobs: int = strawberry.field(description="How many matching jobs have it.")
    tokens: float = strawberry.field(
        description="Their `statistics.totalTokensUsed`, summed: a Float, as sums pass what "
        "an Int carries (2^31 - 1); exact up to 2^53.")


@strawberry.type(description="Statistics over the documentation jobs you may read that match "
                 "the filter.")
class DocumentationJobStats:
    by_status: list[StatCount] = strawberry.field(
        description="How many matching jobs are in each status (every status listed).")
    tokens_by_repository: list[TokenUsage] = strawberry.field(
        description="Tokens per repository name, the most first (at most 1000).")
    tokens_by_model: list[TokenUsage] = strawberry.field(
        description="Tokens per `llmConfig.mainModel`, the most first (at most 1000).")
