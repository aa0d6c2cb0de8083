"""GraphQL documents the API tests send, one constant per operation (dagster style)."""

from __future__ import annotations

ACCESS_FIELDS = "accessControl { visibility readAccess writeAccess adminAccess }"
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
PAGE_ARGS = "$first: Int, $after: String, $last: Int, $before: String"
PAGE_VALUES = "first: $first, after: $after, last: $last, before: $before"

JOB_FRAGMENT = f"""
fragment JobFields on SecretaryJob {{
  __typename
  jobId
  jobType
  status
  parameters
  createdAt
  updatedAt
  progress {{ step percent message }}
  results
  {ACCESS_FIELDS}
  batchId
  owner
  processingStartedAt
  completedAt
  claimedBy
  leaseExpiresAt
  attempts
  maxAttempts
  retryable
  logSeq
  error {{ code message details }}
  previousErrors {{ code message details }}
  logs {{ timestamp level message seq attempt }}
}}
"""

BATCH_FRAGMENT = f"""
fragment BatchFields on BatchJob {{
  __typename
  batchId
  batchName
  createdAt
  updatedAt
  active
  owner
  status
  counts {{ pending processing completed failed total }}
  {ACCESS_FIELDS}
}}
"""

DOCUMENTATION_JOB_FRAGMENT = f"""
fragment DocumentationJobFields on DocumentationJob {{
  __typename
  jobId
  repositoryPath
  repositoryName
  outputDirectory
  commitHash
  branchName
  timestampStart
  timestampEnd
  status
  errorMessage
  filesGenerated
  moduleCount
  generationOptions {{ createBranch githubPages noCache customOutput }}
  llmConfig {{ mainModel clusterModel baseUrl }}
  statistics {{ totalFilesAnalyzed leafNodes maxDepth totalTokensUsed }}
  createdAt
  updatedAt
  {ACCESS_FIELDS}
  owner
}}
"""

# -- jobs ----------------------------------------------------------------------------------

JOB = """
query Job($jobId: ID!) { job(jobId: $jobId) { ...JobFields } }
""" + JOB_FRAGMENT

JOBS = f"""
query Jobs($filter: JobFilterInput, {PAGE_ARGS}) {{
  jobs(filter: $filter, {PAGE_VALUES}) {{
    totalCount
    {PAGE_INFO}
    edges {{ cursor node {{ jobId jobType status batchId createdAt }} }}
  }}
}}
"""

JOB_LOGS = """
query JobLogs($jobId: ID!, $last: Int) {
  job(jobId: $jobId) { logSeq logs(last: $last) { level message seq attempt } }
}
"""

JOB_WITH_BATCH = """
query JobWithBatch($jobId: ID!) {
  job(jobId: $jobId) { jobId batch { batchId batchName status counts { total } } }
}
"""

JOBS_WITH_BATCHES = """
query JobsWithBatches($first: Int!) {
  jobs(first: $first) {
    edges {
      node {
        jobId
        status
        progress { step percent }
        logs(last: 10) { seq message }
        batch { batchName status counts { total } }
      }
    }
  }
}
"""

CREATE_JOB = """
mutation CreateJob($input: CreateJobInput!) { createJob(input: $input) { ...JobFields } }
""" + JOB_FRAGMENT

CLAIM_JOB = """
mutation ClaimJob($jobTypes: [String!]) { claimJob(jobTypes: $jobTypes) { ...JobFields } }
""" + JOB_FRAGMENT

UPDATE_JOB_PROGRESS = """
mutation UpdateJobProgress($jobId: ID!, $progress: JobProgressInput!) {
  updateJobProgress(jobId: $jobId, progress: $progress) { ...JobFields }
}
""" + JOB_FRAGMENT

HEARTBEAT_JOB = """
mutation HeartbeatJob($jobId: ID!) { heartbeatJob(jobId: $jobId) { ...JobFields } }
""" + JOB_FRAGMENT

APPEND_JOB_LOGS = """
mutation AppendJobLogs($jobId: ID!, $entries: [LogEntryInput!]!) {
  appendJobLogs(jobId: $jobId, entries: $entries) { ...JobFields }
}
""" + JOB_FRAGMENT

COMPLETE_JOB = """
mutation CompleteJob($jobId: ID!, $results: JSON) {
  completeJob(jobId: $jobId, results: $results) { ...JobFields }
}
""" + JOB_FRAGMENT

FAIL_JOB = """
mutation FailJob($jobId: ID!, $error: JobErrorInput!, $retryable: Boolean! = true) {
  failJob(jobId: $jobId, error: $error, retryable: $retryable) { ...JobFields }
}
""" + JOB_FRAGMENT

RETRY_JOB = """
mutation RetryJob($jobId: ID!) { retryJob(jobId: $jobId) { ...JobFields } }
""" + JOB_FRAGMENT

DELETE_JOB = """
mutation DeleteJob($jobId: ID!) { deleteJob(jobId: $jobId) { ...JobFields } }
""" + JOB_FRAGMENT

SET_JOB_ACCESS = """
mutation SetJobAccess($jobId: ID!, $accessControl: AccessControlInput!) {
  setJobAccess(jobId: $jobId, accessControl: $accessControl) { ...JobFields }
}
""" + JOB_FRAGMENT

# -- batches -------------------------------------------------------------------------------

BATCH = f"""
query Batch($batchId: ID!, $status: JobStatus, {PAGE_ARGS}) {{
  batch(batchId: $batchId) {{
    ...BatchFields
    jobs(status: $status, {PAGE_VALUES}) {{
      totalCount
      {PAGE_INFO}
      edges {{ cursor node {{ jobId jobType status batchId }} }}
    }}
  }}
}}
""" + BATCH_FRAGMENT

BATCHES = f"""
query Batches($filter: BatchFilterInput, {PAGE_ARGS}) {{
  batches(filter: $filter, {PAGE_VALUES}) {{
    totalCount
    {PAGE_INFO}
    edges {{ cursor node {{ batchId batchName active status counts {{ total }} }} }}
  }}
}}
"""

CREATE_BATCH = """
mutation CreateBatch($input: CreateBatchInput!) {
  createBatch(input: $input) {
    ...BatchFields
    jobs { totalCount edges { node { jobId jobType status batchId parameters
                                     accessControl { readAccess adminAccess } } } }
  }
}
""" + BATCH_FRAGMENT

DEACTIVATE_BATCH = """
mutation DeactivateBatch($batchId: ID!) { deactivateBatch(batchId: $batchId) { ...BatchFields } }
""" + BATCH_FRAGMENT

ACTIVATE_BATCH = """
mutation ActivateBatch($batchId: ID!) { activateBatch(batchId: $batchId) { ...BatchFields } }
""" + BATCH_FRAGMENT

SET_BATCH_ACCESS = """
mutation SetBatchAccess($batchId: ID!, $accessControl: AccessControlInput!) {
  setBatchAccess(batchId: $batchId, accessControl: $accessControl) { ...BatchFields }
}
""" + BATCH_FRAGMENT

# -- documentation jobs --------------------------------------------------------------------

DOCUMENTATION_JOB = """
query DocumentationJob($jobId: ID!) {
  documentationJob(jobId: $jobId) { ...DocumentationJobFields }
}
""" + DOCUMENTATION_JOB_FRAGMENT

DOCUMENTATION_JOBS = f"""
query DocumentationJobs($filter: DocumentationJobFilterInput, {PAGE_ARGS}) {{
  documentationJobs(filter: $filter, {PAGE_VALUES}) {{
    totalCount
    {PAGE_INFO}
    edges {{ cursor node {{ jobId repositoryName status }} }}
  }}
}}
"""

CREATE_DOCUMENTATION_JOB = """
mutation CreateDocumentationJob($input: CreateDocumentationJobInput!) {
  createDocumentationJob(input: $input) { ...DocumentationJobFields }
}
""" + DOCUMENTATION_JOB_FRAGMENT

START_DOCUMENTATION_JOB = """
mutation StartDocumentationJob($jobId: ID!) {
  startDocumentationJob(jobId: $jobId) { ...DocumentationJobFields }
}
""" + DOCUMENTATION_JOB_FRAGMENT

COMPLETE_DOCUMENTATION_JOB = """
mutation CompleteDocumentationJob($jobId: ID!) {
  completeDocumentationJob(jobId: $jobId) { ...DocumentationJobFields }
}
""" + DOCUMENTATION_JOB_FRAGMENT

FAIL_DOCUMENTATION_JOB = """
mutation FailDocumentationJob($jobId: ID!, $errorMessage: String!) {
  failDocumentationJob(jobId: $jobId, errorMessage: $errorMessage) { ...DocumentationJobFields }
}
""" + DOCUMENTATION_JOB_FRAGMENT

SET_DOCUMENTATION_JOB_STATISTICS = """
mutation SetDocumentationJobStatistics($jobId: ID!, $statistics: JobStatisticsInput!) {
  setDocumentationJobStatistics(jobId: $jobId, statistics: $statistics) {
    ...DocumentationJobFields
  }
}
""" + DOCUMENTATION_JOB_FRAGMENT

ADD_GENERATED_FILES = """
mutation AddGeneratedFiles($jobId: ID!, $files: [String!]!, $moduleCount: Int) {
  addGeneratedFiles(jobId: $jobId, files: $files, moduleCount: $moduleCount) {
    ...DocumentationJobFields
  }
}
""" + DOCUMENTATION_JOB_FRAGMENT

DELETE_DOCUMENTATION_JOB = """
mutation DeleteDocumentationJob($jobId: ID!) {
  deleteDocumentationJob(jobId: $jobId) { ...DocumentationJobFields }
}
""" + DOCUMENTATION_JOB_FRAGMENT

SET_DOCUMENTATION_JOB_ACCESS = """
mutation SetDocumentationJobAccess($jobId: ID!, $accessControl: AccessControlInput!) {
  setDocumentationJobAccess(jobId: $jobId, accessControl: $accessControl) {
    ...DocumentationJobFields
  }
}
""" + DOCUMENTATION_JOB_FRAGMENT

# -- identity ------------------------------------------------------------------------------

VIEWER = "query Viewer { viewer { __typename userId roles anonymous } }"
