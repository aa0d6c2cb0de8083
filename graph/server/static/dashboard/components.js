// Small pieces every page uses: headings, status badges, progress and count bars, times,
// errors with their codes, pagers, action buttons, tables of jobs.

import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { href, withParams } from './router.js';
import { useNow } from './hooks.js';

const numbers = new Intl.NumberFormat();
export const formatNumber = (value) => (value == null ? '–' : numbers.format(value));

const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export const formatTime = (value) => (value ? absolute.format(new Date(value)) : '–');

/** "3 s", "4 min", "2 h 5 min", "3 d": a span of time, for people. */
export function formatDuration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  return `${Math.floor(hours / 24)} d`;
}

/** A page's heading (focused after navigation, so screen readers announce the page). */
export function PageHeader({ title, kicker, children }) {
  return html`
    <header class="page-header">
      <div>
        ${kicker && html`<p class="kicker">${kicker}</p>`}
        <h1 tabindex="-1">${title}</h1>
      </div>
      ${children && html`<div class="page-actions">${children}</div>`}
    </header>`;
}

export function Section({ title, id, children, actions }) {
  const heading = `section-${id}`;
  return html`
    <section class="card" aria-labelledby=${heading}>
      <div class="card-header">
        <h2 id=${heading}>${title}</h2>
        ${actions && html`<div class="card-actions">${actions}</div>`}
      </div>
      ${children}
    </section>`;
}

export function StatusBadge({ status }) {
  if (!status) return null;
  return html`<span class=${`badge status-${status.toLowerCase()}`}>${status}</span>`;
}

/** A job's progress: a native progress bar with its step, or a dash when there is none. */
export function ProgressBar({ progress, status }) {
  const percent = status === 'COMPLETED' ? 100 : progress?.percent;
  if (percent == null) return html`<span class="muted">–</span>`;
  const label = progress?.step && status !== 'COMPLETED' ? `${percent}% · ${progress.step}`
    : `${percent}%`;
  return html`
    <span class="progress">
      <progress max="100" value=${percent} class=${status ? `status-${status.toLowerCase()}` : ''}
                aria-label=${`Progress ${label}`}></progress>
      <span class="progress-label">${label}</span>
    </span>`;
}

const COUNT_ORDER = ['completed', 'failed', 'cancelled', 'processing', 'pending'];

/** A batch's jobs by status as one stacked bar, with the numbers written out. */
export function CountsBar({ counts, compact = false }) {
  if (!counts) return null;
  const total = counts.total || 0;
  const summary = COUNT_ORDER.map((name) => `${counts[name]} ${name}`).join(', ');
  return html`
    <div class=${`counts ${compact ? 'compact' : ''}`}>
      <div class="counts-bar" role="img" aria-label=${`${total} jobs: ${summary}`}>
        ${COUNT_ORDER.map((name) => (counts[name] > 0 ? html`
          <span class=${`segment status-${name}`} style=${{ width: `${(100 * counts[name]) / total}%` }}></span>` : null))}
      </div>
      ${!compact && html`
        <ul class="legend">
          ${COUNT_ORDER.map((name) => html`
            <li><span class=${`swatch status-${name}`} aria-hidden="true"></span>
              ${name} <strong>${formatNumber(counts[name])}</strong></li>`)}
          <li>total <strong>${formatNumber(total)}</strong></li>
        </ul>`}
    </div>`;
}

/** "4 min ago" or "in 2 h", with the exact time on hover and for machines. */
export function RelativeTime({ value }) {
  const now = useNow();
  if (!value) return html`<span class="muted">–</span>`;
  const time = new Date(value);
  const delta = time.getTime() - now;
  const text = Math.abs(delta) < 5000 ? 'just now'
    : delta < 0 ? `${formatDuration(-delta)} ago` : `in ${formatDuration(delta)}`;
  return html`<time datetime=${time.toISOString()} title=${formatTime(value)}>${text}</time>`;
}

/** An error as the API gave it: its code first (for looking it up), then its message. */
export function ErrorNotice({ error, title = 'Something went wrong' }) {
  if (!error) return null;
  const errors = error.errors ?? [{ message: String(error.message ?? error) }];
  return html`
    <div class="notice error" role="alert">
      <strong>${title}</strong>
      <ul>
        ${errors.map((item) => html`
          <li>${item.extensions?.code && html`<code class="code">${item.extensions.code}</code> `}
            ${item.message}</li>`)}
      </ul>
    </div>`;
}

export function Loading({ label = 'Loading…' }) {
  return html`<p class="loading" role="status">${label}</p>`;
}

export function Empty({ children }) {
  return html`<p class="empty">${children}</p>`;
}

/** A short form of a long id (the whole one on hover and for copying). */
export function ShortId({ value }) {
  if (!value) return html`<span class="muted">–</span>`;
  return html`<code class="id" title=${value}>${value.length > 12 ? `${value.slice(0, 8)}…` : value}</code>`;
}

export function JsonView({ value, label }) {
  if (value == null) return html`<span class="muted">none</span>`;
  return html`<pre class="json" tabindex="0" aria-label=${label}><code>${JSON.stringify(value, null, 2)}</code></pre>`;
}

/** Label/value rows. */
export function Details({ rows }) {
  return html`
    <dl class="details">
      ${rows.filter(Boolean).map(([label, value]) => html`
        <div class="row"><dt>${label}</dt><dd>${value ?? html`<span class="muted">–</span>`}</dd></div>`)}
    </dl>`;
}

/**
 * A button that runs an action (a mutation), shows it is busy, and says what went wrong
 * with the API's code. `confirm` asks first (deleting).
 */
export function ActionButton({ label, run, confirm, variant = 'secondary', onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const mounted = useRef(true);
  useEffect(() => () => { mounted.current = false; }, []);
  const click = async () => {
    if (confirm && !window.confirm(confirm)) return;
    setBusy(true);
    setError(null);
    try {
      const result = await run();
      onDone?.(result);
    } catch (caught) {
      if (mounted.current) setError(caught);
    } finally {
      if (mounted.current) setBusy(false);
    }
  };
  return html`
    <span class="action">
      <button type="button" class=${`button ${variant}`} onClick=${click} disabled=${busy}
              aria-busy=${busy ? 'true' : 'false'}>${busy ? `${label}…` : label}</button>
      ${error && html`<${ErrorNotice} error=${error} title=${`${label} failed`} />`}
    </span>`;
}

/**
 * Older/newer pages of a connection (newest first, keyset cursors in the URL, so a page
 * can be reloaded and shared). `reversed`: the page shows the oldest first. `labels`:
 * [back, on, first] for other orders (e.g. ['Previous', 'Next', 'First']).
 */
export function Pager({ route, pageInfo, shown, total, noun = 'items', reversed = false,
                        labels }) {
  if (!pageInfo) return null;
  const link = (enabled, params, label, rel) => (enabled
    ? html`<a class="button ghost" rel=${rel} href=${withParams(route, params)}>${label}</a>`
    : html`<span class="button ghost disabled" aria-disabled="true">${label}</span>`);
  const [back, on, first] = labels ?? ['Newer', 'Older', reversed ? 'Oldest' : 'Newest'];
  const newer = (arrow) => link(pageInfo.hasPreviousPage && pageInfo.startCursor,
                                { before: pageInfo.startCursor, after: '' },
                                arrow === 'left' ? `← ${back}` : `${back} →`, 'prev');
  const older = (arrow) => link(pageInfo.hasNextPage && pageInfo.endCursor,
                                { after: pageInfo.endCursor, before: '' },
                                arrow === 'left' ? `← ${on}` : `${on} →`, 'next');
  const paged = route.params.get('after') || route.params.get('before');
  return html`
    <nav class="pager" aria-label="Pages">
      <span class="muted">${formatNumber(shown)} shown of ${formatNumber(total)} ${noun}</span>
      <span class="pager-links">
        ${paged ? html`<a class="button ghost" href=${withParams(route, { after: '', before: '' })}>
          ${first}</a>` : null}
        ${reversed ? [older('left'), newer('right')] : [newer('left'), older('right')]}
      </span>
    </nav>`;
}

/** first/after/last/before from the page's URL: `after` pages older, `before` newer. */
export function pageArguments(route, size = 25) {
  const after = route.params.get('after');
  const before = route.params.get('before');
  if (before) return { last: size, before };
  return after ? { first: size, after } : { first: size };
}

export const pageSize = (route, fallback = 25) => {
  const size = Number(route.params.get('size'));
  return [10, 25, 50, 100].includes(size) ? size : fallback;
};

/** The fields a row of jobs shows (lists, a batch's and a schedule's jobs, live events). */
/**
 * A list's order from the URL (`order=KEY&dir=asc`) among `orders` ([key, API field, label]):
 * the first one, newest first, unless the URL says otherwise.
 */
export function listOrder(params, orders) {
  const known = orders.find(([key]) => key === params.get('order')) ?? orders[0];
  return { key: known[0], field: known[1],
           direction: params.get('dir') === 'asc' ? 'ASC' : 'DESC' };
}

/*
 * Filter forms are uncontrolled: their fields start from the URL (defaultValue,
 * defaultChecked, an option's defaultSelected) and the form is keyed by the URL, so a
 * navigation (Apply, a tab, a pager link, Back) shows the new URL's values. They never
 * take `value` or `checked`: Preact writes those into the DOM again on every render of
 * the page (a live event, a periodic refresh, a list or the viewer answering late), which
 * would put back what the URL says over what the user has chosen but not applied yet.
 */

/** A filter form's `<option>`s ([value, label]); `selected`: the value chosen when shown. */
export function options(choices, selected) {
  return choices.map(([value, label]) => html`
    <option value=${value} defaultSelected=${value === selected}>${label}</option>`);
}

/** A filter form's Reset link: the form goes back to its URL's values too (the link may
 * lead to where the page is already, which is no navigation). */
export const resetForm = (event) => event.currentTarget.closest('form')?.reset();

/** A filter form's "Order by" and "Direction" fields, for `listOrder`. */
export function OrderFields({ orders, order }) {
  return html`
    <label>Order by
      <select name="order">
        ${options(orders.map(([key, , label]) => [key, label]), order.key)}
      </select></label>
    <label>Direction
      <select name="dir">
        ${options([['desc', 'Descending'], ['asc', 'Ascending']],
                  order.direction === 'ASC' ? 'asc' : 'desc')}
      </select></label>`;
}

export const JOB_ROW = `jobId jobType status createdAt updatedAt owner claimedBy attempts
  batchId scheduleId progress { step percent } error { code message } priority runAt
  cancelRequested { at }`;

/** Readable names of jobgraph's own error codes (a worker's codes stay as they are). */
const ERROR_TAGS = { CANCELLED: 'cancelled', TIMED_OUT: 'timed out', LEASE_EXPIRED: 'lease expired' };

export function JobTable({ jobs, caption, showType = true, highlight }) {
  if (!jobs.length) return html`<${Empty}>No jobs here.<//>`;
  return html`
    <div class="table-wrap">
      <table class="jobs">
        <caption class="visually-hidden">${caption}</caption>
        <thead>
          <tr>
            <th scope="col">Job</th>
            ${showType && html`<th scope="col">Type</th>`}
            <th scope="col">Status</th>
            <th scope="col"><abbr title="Priority: higher is claimed first">Prio.</abbr></th>
            <th scope="col" class="wide">Progress</th>
            <th scope="col">Worker</th>
            <th scope="col">Created</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          ${jobs.map((job) => html`
            <tr key=${job.jobId} class=${highlight?.has(job.jobId) ? 'flash' : ''}>
              <th scope="row"><a href=${href(`jobs/${job.jobId}`)}><${ShortId} value=${job.jobId} /></a></th>
              ${showType && html`<td>${job.jobType}</td>`}
              <td><${StatusBadge} status=${job.status} />
                ${job.status === 'PENDING' && job.runAt && new Date(job.runAt).getTime() > Date.now()
                  && html` <span class="tag" title=${`Delayed until ${formatTime(job.runAt)}`}>delayed</span>`}
                ${job.status === 'PROCESSING' && job.cancelRequested
                  && html` <span class="tag warn">cancel requested</span>`}
                ${job.status === 'FAILED' && job.error && html`
                  <div class="muted small"><code>${job.error.code}</code>${ERROR_TAGS[job.error.code]
                    ? ` ${ERROR_TAGS[job.error.code]}` : ''}</div>`}</td>
              <td class="number">${job.priority ?? 0}</td>
              <td class="wide"><${ProgressBar} progress=${job.progress} status=${job.status} /></td>
              <td>${job.claimedBy ?? html`<span class="muted">–</span>`}</td>
              <td><${RelativeTime} value=${job.createdAt} /></td>
              <td><${RelativeTime} value=${job.updatedAt} /></td>
            </tr>`)}
        </tbody>
      </table>
    </div>`;
}

export const JOB_STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'];
