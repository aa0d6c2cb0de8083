// One job: its state following jobChanged, its log following jobLogs (resumed after a
// reconnect from the last entry seen), and the actions the viewer may take.
//
// Cancel and change-priority buttons (viewerCanCancel, setJobPriority) and the job's
// history wait for the queue-semantics and insight APIs: they go into `Actions` and a
// section after the log.

import { useEffect, useRef, useState } from 'preact/hooks';
import { request } from '../api.js';
import {
  ActionButton, Details, ErrorNotice, JsonView, Loading, PageHeader, ProgressBar,
  RelativeTime, Section, ShortId, StatusBadge, formatTime,
} from '../components.js';
import { useQuery, useSubscription, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href, navigate } from '../router.js';

const JOB_FIELDS = `jobId jobType status parameters results createdAt updatedAt
  progress { step percent message } error { code message details }
  previousErrors { code message details } batchId batch { batchId batchName } owner
  claimedBy processingStartedAt completedAt leaseExpiresAt attempts maxAttempts retryable
  logSeq version scheduleId scheduledFor
  accessControl { visibility readAccess writeAccess adminAccess }
  viewerCanWrite viewerCanAdmin viewerCanRetry viewerCanDelete`;

const JOB = `query Job($jobId: ID!) { job(jobId: $jobId) { ${JOB_FIELDS} } }`;
const JOB_CHANGED = `subscription JobChanged($jobId: ID!) { jobChanged(jobId: $jobId) {
  ${JOB_FIELDS} } }`;
const JOB_LOGS = `subscription JobLogs($jobId: ID!, $after: Int!) {
  jobLogs(jobId: $jobId, after: $after) {
    lastSeq gap { fromSeq toSeq } entries { seq timestamp level message attempt } } }`;
const RETRY = `mutation Retry($jobId: ID!) { retryJob(jobId: $jobId) { ${JOB_FIELDS} } }`;
const DELETE = 'mutation Delete($jobId: ID!) { deleteJob(jobId: $jobId) { jobId } }';
const MAX_SHOWN_ENTRIES = 2000;

function Actions({ job, replace }) {
  const buttons = [];
  if (job.viewerCanRetry) {
    buttons.push(html`<${ActionButton} label="Retry" variant="primary"
      run=${() => request(RETRY, { jobId: job.jobId })} onDone=${(data) => replace(data.retryJob)} />`);
  }
  if (job.viewerCanDelete) {
    buttons.push(html`<${ActionButton} label="Delete" variant="danger"
      confirm=${`Delete job ${job.jobId}? This cannot be undone.`}
      run=${() => request(DELETE, { jobId: job.jobId })}
      onDone=${() => navigate(href('jobs'))} />`);
  }
  return buttons.length ? buttons : null;
}

function Log({ jobId }) {
  const [log, setLog] = useState({ entries: [], gaps: [], error: null, started: false });
  const [follow, setFollow] = useState(true);
  const lastSeq = useRef(0);
  const box = useRef(null);

  useSubscription(JOB_LOGS, () => ({ jobId, after: lastSeq.current }), {
    next: ({ jobLogs }) => {
      const fresh = jobLogs.entries.filter((entry) => entry.seq > lastSeq.current);
      lastSeq.current = Math.max(lastSeq.current, jobLogs.lastSeq);
      setLog((old) => ({
        entries: [...old.entries, ...fresh].slice(-MAX_SHOWN_ENTRIES),
        gaps: jobLogs.gap ? [...old.gaps, jobLogs.gap] : old.gaps,
        error: null,
        started: true,
      }));
    },
    error: (error) => setLog((old) => ({ ...old, error })),
  }, { key: jobId });

  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [log.entries, follow]);

  return html`
    <${Section} title="Log" id="log" actions=${html`
      <label class="toggle"><input type="checkbox" checked=${follow}
        onChange=${(event) => setFollow(event.currentTarget.checked)} /> Follow</label>`}>
      ${log.error && html`<${ErrorNotice} error=${log.error} title="The log stopped" />`}
      ${log.gaps.map((gap) => html`
        <p class="notice info">Entries ${gap.fromSeq}–${gap.toSeq} were dropped by the capped log.</p>`)}
      <div class="log-box" ref=${box} tabindex="0" role="log" aria-label="Job log">
        ${log.entries.length === 0
          ? html`<p class="muted">${log.started ? 'No entries yet.' : 'Loading the log…'}</p>`
          : html`<ol class="log">
              ${log.entries.map((entry) => html`
                <li key=${entry.seq} class=${`level-${entry.level.toLowerCase()}`}>
                  <span class="seq">${entry.seq}</span>
                  <time datetime=${entry.timestamp} title=${formatTime(entry.timestamp)}>
                    ${new Date(entry.timestamp).toLocaleTimeString()}</time>
                  <span class="level">${entry.level}</span>
                  <span class="message">${entry.message}</span>
                </li>`)}
            </ol>`}
      </div>
    <//>`;
}

function ErrorBlock({ error, title }) {
  return html`
    <div class="job-error">
      <p><code class="code">${error.code}</code> ${error.message}</p>
      ${error.details != null && html`<${JsonView} value=${error.details} label=${`${title} details`} />`}
    </div>`;
}

function Access({ access }) {
  const list = (users) => (users.length ? users.join(', ') : html`<span class="muted">none</span>`);
  return html`<${Details} rows=${[
    ['Visibility', access.visibility.toLowerCase()],
    ['Readers', list(access.readAccess)],
    ['Writers', list(access.writeAccess)],
    ['Admins', list(access.adminAccess)],
  ]} />`;
}

export default function Job({ id }) {
  useTitle(`Job ${id.slice(0, 8)}`);
  const query = useQuery(JOB, { jobId: id });
  const [gone, setGone] = useState(null);
  const replace = (job) => query.update(() => ({ job }));
  useSubscription(JOB_CHANGED, { jobId: id }, {
    next: ({ jobChanged }) => replace(jobChanged),
    error: (error) => setGone(error),
  });
  const job = query.data?.job;

  return html`
    <${PageHeader} title=${html`Job <${ShortId} value=${id} />`}
                   kicker=${html`<a href=${href('jobs')}>Jobs</a>${job ? ` · ${job.jobType}` : ''}`}>
      ${job && !gone && html`<${Actions} job=${job} replace=${replace} />`}
    <//>
    ${query.error && html`<${ErrorNotice} error=${query.error} title="The job could not be shown" />`}
    ${gone && job && html`<${ErrorNotice} error=${gone}
        title="This job is gone: deleted, or you may no longer read it" />`}
    ${!job ? (!query.error && html`<${Loading} />`) : html`
      <div class="grid two">
        <${Section} title="State" id="state">
          <div class="state-line">
            <${StatusBadge} status=${job.status} />
            <${ProgressBar} progress=${job.progress} status=${job.status} />
          </div>
          ${job.progress?.message && html`<p class="muted">${job.progress.message}</p>`}
          <${Details} rows=${[
            ['Job id', html`<code>${job.jobId}</code>`],
            ['Type', job.jobType],
            ['Attempts', `${job.attempts} of ${job.maxAttempts}`],
            ['Worker', job.claimedBy],
            job.status === 'PROCESSING' && ['Lease expires', html`<${RelativeTime} value=${job.leaseExpiresAt} />`],
            ['Created', html`<${RelativeTime} value=${job.createdAt} />`],
            ['Started', job.processingStartedAt && html`<${RelativeTime} value=${job.processingStartedAt} />`],
            ['Finished', job.completedAt && html`<${RelativeTime} value=${job.completedAt} />`],
            ['Updated', html`<${RelativeTime} value=${job.updatedAt} />`],
            ['Owner', job.owner],
            job.batchId && ['Batch', html`<a href=${href(`batches/${job.batchId}`)}>${job.batch?.batchName ?? job.batchId}</a>`],
            job.scheduleId && ['Schedule', html`<a href=${href(`schedules/${job.scheduleId}`)}><${ShortId} value=${job.scheduleId} /></a>`],
            job.status === 'FAILED' && !job.retryable && ['Retryable', 'no: failed for good'],
          ]} />
        <//>
        <${Section} title="Access" id="access"><${Access} access=${job.accessControl} /><//>
      </div>
      ${(job.error || job.previousErrors.length > 0) && html`
        <${Section} title="Errors" id="errors">
          ${job.error && html`<h3>Last failure</h3><${ErrorBlock} error=${job.error} title="Error" />`}
          ${job.previousErrors.length > 0 && html`
            <h3>Earlier attempts</h3>
            <ol class="previous-errors">
              ${job.previousErrors.map((error, index) => html`
                <li key=${index}><${ErrorBlock} error=${error} title=${`Attempt ${index + 1} error`} /></li>`)}
            </ol>`}
        <//>`}
      <div class="grid two">
        <${Section} title="Parameters" id="parameters"><${JsonView} value=${job.parameters} label="Parameters" /><//>
        <${Section} title="Results" id="results"><${JsonView} value=${job.results} label="Results" /><//>
      </div>
      <${Log} jobId=${id} />`}`;
}
