"""claimJob for a caller that may leave: a claim whose answer cannot reach its caller
is undone, so no job sits PROCESSING for a full lease for nobody and loses an attempt.

Over HTTP the client's disconnect is watched while the claim is in flight (the server
puts ``caller_gone`` in the context; elsewhere there is nothing to watch). If the
caller leaves first, the claim is cancelled and the repository undoes whatever the
database still applies; if it left by the time the claim returned, the claim is undone
here. Either way the answer is null, which nobody reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from repository.access import Principal
from repository.jobs import JobRepository
from repository.models import SecretaryJob

logger = logging.getLogger("jobgraph.claims")


async def claim_for_caller(jobs: JobRepository, principal: Principal,
                           job_types: list[str] | None,
                           caller_gone: Callable[[], Awaitable[None]] | None
                           ) -> SecretaryJob | None:
    if caller_gone is None:  # a WebSocket's operations are cancelled on close
        return await jobs.claim(principal, job_types)
    left = asyncio.ensure_future(caller_gone())
    claim = asyncio.ensure_future(jobs.claim(principal, job_types))
    try:
        await asyncio.wait((claim, left), return_when=asyncio.FIRST_COMPLETED)
        if not claim.done():
            logger.warning("the caller of claimJob left before its answer; the claim is "
                           "undone (user %s)", principal.user_id)
            claim.cancel()
            return None
        job = claim.result()
        if job is not None and left.done():
            logger.warning("the caller of claimJob left before its answer; the claim of "
                           "job %s is undone (user %s)", job.job_id, principal.user_id)
            await jobs.release_claim(job)
            return None
        return job
    finally:
        left.cancel()

