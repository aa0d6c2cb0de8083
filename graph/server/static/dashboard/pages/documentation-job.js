// One documentation job: statistics and generated files as they grow (following
// documentationJobChanged), its runs' errors, and retry/delete for those allowed.

import { useState } from 'preact/hooks';
import { request } from '../api.js';
import {
  ActionButton, Details, ErrorNotice, Loading, PageHeader, RelativeTime, Section, ShortId,
  StatusBadge, formatNumber,
} from '../components.js';
import { useQuery, useSubscription, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href, navigate } from '../router.js';

const FIELDS = `jobId repositoryPath repositoryName outputDirectory commitHash branchName
  timestampStart timestampEnd status errorMessage filesGenerated moduleCount
  generationOptions { createBranch githubPages noCache customOutput }
  llmConfig { mainModel clusterModel baseUrl }
  statistics { totalFilesAnalyzed leafNodes maxDepth totalTokensUsed }
  createdAt updatedAt owner claimedBy leaseExpiresAt attempts runAt retryable
  retryPolicy { maxAttempts backoff baseSeconds capSeconds }
  error { code message attempt worker failedAt }
  previousErrors { code message attempt worker failedAt }
  accessControl { visibility readAccess writeAccess adminAccess }
  viewerCanWrite viewerCanAdmin viewerCanRetry viewerCanDelete`;
const QUERY = `query DocumentationJob($jobId: ID!) { documentationJob(jobId: $jobId) { ${FIELDS} } }`;
const CHANGED = `subscription DocumentationJobChanged($jobId: ID!) {
  documentationJobChanged(jobId: $jobId) { ${FIELDS} } }`;
const RETRY = `mutation Retry($jobId: ID!) { retryDocumentationJob(jobId: $jobId) { ${FIELDS} } }`;
const DELETE = 'mutation Delete($jobId: ID!) { deleteDocumentationJob(jobId: $jobId) { jobId } }';

const STATISTICS = [
  ['totalFilesAnalyzed', 'Files analyzed'],
  ['leafNodes', 'Leaf nodes'],
  ['maxDepth', 'Max depth'],
  ['totalTokensUsed', 'Tokens used'],
];

function RunError({ error }) {
  return html`
    <p>${error.code && html`<code class="code">${error.code}</code> `}${error.message}</p>
    <p class="muted small">attempt ${error.attempt}${error.worker ? ` by ${error.worker}` : ''},${' '}
      <${RelativeTime} value=${error.failedAt} /></p>`;
}

export default function DocumentationJob({ id }) {
  const query = useQuery(QUERY, { jobId: id });
  const [gone, setGone] = useState(null);
  const replace = (job) => query.update(() => ({ documentationJob: job }));
  useSubscription(CHANGED, { jobId: id }, {
    next: ({ documentationJobChanged }) => replace(documentationJobChanged),
    error: setGone,
  });
  const job = query.data?.documentationJob;
  useTitle(job ? `Documentation of ${job.repositoryName}` : 'Documentation job');
  const actions = job && !gone && [
    job.viewerCanRetry && html`<${ActionButton} label="Retry" variant="primary"
      run=${() => request(RETRY, { jobId: id })} onDone=${(data) => replace(data.retryDocumentationJob)} />`,
    job.viewerCanDelete && html`<${ActionButton} label="Delete" variant="danger"
      confirm=${`Delete documentation job ${id}? This cannot be undone.`}
      run=${() => request(DELETE, { jobId: id })} onDone=${() => navigate(href('documentation-jobs'))} />`,
  ].filter(Boolean);

  return html`
    <${PageHeader} title=${job ? job.repositoryName : html`Documentation job <${ShortId} value=${id} />`}
                   kicker=${html`<a href=${href('documentation-jobs')}>Documentation jobs</a>`}>
      ${actions?.length ? actions : null}
    <//>
    ${query.error && html`<${ErrorNotice} error=${query.error} title="The documentation job could not be shown" />`}
    ${gone && job && html`<${ErrorNotice} error=${gone} title="This job is gone, or you may no longer read it" />`}
    ${!job ? (!query.error && html`<${Loading} />`) : html`
      <ul class="stat-cards" aria-label="Statistics">
        ${STATISTICS.map(([name, label]) => html`
          <li class="stat"><span><span class="stat-label">${label}</span>
            <span class="stat-value">${formatNumber(job.statistics[name])}</span></span></li>`)}
      </ul>
      <div class="grid two">
        <${Section} title="State" id="state">
          <div class="state-line"><${StatusBadge} status=${job.status} /></div>
          ${job.errorMessage && html`<p class="notice error">${job.errorMessage}</p>`}
          <${Details} rows=${[
            ['Job id', html`<code>${job.jobId}</code>`],
            ['Repository', html`<code>${job.repositoryPath}</code>`],
            ['Branch', job.branchName],
            ['Commit', job.commitHash && html`<code>${job.commitHash}</code>`],
            ['Output', html`<code>${job.outputDirectory}</code>`],
            ['Attempts', `${job.attempts} of ${job.retryPolicy.maxAttempts}`],
            ['Worker', job.claimedBy],
            job.status === 'RUNNING' && job.leaseExpiresAt && ['Lease expires', html`<${RelativeTime} value=${job.leaseExpiresAt} />`],
            job.status === 'PENDING' && job.runAt && ['Runs from', html`<${RelativeTime} value=${job.runAt} />`],
            ['Started', job.timestampStart && html`<${RelativeTime} value=${job.timestampStart} />`],
            ['Ended', job.timestampEnd && html`<${RelativeTime} value=${job.timestampEnd} />`],
            ['Created', html`<${RelativeTime} value=${job.createdAt} />`],
            ['Owner', job.owner],
          ]} />
        <//>
        <${Section} title="Generation" id="generation">
          <${Details} rows=${[
            ['Create branch', job.generationOptions.createBranch ? 'yes' : 'no'],
            ['GitHub Pages', job.generationOptions.githubPages ? 'yes' : 'no'],
            ['No cache', job.generationOptions.noCache ? 'yes' : 'no'],
            ['Custom output', job.generationOptions.customOutput],
            ['Main model', job.llmConfig?.mainModel],
            ['Cluster model', job.llmConfig?.clusterModel],
            ['LLM API', job.llmConfig?.baseUrl && html`<code>${job.llmConfig.baseUrl}</code>`],
            ['Modules', formatNumber(job.moduleCount)],
          ]} />
        <//>
      </div>
      ${(job.error || job.previousErrors.length > 0) && html`
        <${Section} title="Errors" id="errors">
          ${job.error && html`<h3>Last failure</h3><${RunError} error=${job.error} />`}
          ${job.previousErrors.length > 0 && html`<h3>Earlier attempts</h3>
            <ol class="previous-errors">${job.previousErrors.map((error, index) => html`
              <li key=${index}><${RunError} error=${error} /></li>`)}</ol>`}
        <//>`}
      <${Section} title=${`Generated files (${formatNumber(job.filesGenerated.length)})`} id="files">
        ${job.filesGenerated.length === 0 ? html`<p class="muted">None yet.</p>` : html`
          <ul class="files" tabindex="0" aria-label="Generated files">
            ${job.filesGenerated.map((file) => html`<li key=${file}><code>${file}</code></li>`)}
          </ul>`}
      <//>`}`;
}
