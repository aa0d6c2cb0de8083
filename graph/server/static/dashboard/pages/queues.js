// Queues (one per job type): counts by state, the longest wait, paused or limited, and for
// admins (viewerCanAdmin) pause/resume and the concurrency limit. Live: counted again when
// a job changes (jobsChanged, at most every 3 s, never busier than the server answers), and
// every 15 s besides (a delayed job falling due, another admin's pause, changes no job).
// The overview shows the same table without the controls.

import { useEffect } from 'preact/hooks';
import { request } from '../api.js';
import {
  ActionButton, Empty, ErrorNotice, Loading, PageHeader, RelativeTime, Section,
  formatDuration, formatNumber,
} from '../components.js';
import { InputAction } from '../forms.js';
import {
  refreshInterval, useNow, useQuery, useSubscription, useThrottled, useTitle,
} from '../hooks.js';
import { html } from '../html.js';
import { href } from '../router.js';

export const QUEUE_FIELDS = `jobType paused maxConcurrency oldestClaimableSince
  counts { pending delayed processing completed failed cancelled total }
  updatedAt updatedBy viewerCanAdmin workers { workerId }`;
export const QUEUES = `query Queues { queues { ${QUEUE_FIELDS} } }`;
const PAUSE = (pause) => `mutation Pause($jobType: String!) {
  ${pause ? 'pauseQueue' : 'resumeQueue'}(jobType: $jobType) { ${QUEUE_FIELDS} } }`;
const LIMIT = `mutation Limit($jobType: String!, $max: Int) {
  setQueueConcurrency(jobType: $jobType, max: $max) { ${QUEUE_FIELDS} } }`;
const CHANGES = 'subscription QueueChanges { jobsChanged(initial: 0) { kind jobId } }';
const REFRESH_MS = 3000;
export const POLL_MS = 15000;

/** Refetch every `ms` while the tab is visible (and `enabled`). */
export function usePolling(refetch, ms, enabled = true) {
  useEffect(() => {
    if (!enabled) return undefined;
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') refetch();
    }, ms);
    return () => clearInterval(timer);
  }, [refetch, ms, enabled]);
}

/** A query of queues kept live: on job changes (throttled) and by polling. */
export function useLiveQueues(query) {
  const refresh = useThrottled(query.refetch, refreshInterval(query, REFRESH_MS));
  useSubscription(CHANGES, {}, { next: refresh, resync: refresh });
  usePolling(query.refetch, POLL_MS);
}

const COUNTS = [
  ['pending', 'Pending', 'PENDING'],
  ['delayed', 'Delayed', 'PENDING'],
  ['processing', 'Processing', 'PROCESSING'],
  ['completed', 'Completed', 'COMPLETED'],
  ['failed', 'Failed', 'FAILED'],
];

function Count({ queue, name, status }) {
  const value = queue.counts[name];
  if (!value) return html`<span class="muted">0</span>`;
  return html`<a href=${href('jobs', { type: queue.jobType, status })}>${formatNumber(value)}</a>`;
}

function PauseControl({ queue, replace }) {
  return html`
    <${ActionButton} label=${queue.paused ? 'Resume' : 'Pause'}
      variant=${queue.paused ? 'primary' : 'secondary'}
      run=${() => request(PAUSE(!queue.paused), { jobType: queue.jobType })}
      onDone=${(data) => replace(data.pauseQueue ?? data.resumeQueue)} />`;
}

/** The limit in its field (empty: none); "Set limit" sets it, or removes it when empty. */
function LimitControl({ queue, replace }) {
  return html`
    <${InputAction} label="Set limit" inputLabel=${`Concurrency limit of ${queue.jobType}`}
      type="number" min="1" max="100000" initial=${queue.maxConcurrency ?? ''}
      placeholder="none" className="compact" hideLabel=${true}
      run=${(max) => request(LIMIT, { jobType: queue.jobType, max })}
      onDone=${(data) => replace(data.setQueueConcurrency)} />`;
}

/** The queues as a table; `replace(queue)` given: admins get their controls. */
export function QueueTable({ queues, replace, caption = 'Queues' }) {
  const now = useNow(5000);
  if (!queues.length) return html`<${Empty}>No queues yet: no job has been created.<//>`;
  const controls = replace && queues.some((queue) => queue.viewerCanAdmin);
  return html`
    <div class="table-wrap">
      <table class="numbers queues">
        <caption class="visually-hidden">${caption}</caption>
        <thead>
          <tr>
            <th scope="col"><abbr title="One queue per job type">Queue</abbr></th>
            ${COUNTS.map(([, label]) => html`<th scope="col">${label}</th>`)}
            <th scope="col">Oldest waiting</th>
            <th scope="col">State</th>
            <th scope="col">Limit</th>
            <th scope="col">Workers</th>
          </tr>
        </thead>
        <tbody>
          ${queues.map((queue) => html`
            <tr key=${queue.jobType}>
              <th scope="row"><a href=${href('jobs', { type: queue.jobType })}>${queue.jobType}</a></th>
              ${COUNTS.map(([name, , status]) => html`
                <td><${Count} queue=${queue} name=${name} status=${status} />
                  ${name === 'failed' && queue.counts.cancelled > 0 && html`
                    <div class="muted small">+${formatNumber(queue.counts.cancelled)} cancelled</div>`}</td>`)}
              <td>${queue.oldestClaimableSince
                ? html`<span title=${`waiting since ${new Date(queue.oldestClaimableSince).toLocaleString()}`}>
                    ${formatDuration(now - new Date(queue.oldestClaimableSince).getTime())}</span>`
                : html`<span class="muted">–</span>`}</td>
              <td class=${controls ? 'controls' : ''}>${queue.paused ? html`<span class="tag paused">paused</span>`
                : html`<span class="tag ok">running</span>`}
                ${controls && queue.viewerCanAdmin && html`<${PauseControl} queue=${queue} replace=${replace} />`}
                ${queue.updatedBy && html`<div class="muted small">by ${queue.updatedBy}${' '}
                  <${RelativeTime} value=${queue.updatedAt} /></div>`}</td>
              <td class=${controls ? 'controls' : ''}>${controls && queue.viewerCanAdmin
                ? html`<${LimitControl} queue=${queue} replace=${replace} />`
                : queue.maxConcurrency == null ? html`<span class="muted">none</span>`
                  : formatNumber(queue.maxConcurrency)}</td>
              <td>${queue.workers.length ? html`<a href=${href('workers', { type: queue.jobType })}>
                ${formatNumber(queue.workers.length)}</a>` : html`<span class="muted">0</span>`}</td>
            </tr>`)}
        </tbody>
      </table>
    </div>`;
}

/** Queues are the operators' view: say so rather than only FORBIDDEN. */
export function QueuesError({ error }) {
  if (error?.code === 'FORBIDDEN') {
    return html`<p class="notice info">Queues and workers are shown to operators: sign in${' '}
      with the worker or admin role.</p>`;
  }
  return html`<${ErrorNotice} error=${error} title="The queues could not be listed" />`;
}

export default function Queues() {
  useTitle('Queues');
  const query = useQuery(QUEUES);
  useLiveQueues(query);
  const queues = query.data?.queues;
  const replace = (queue) => query.update((data) => ({
    queues: data.queues.map((old) => (old.jobType === queue.jobType ? queue : old)) }));
  return html`
    <${PageHeader} title="Queues">
      <a class="button ghost" href=${href('workers')}>Workers →</a>
    <//>
    ${query.error && html`<${QueuesError} error=${query.error} />`}
    ${!queues ? (!query.error && html`<${Loading} />`) : html`
      <${Section} title="Job types" id="queues">
        <${QueueTable} queues=${queues} replace=${replace} />
        <p class="muted small">Pending: due now; delayed: waiting for their run time. A paused
          queue's jobs are not claimed; the limit caps how many run at once. Updated live, and
          every ${POLL_MS / 1000} s.</p>
      <//>`}`;
}
