// One batch: its counts as a bar (following batchChanged), its jobs paged and live, and
// for its writers: activate/deactivate, cancel its unfinished jobs, retry its failed ones.

import { useState } from 'preact/hooks';
import { request } from '../api.js';
import {
  ActionButton, CountsBar, Details, ErrorNotice, JOB_ROW, JOB_STATUSES, JobTable, Loading,
  PageHeader, Pager, RelativeTime, Section, ShortId, StatusBadge, pageArguments, pageSize,
} from '../components.js';
import { refreshInterval, useQuery, useSubscription, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { replaceInConnection, useLiveJobs } from '../live.js';
import { href, withParams } from '../router.js';

const BATCH_FIELDS = `batchId batchName status active createdAt updatedAt owner version
  counts { pending processing completed failed cancelled total }
  accessControl { visibility readAccess writeAccess adminAccess } viewerCanWrite viewerCanAdmin`;
const BATCH = `query Batch($batchId: ID!, $status: JobStatus, $first: Int, $after: String,
                          $last: Int, $before: String) {
  batch(batchId: $batchId) {
    ${BATCH_FIELDS}
    jobs(status: $status, first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { node { ${JOB_ROW} } }
    }
  }
}`;
const BATCH_CHANGED = `subscription BatchChanged($batchId: ID!) {
  batchChanged(batchId: $batchId) { ${BATCH_FIELDS} } }`;
const CANCEL_BATCH = `mutation CancelBatch($batchId: ID!, $reason: String) {
  cancelBatch(batchId: $batchId, reason: $reason) { ${BATCH_FIELDS} } }`;
const RETRY_FAILED = `mutation RetryFailed($batchId: ID!) {
  retryFailedJobs(batchId: $batchId) { ${BATCH_FIELDS} } }`;
const SET_ACTIVE = (active) => `mutation SetActive($batchId: ID!) {
  ${active ? 'activateBatch' : 'deactivateBatch'}(batchId: $batchId) { ${BATCH_FIELDS} } }`;

function StatusTabs({ route }) {
  const current = route.params.get('status') || '';
  return html`
    <nav class="tabs" aria-label="Status of the batch's jobs">
      ${[['', 'All'], ...JOB_STATUSES.map((status) => [status, status.toLowerCase()])].map(([status, label]) => html`
        <a href=${withParams(route, { status, after: '', before: '' })}
           aria-current=${current === status ? 'page' : undefined}>${label}</a>`)}
    </nav>`;
}

export default function Batch({ id, route }) {
  const status = JOB_STATUSES.includes(route.params.get('status')) ? route.params.get('status') : null;
  const query = useQuery(BATCH, { batchId: id, status, ...pageArguments(route, pageSize(route)) });
  const [gone, setGone] = useState(null);
  const batch = query.data?.batch;
  useTitle(batch ? `Batch ${batch.batchName}` : 'Batch');
  const merge = (fields) => query.update((data) => ({ batch: { ...data.batch, ...fields } }));
  useSubscription(BATCH_CHANGED, { batchId: id }, {
    next: ({ batchChanged }) => merge(batchChanged),
    error: setGone,
  });
  const rows = batch ? batch.jobs.edges.map((edge) => edge.node) : [];
  const firstPage = !route.params.get('after') && !route.params.get('before');
  const { stale, flashing } = useLiveJobs({
    filter: { batchId: id, ...(status && { status }) }, rows, fetchedAt: query.fetchedAt,
    refetch: query.refetch, interval: refreshInterval(query, 1500), newestPage: firstPage,
    replace: (job) => query.update((data) => ({
      batch: { ...data.batch, jobs: replaceInConnection(data.batch.jobs, job) } })),
  });

  const unfinished = batch ? batch.counts.pending + batch.counts.processing : 0;
  const toggle = batch?.viewerCanWrite && html`
    <${ActionButton} label=${batch.active ? 'Deactivate' : 'Activate'}
      run=${() => request(SET_ACTIVE(!batch.active), { batchId: id })}
      onDone=${(data) => merge(data.activateBatch ?? data.deactivateBatch)} />
    ${batch.counts.failed > 0 && html`
      <${ActionButton} label="Retry failed jobs"
        run=${() => request(RETRY_FAILED, { batchId: id })}
        onDone=${(data) => { merge(data.retryFailedJobs); query.refetch(); }} />`}
    ${unfinished > 0 && html`
      <${ActionButton} label="Cancel batch" variant="danger"
        confirm=${`Cancel the ${unfinished} unfinished job(s) of batch ${batch.batchName}?`}
        run=${() => request(CANCEL_BATCH, { batchId: id })}
        onDone=${(data) => { merge(data.cancelBatch); query.refetch(); }} />`}`;

  return html`
    <${PageHeader} title=${batch ? batch.batchName : html`Batch <${ShortId} value=${id} />`}
                   kicker=${html`<a href=${href('batches')}>Batches</a>`}>
      ${!gone && toggle}
    <//>
    ${query.error && html`<${ErrorNotice} error=${query.error} title="The batch could not be shown" />`}
    ${gone && batch && html`<${ErrorNotice} error=${gone} title="This batch is gone, or you may no longer read it" />`}
    ${!batch ? (!query.error && html`<${Loading} />`) : html`
      <${Section} title="Jobs by status" id="counts">
        <div class="state-line"><${StatusBadge} status=${batch.status} />
          ${!batch.active && html`<span class="tag">inactive</span>`}</div>
        <${CountsBar} counts=${batch.counts} />
        <${Details} rows=${[
          ['Batch id', html`<code>${batch.batchId}</code>`],
          ['Owner', batch.owner],
          ['Created', html`<${RelativeTime} value=${batch.createdAt} />`],
          ['Updated', html`<${RelativeTime} value=${batch.updatedAt} />`],
          ['Visibility', batch.accessControl.visibility.toLowerCase()],
        ]} />
      <//>
      <${Section} title="Its jobs" id="jobs">
        <${StatusTabs} route=${route} />
        ${stale && html`<p class="notice info" role="status">Jobs changed since this page was loaded:${' '}
          <button type="button" class="link" onClick=${query.refetch}>reload</button>.</p>`}
        <${JobTable} jobs=${rows} caption=${`Jobs of batch ${batch.batchName}`} highlight=${flashing} />
        <${Pager} route=${route} pageInfo=${batch.jobs.pageInfo} shown=${rows.length}
                  total=${batch.jobs.totalCount} noun="jobs" />
      <//>`}`;
}
