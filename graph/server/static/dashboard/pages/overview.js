// The overview: jobs per status and per job type, the oldest waiting job, recent failures;
// counted again whenever a job changes, each panel by its own request, at most every few
// seconds and never busier than the server can answer.
//
// The queue table comes from the `queues` query (counts per state, the oldest waiting job
// of each type, paused or limited). That query is the operators' (worker or admin role):
// for anyone else the table falls back to `totalCount`s of filtered job lists, the job
// types being those of the newest jobs and of the schedules. The throughput chart of the
// last hour comes from `jobStats` (throughput.js).

import { useEffect, useState } from 'preact/hooks';
import { onReconnect, request } from '../api.js';
import {
  Empty, ErrorNotice, JOB_STATUSES, Loading, PageHeader, RelativeTime, Section, ShortId,
  StatusBadge, formatDuration, formatNumber,
} from '../components.js';
import {
  refreshInterval, useNow, useQuery, useSubscription, useThrottled, useTitle,
} from '../hooks.js';
import { html } from '../html.js';
import { href } from '../router.js';
import { Throughput, useThroughput } from '../throughput.js';
import { POLL_MS, QUEUES, QueueTable, QueuesError, usePolling } from './queues.js';

const STATUS = `query OverviewStatus {
  pending: jobs(filter: {status: PENDING}) { totalCount }
  processing: jobs(filter: {status: PROCESSING}) { totalCount }
  completed: jobs(filter: {status: COMPLETED}) { totalCount }
  failed: jobs(filter: {status: FAILED}) { totalCount }
}`;
const JOBS = `query OverviewJobs {
  oldest: jobs(filter: {status: PENDING}, last: 5) {
    edges { node { jobId jobType createdAt } } }
  failures: jobs(filter: {status: FAILED}, first: 5) {
    edges { node { jobId jobType updatedAt error { code message } } } }
  recent: jobs(first: 100) { edges { node { jobType } } }
  schedules(first: 100) { edges { node { jobTemplate { jobType } } } }
}`;
const ELSEWHERE = `query OverviewElsewhere {
  batches { totalCount }
  documentationJobs { totalCount }
  runningDocumentationJobs: documentationJobs(filter: {status: RUNNING}) { totalCount }
  activeSchedules: schedules(filter: {paused: false}) { totalCount }
}`;

const CHANGES = 'subscription OverviewChanges { jobsChanged(initial: 0) { kind jobId } }';
const TYPES_PER_QUERY = 1;  // one request per type: each stays well within the deadline
const STATUS_MS = 3000;
const JOBS_MS = 5000;
const TYPES_MS = 10000;
const ELSEWHERE_MS = 30000;

/** Counts per job type and status, a few types per request. */
async function typeCounts(types) {
  const rows = {};
  for (let start = 0; start < types.length; start += TYPES_PER_QUERY) {
    const chunk = types.slice(start, start + TYPES_PER_QUERY);
    const fields = chunk.flatMap((_, i) => JOB_STATUSES.map((status) => (
      `t${i}_${status}: jobs(filter: {jobType: $t${i}, status: ${status}}) { totalCount }`)));
    const args = chunk.map((_, i) => `$t${i}: String!`).join(', ');
    const data = await request(`query TypeCounts(${args}) { ${fields.join('\n')} }`,
                               Object.fromEntries(chunk.map((type, i) => [`t${i}`, type])));
    chunk.forEach((type, i) => {
      rows[type] = Object.fromEntries(JOB_STATUSES.map((status) => (
        [status, data[`t${i}_${status}`].totalCount])));
    });
  }
  return rows;
}

function knownTypes(data) {
  const types = new Set(data.recent.edges.map((edge) => edge.node.jobType));
  for (const edge of data.schedules.edges) types.add(edge.node.jobTemplate.jobType);
  return [...types].sort();
}

function StatusCards({ data }) {
  return html`
    <ul class="stat-cards" aria-label="Jobs by status">
      ${JOB_STATUSES.map((status) => html`
        <li class=${`stat status-${status.toLowerCase()}`}>
          <a href=${href('jobs', { status })}>
            <span class="stat-label">${status.toLowerCase()}</span>
            <span class="stat-value">${formatNumber(data[status.toLowerCase()].totalCount)}</span>
          </a>
        </li>`)}
    </ul>`;
}

function OldestWaiting({ data }) {
  const now = useNow(5000);
  // the list is newest first: its end is the oldest
  const jobs = data.oldest.edges.map((edge) => edge.node).reverse();
  if (!jobs.length) return html`<${Empty}>No job is waiting.<//>`;
  return html`
    <ol class="waiting">
      ${jobs.map((job) => html`
        <li key=${job.jobId}>
          <a href=${href(`jobs/${job.jobId}`)}><${ShortId} value=${job.jobId} /></a>
          <span class="muted">${job.jobType}</span>
          <span class="wait">waiting <strong>${formatDuration(now - new Date(job.createdAt).getTime())}</strong></span>
        </li>`)}
    </ol>
    <p><a href=${href('jobs', { status: 'PENDING', dir: 'asc' })}>All waiting jobs, oldest first →</a></p>`;
}

function TypeTable({ rows, error }) {
  if (error) return html`<${ErrorNotice} error=${error} />`;
  if (!rows) return html`<${Loading} />`;
  const types = Object.keys(rows);
  if (!types.length) return html`<${Empty}>No jobs yet.<//>`;
  return html`
    <div class="table-wrap">
      <table class="numbers">
        <caption class="visually-hidden">Jobs by type and status</caption>
        <thead>
          <tr><th scope="col">Job type</th>
            ${JOB_STATUSES.map((status) => html`<th scope="col"><${StatusBadge} status=${status} /></th>`)}
            <th scope="col">Total</th></tr>
        </thead>
        <tbody>
          ${types.map((type) => html`
            <tr key=${type}>
              <th scope="row"><a href=${href('jobs', { type })}>${type}</a></th>
              ${JOB_STATUSES.map((status) => html`
                <td>${rows[type][status] ? html`<a href=${href('jobs', { type, status })}>${formatNumber(rows[type][status])}</a>`
                  : html`<span class="muted">0</span>`}</td>`)}
              <td>${formatNumber(JOB_STATUSES.reduce((sum, status) => sum + rows[type][status], 0))}</td>
            </tr>`)}
        </tbody>
      </table>
    </div>
    <p class="muted small">Job types of the newest 100 jobs and of the schedules.</p>`;
}

function Failures({ data }) {
  const jobs = data.failures.edges.map((edge) => edge.node);
  if (!jobs.length) return html`<${Empty}>No failed jobs.<//>`;
  return html`
    <ul class="failures">
      ${jobs.map((job) => html`
        <li key=${job.jobId}>
          <a href=${href(`jobs/${job.jobId}`)}><${ShortId} value=${job.jobId} /></a>
          <span class="muted">${job.jobType}</span>
          ${job.error && html`<code class="code">${job.error.code}</code>
            <span class="message">${job.error.message}</span>`}
          <${RelativeTime} value=${job.updatedAt} />
        </li>`)}
    </ul>
    <p><a href=${href('jobs', { status: 'FAILED' })}>All failed jobs →</a></p>`;
}

export default function Overview() {
  useTitle('Overview');
  const status = useQuery(STATUS);
  const jobs = useQuery(JOBS);
  const elsewhere = useQuery(ELSEWHERE);
  const [types, setTypes] = useState({ rows: null, error: null, took: 0 });
  const [typesDue, setTypesDue] = useState(0);
  const queues = useQuery(QUEUES);
  // not an operator: count per type from the job lists instead
  const fallback = queues.error?.code === 'FORBIDDEN';
  const typeKey = jobs.data && fallback ? knownTypes(jobs.data).join('\n') : null;
  usePolling(queues.refetch, POLL_MS, !fallback);

  useEffect(() => {
    if (typeKey === null) return undefined;
    let current = true;
    const started = Date.now();
    typeCounts(typeKey ? typeKey.split('\n') : []).then(
      (rows) => current && setTypes({ rows, error: null, took: Date.now() - started }),
      (error) => current && setTypes((old) => ({ ...old, error })));
    return () => { current = false; };
  }, [typeKey, typesDue]);

  // a job changed: count again, the statuses every few seconds, the rest less often
  const refreshStatus = useThrottled(status.refetch, refreshInterval(status, STATUS_MS));
  const refreshJobs = useThrottled(jobs.refetch, refreshInterval(jobs, JOBS_MS));
  const refreshElsewhere = useThrottled(elsewhere.refetch,
                                        refreshInterval(elsewhere, ELSEWHERE_MS));
  const refreshTypes = useThrottled(() => setTypesDue((n) => n + 1),
                                    Math.max(TYPES_MS, 3 * types.took));
  const throughput = useThroughput();
  const refreshQueues = useThrottled(queues.refetch, refreshInterval(queues, STATUS_MS));
  const changed = () => {
    if (!fallback) refreshQueues();
    refreshStatus();
    refreshJobs();
    refreshElsewhere();
    refreshTypes();
    throughput.changed();
  };
  useSubscription(CHANGES, {}, { next: changed, resync: changed });
  useEffect(() => onReconnect(refreshTypes), [refreshTypes]);

  const panel = (query, render) => (query.data ? render(query.data)
    : query.error ? html`<${ErrorNotice} error=${query.error} />` : html`<${Loading} />`);
  const data = elsewhere.data;
  return html`
    <${PageHeader} title="Overview" />
    ${status.data ? html`<${StatusCards} data=${status.data} />`
      : status.error ? html`<${ErrorNotice} error=${status.error} title="Jobs could not be counted" />`
        : html`<${Loading} />`}
    <div class="grid two">
      <${Section} title="Waiting longest" id="oldest">
        ${panel(jobs, (found) => html`<${OldestWaiting} data=${found} />`)}
      <//>
      <${Section} title="Elsewhere" id="elsewhere">
        ${panel(elsewhere, () => html`
          <ul class="facts">
            <li><a href=${href('batches')}>Batches</a> <strong>${formatNumber(data.batches.totalCount)}</strong></li>
            <li><a href=${href('documentation-jobs')}>Documentation jobs</a>
              <strong>${formatNumber(data.documentationJobs.totalCount)}</strong>
              <span class="muted">(${formatNumber(data.runningDocumentationJobs.totalCount)} running)</span></li>
            <li><a href=${href('schedules')}>Active schedules</a> <strong>${formatNumber(data.activeSchedules.totalCount)}</strong></li>
          </ul>`)}
      <//>
    </div>
    <${Section} title="Queues" id="types"
        actions=${!fallback && html`<a href=${href('queues')}>Queues and workers →</a>`}>
      ${fallback ? html`<${TypeTable} rows=${types.rows} error=${types.error} />`
        : queues.data ? html`<${QueueTable} queues=${queues.data.queues} caption="Queues by job type" />`
          : queues.error ? html`<${QueuesError} error=${queues.error} />` : html`<${Loading} />`}
    <//>
    <${Section} title="Throughput, last hour" id="throughput">
      <${Throughput} query=${throughput} />
    <//>
    <${Section} title="Recent failures" id="failures">
      ${panel(jobs, (found) => html`<${Failures} data=${found} />`)}
    <//>`;
}
