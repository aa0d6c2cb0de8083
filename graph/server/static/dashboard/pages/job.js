// One job: its state following jobChanged, its log following jobLogs (resumed after a
// reconnect from the last entry seen), and the actions the viewer may take (each shown by
// its `viewerCan...` flag: retry, delete, cancel with a reason, change the priority).
//
// Its history (job-history.js) follows the log, for the job's admins only.

import { useEffect, useRef, useState } from 'preact/hooks';
import { request } from '../api.js';
import {
  ActionButton, Details, ErrorNotice, JsonView, Loading, PageHeader, ProgressBar,
  RelativeTime, Section, ShortId, StatusBadge, formatDuration, formatTime,
} from '../components.js';
import { InputAction, JOB_ERROR_NAMES, describeRetryPolicy, isDelayed } from '../forms.js';
import { useQuery, useSubscription, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href, navigate } from '../router.js';
import { JobHistory } from './job-history.js';

const JOB_FIELDS = `jobId jobType status parameters results createdAt updatedAt
  progress { step percent message } error { code message details }
  previousErrors { code message details } batchId batch { batchId batchName } owner
  claimedBy processingStartedAt completedAt leaseExpiresAt attempts maxAttempts retryable
  logSeq version scheduleId scheduledFor
  accessControl { visibility readAccess writeAccess adminAccess }
  priority runAt timeoutSeconds timeoutAt cancelRequested { by at reason }
  retryPolicy { maxAttempts backoff baseSeconds capSeconds }
  viewerCanWrite viewerCanAdmin viewerCanRetry viewerCanDelete viewerCanCancel
  viewerCanSetPriority`;

const JOB = `query Job($jobId: ID!) { job(jobId: $jobId) { ${JOB_FIELDS} } }`;
const JOB_CHANGED = `subscription JobChanged($jobId: ID!) { jobChanged(jobId: $jobId) {
  ${JOB_FIELDS} } }`;
const JOB_LOGS = `subscription JobLogs($jobId: ID!, $after: Int!) {
  jobLogs(jobId: $jobId, after: $after) {
    lastSeq gap { fromSeq toSeq } entries { seq timestamp level message attempt } } }`;
const RETRY = `mutation Retry($jobId: ID!) { retryJob(jobId: $jobId) { ${JOB_FIELDS} } }`;
const DELETE = 'mutation Delete($jobId: ID!) { deleteJob(jobId: $jobId) { jobId } }';
const CANCEL = `mutation Cancel($jobId: ID!, $reason: String) {
  cancelJob(jobId: $jobId, reason: $reason) { ${JOB_FIELDS} } }`;
const SET_PRIORITY = `mutation SetPriority($jobId: ID!, $priority: Int!) {
  setJobPriority(jobId: $jobId, priority: $priority) { ${JOB_FIELDS} } }`;
const MAX_SHOWN_ENTRIES = 2000;

function Actions({ job, replace }) {
  const buttons = [];
  if (job.viewerCanRetry) {
    buttons.push(html`<${ActionButton} label="Retry" variant="primary"
      run=${() => request(RETRY, { jobId: job.jobId })} onDone=${(data) => replace(data.retryJob)} />`);
  }
  if (job.viewerCanCancel) {
    buttons.push(html`<${CancelAction} job=${job} replace=${replace} />`);
  }
  if (job.viewerCanDelete) {
    buttons.push(html`<${ActionButton} label="Delete" variant="danger"
      confirm=${`Delete job ${job.jobId}? This cannot be undone.`}
      run=${() => request(DELETE, { jobId: job.jobId })}
      onDone=${() => navigate(href('jobs'))} />`);
  }
  return buttons.length ? buttons : null;
}

/** "Cancel job…" opens a reason field (optional) and the button that cancels. */
function CancelAction({ job, replace }) {
  const [open, setOpen] = useState(false);
  if (!open) {
    return html`<button type="button" class="button danger" aria-expanded="false"
      onClick=${() => setOpen(true)}>Cancel job…</button>`;
  }
  const what = job.status === 'PROCESSING'
    ? 'Its worker is asked to stop; the job ends FAILED with CANCELLED.'
    : 'It ends FAILED with CANCELLED at once.';
  return html`
    <div class="cancel-box" role="group" aria-label="Cancel the job">
      <${InputAction} label="Cancel job" inputLabel="Reason (optional)" variant="danger"
        placeholder="why, for the worker and the record"
        run=${(reason) => request(CANCEL, { jobId: job.jobId, reason: reason || null })}
        onDone=${(data) => replace(data.cancelJob)} />
      <p class="muted small">${what}${' '}
        <button type="button" class="link" onClick=${() => setOpen(false)}>Keep it</button></p>
    </div>`;
}

/** The priority, and a field to change it while the job waits (viewerCanSetPriority). */
function Priority({ job, replace }) {
  if (!job.viewerCanSetPriority) return html`<span>${job.priority}</span>`;
  return html`<${InputAction} label="Set" inputLabel="Priority" type="number" min="-1000"
    max="1000" required=${true} initial=${job.priority} className="compact"
    run=${(priority) => request(SET_PRIORITY, { jobId: job.jobId, priority })}
    onDone=${(data) => replace(data.setJobPriority)} />`;
}

/** Who asked a running job to cancel, when and why; until its worker stops. */
function CancelRequested({ job }) {
  const asked = job.cancelRequested;
  if (!asked || job.status !== 'PROCESSING') return null;
  return html`
    <div class="notice warn" role="status">
      <strong>Cancel requested</strong> by ${asked.by}${' '}<${RelativeTime} value=${asked.at} />
      ${asked.reason ? html`: “${asked.reason}”` : html` <span class="muted">(no reason given)</span>`}.
      <br /><span class="small">Waiting for the worker to stop${job.timeoutAt
        ? html`; its claim ends <${RelativeTime} value=${job.timeoutAt} /> at the latest` : ''}.</span>
    </div>`;
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
  const name = JOB_ERROR_NAMES[error.code];
  const cancel = error.code === 'CANCELLED' && error.details;
  return html`
    <div class="job-error">
      <p><code class="code">${error.code}</code>${name && html` <strong>${name}</strong>`}${' '}
        ${error.message}</p>
      ${cancel ? html`<${Details} rows=${[
        ['Cancelled by', cancel.by],
        ['Asked', cancel.at && html`<${RelativeTime} value=${cancel.at} />`],
        ['Reason', cancel.reason],
      ]} />` : error.details != null
        && html`<${JsonView} value=${error.details} label=${`${title} details`} />`}
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
            ${job.status === 'FAILED' && JOB_ERROR_NAMES[job.error?.code] && html`
              <span class="tag">${JOB_ERROR_NAMES[job.error.code].toLowerCase()}</span>`}
            ${isDelayed(job) && html`<span class="tag">delayed</span>`}
            ${job.cancelRequested && job.status === 'PROCESSING' && html`<span class="tag warn">cancel requested</span>`}
            <${ProgressBar} progress=${job.progress} status=${job.status} />
          </div>
          ${job.progress?.message && html`<p class="muted">${job.progress.message}</p>`}
          <${CancelRequested} job=${job} />
          <${Details} rows=${[
            ['Job id', html`<code>${job.jobId}</code>`],
            ['Type', job.jobType],
            ['Priority', html`<${Priority} job=${job} replace=${replace} />`],
            job.runAt && [isDelayed(job) ? 'Delayed until' : 'Run at', html`
              <${RelativeTime} value=${job.runAt} />${isDelayed(job) && html` <span class="tag">delayed</span>`}`],
            ['Attempts', `${job.attempts} of ${job.maxAttempts}`],
            ['Retry policy', describeRetryPolicy(job.retryPolicy)],
            job.timeoutSeconds != null && ['Timeout', `${formatDuration(job.timeoutSeconds * 1000)} per run`],
            ['Worker', job.claimedBy],
            job.status === 'PROCESSING' && ['Lease expires', html`<${RelativeTime} value=${job.leaseExpiresAt} />`],
            job.status === 'PROCESSING' && job.timeoutAt && ['Claim ends', html`<${RelativeTime} value=${job.timeoutAt} />`],
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
      <${Log} jobId=${id} />
      <${JobHistory} jobId=${id} />`}`;
}
