"""The GraphQL documents the scenarios send, and the fields they select."""

from __future__ import annotations

JOB_FIELDS = """
    jobId jobType status parameters createdAt updatedAt results batchId owner
    processingStartedAt completedAt claimedBy leaseExpiresAt attempts maxAttempts
    retryable logSeq version
    progress { step percent message }
    logs(last: 10) { timestamp level message seq attempt }
"""

JOB = "query Job($id: ID!) { job(jobId: $id) {" + JOB_FIELDS + "} }"

JOBS_PAGE = ("query JobsPage($first: Int!) { jobs(first: $first) { edges { node {" + JOB_FIELDS
             + " batch { batchName } } } pageInfo { hasNextPage endCursor } } }")

GROWTH_PAGE = """
query GrowthPage($status: JobStatus!, $jobType: String!) {
  jobs(filter: {status: $status, jobType: $jobType}, first: 50) {
    edges { node { jobId status createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

SELECTION = "{ jobId status version }"
CREATE_JOB = ("mutation Create($type: String!) { createJob(input: {jobType: $type, "
              "parameters: {source: \"bench\"}}) " + SELECTION + " }")
CLAIM_JOB = "mutation Claim($types: [String!]) { claimJob(jobTypes: $types) " + SELECTION + " }"
UPDATE_PROGRESS = ("mutation Progress($id: ID!, $percent: Int!) { updateJobProgress(jobId: $id, "
                   "progress: {step: \"work\", percent: $percent, message: \"going\"}) "
                   + SELECTION + " }")
APPEND_LOGS = ("mutation Logs($id: ID!) { appendJobLogs(jobId: $id, entries: [{level: INFO, "
               "message: \"step done\"}]) " + SELECTION + " }")
COMPLETE_JOB = ("mutation Complete($id: ID!) { completeJob(jobId: $id, results: {ok: true}) "
                + SELECTION + " }")

JOB_CHANGED = ("subscription Changed($id: ID!) { jobChanged(jobId: $id) { jobId status version "
               "progress { step percent } } }")
