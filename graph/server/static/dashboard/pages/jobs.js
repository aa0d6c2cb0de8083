// Jobs: the filters the API offers (status, type, batch, creation time), newest or oldest
// first, paged by the server's keyset cursors (everything in the URL), rows following
// jobsChanged live.
//
// Richer filters and orders (several statuses at once, orderBy) wait for the insight API:
// they go into `filterFrom` and the form below.

import {
  ErrorNotice, JOB_ROW, JOB_STATUSES, JobTable, Loading, PageHeader, Pager, pageSize,
} from '../components.js';
import { refreshInterval, useQuery, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { replaceInConnection, useLiveJobs } from '../live.js';
import { href, navigate, withParams } from '../router.js';

const JOBS = `query Jobs($filter: JobFilterInput, $first: Int, $after: String, $last: Int,
                         $before: String) {
  jobs(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { ${JOB_ROW} } }
  }
}`;

/** The API's filter from the page's URL. */
export function filterFrom(params) {
  const filter = {};
  const status = params.get('status');
  if (JOB_STATUSES.includes(status)) filter.status = status;
  if (params.get('type')) filter.jobType = params.get('type');
  if (params.get('batch')) filter.batchId = params.get('batch');
  if (params.get('createdAfter')) filter.createdAfter = params.get('createdAfter');
  if (params.get('createdBefore')) filter.createdBefore = params.get('createdBefore');
  return filter;
}

/** Page arguments for an order: oldest first is the newest-first list read from its end. */
function pageOf(params, size, oldest) {
  const after = params.get('after');
  const before = params.get('before');
  if (after) return { first: size, after };
  if (before) return { last: size, before };
  return oldest ? { last: size } : { first: size };
}

const toLocalInput = (iso) => {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
const fromLocalInput = (value) => (value ? new Date(value).toISOString() : '');

function StatusTabs({ route }) {
  const current = route.params.get('status') || '';
  const tabs = [['', 'All'], ...JOB_STATUSES.map((status) => [status, status.toLowerCase()])];
  return html`
    <nav class="tabs" aria-label="Status">
      ${tabs.map(([status, label]) => html`
        <a href=${withParams(route, { status, after: '', before: '' })}
           aria-current=${current === status ? 'page' : undefined}>${label}</a>`)}
    </nav>`;
}

function Filters({ route, types }) {
  const params = route.params;
  const submit = (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    navigate(href('jobs', {
      status: params.get('status'),
      type: form.get('type').trim(),
      batch: form.get('batch').trim(),
      createdAfter: fromLocalInput(form.get('createdAfter')),
      createdBefore: fromLocalInput(form.get('createdBefore')),
      order: form.get('order') === 'oldest' ? 'oldest' : '',
      size: form.get('size') === '25' ? '' : form.get('size'),
    }));
  };
  return html`
    <form class="filters" onSubmit=${submit} aria-label="Filter jobs">
      <label>Job type
        <input name="type" list="job-types" value=${params.get('type') ?? ''} autocomplete="off" />
        <datalist id="job-types">${types.map((type) => html`<option value=${type} />`)}</datalist>
      </label>
      <label>Batch id <input name="batch" value=${params.get('batch') ?? ''} autocomplete="off" /></label>
      <label>Created after
        <input type="datetime-local" name="createdAfter" value=${toLocalInput(params.get('createdAfter'))} /></label>
      <label>Created before
        <input type="datetime-local" name="createdBefore" value=${toLocalInput(params.get('createdBefore'))} /></label>
      <label>Order
        <select name="order" value=${params.get('order') === 'oldest' ? 'oldest' : 'newest'}>
          <option value="newest">Newest first</option>
          <option value="oldest">Oldest first</option>
        </select></label>
      <label>Per page
        <select name="size" value=${String(pageSize(route))}>
          ${[10, 25, 50, 100].map((size) => html`<option value=${String(size)}>${size}</option>`)}
        </select></label>
      <span class="filter-buttons">
        <button type="submit" class="button primary">Apply</button>
        <a class="button ghost" href=${href('jobs')}>Reset</a>
      </span>
    </form>`;
}

export default function Jobs({ route }) {
  useTitle('Jobs');
  const params = route.params;
  const filter = filterFrom(params);
  const oldest = params.get('order') === 'oldest';
  const size = pageSize(route);
  const jobs = useQuery(JOBS, { filter, ...pageOf(params, size, oldest) });
  const connection = jobs.data?.jobs;
  const newestFirst = connection ? connection.edges.map((edge) => edge.node) : [];
  const rows = oldest ? [...newestFirst].reverse() : newestFirst;
  const firstPage = !params.get('after') && !params.get('before');
  const { stale, flashing } = useLiveJobs({
    filter, rows, fetchedAt: jobs.fetchedAt, refetch: jobs.refetch,
    interval: refreshInterval(jobs, 1500),
    newestPage: firstPage,
    replace: (job) => jobs.update((data) => ({ jobs: replaceInConnection(data.jobs, job) })),
  });
  const types = [...new Set(rows.map((job) => job.jobType))].sort();

  return html`
    <${PageHeader} title="Jobs" />
    <${StatusTabs} route=${route} />
    <${Filters} route=${route} types=${types} key=${params.toString()} />
    ${jobs.error && html`<${ErrorNotice} error=${jobs.error} title="The jobs could not be listed" />`}
    ${stale && html`
      <p class="notice info" role="status">Jobs changed since this page was loaded:${' '}
        <a href=${withParams(route, { after: '', before: '' })}>show the newest</a> or${' '}
        <button type="button" class="link" onClick=${jobs.refetch}>reload this page</button>.</p>`}
    ${!connection ? (!jobs.error && html`<${Loading} />`) : html`
      <section class="card flush" aria-label="Job list" aria-busy=${jobs.loading ? 'true' : 'false'}>
        <${JobTable} jobs=${rows} caption="Jobs" highlight=${flashing} />
        <${Pager} route=${route} pageInfo=${connection.pageInfo} shown=${rows.length}
                  total=${connection.totalCount} noun="jobs" reversed=${oldest} />
      </section>`}`;
}
