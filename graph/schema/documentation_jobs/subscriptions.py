"""Documentation job subscription fields."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from graph.engine.sharing import shared_payloads
from graph.realtime.follow import newer_states
from graph.schema.core.context import Info
from graph.schema.core.subscribing import subscribe
from repository.documentation_jobs import documentation_job_from_document

from .types import DocumentationJob, DocumentationJobIdArg


@strawberry.type
class DocumentationJobSubscriptions:
    @strawberry.subscription(
        description="A documentation job's current state, then its state after every change.")
    @shared_payloads
    async def documentation_job_changed(
        self, info: Info, job_id: DocumentationJobIdArg
    ) -> AsyncGenerator[DocumentationJob, None]:
        store, principal = info.context.store, info.context.principal
        async with subscribe(info, keys=[("documentation_jobs", job_id)]) as changes:
            job = await store.documentation_jobs.get(principal, job_id)
            version = job.version
            yield job  # type: ignore[misc]
            del job
            async for current in newer_states(changes, version, principal,
                                              documentation_job_from_document,
                                              kind="documentation job", object_id=job_id,
                                              claimable=True, parking=info.context.parking):
                yield current  # type: ignore[misc]
