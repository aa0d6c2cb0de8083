// Jobs: every filter and order the API offers (several statuses and job types, owner,
// worker, error code, batch, priority and time ranges; created, updated, finished or
// priority order either way), all in the URL so a reload or a shared link shows the same
// list; paged by the server's keyset cursors (never the whole list), rows following
// jobsChanged live. Input the API refuses is shown with its code (VALIDATION_ERROR naming
// the field).

import {
  ErrorNotice, JOB_ROW, JOB_STATUSES, JobTable, Loading, OrderFields, PageHeader, Pager,
  listOrder, options, pageSize, resetForm,
} from '../components.js';
import { refreshInterval, useQuery, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { replaceInConnection, useLiveJobs } from '../live.js';
import { href, navigate, withParams } from '../router.js';

const JOBS = `query Jobs($filter: JobFilterInput, $first: Int, $after: String, $last: Int,
                         $before: String, $orderBy: JobOrderInput) {
  jobs(filter: $filter, first: $first, after: $after, last: $last, before: $before,
       orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { ${JOB_ROW} completedAt } }
  }
}`;

export const ORDERS = [['created', 'CREATED', 'Created'], ['updated', 'UPDATED', 'Updated'],
                       ['finished', 'FINISHED', 'Finished'], ['priority', 'PRIORITY', 'Priority']];
const TEXT_FILTERS = [['owner', 'owner', 'Owner (user id)'], ['worker', 'claimedBy', 'Worker id'],
                      ['error', 'errorCode', 'Error code'], ['batch', 'batchId', 'Batch id']];
const RANGES = [['created', 'Created'], ['updated', 'Updated'], ['finished', 'Finished']];

const list = (value) => (value ? value.split(',').map((item) => item.trim()).filter(Boolean) : []);
// a number when it is one; anything else goes to the API as it is, which says what is wrong
const number = (value) => (value !== '' && Number.isFinite(Number(value)) ? Number(value) : value);

/** The URL's statuses (`status=PENDING,FAILED`), only the API's. */
export const statusesFrom = (params) => list(params.get('status'))
  .filter((status) => JOB_STATUSES.includes(status));

/** The API's filter from the page's URL. */
export function filterFrom(params) {
  const filter = {};
  const statuses = statusesFrom(params);
  if (statuses.length === 1) [filter.status] = statuses;
  else if (statuses.length > 1) filter.statuses = statuses;
  const types = list(params.get('type'));
  if (types.length === 1) [filter.jobType] = types;
  else if (types.length > 1) filter.jobTypes = types;
  for (const [name, field] of TEXT_FILTERS) {
    if (params.get(name)) filter[field] = params.get(name);
  }
  if (params.get('hasBatch') === 'yes') filter.hasBatch = true;
  if (params.get('hasBatch') === 'no') filter.hasBatch = false;
  if (params.get('minPriority')) filter.minPriority = number(params.get('minPriority'));
  if (params.get('maxPriority')) filter.maxPriority = number(params.get('maxPriority'));
  for (const [name] of RANGES) {
    for (const side of ['After', 'Before']) {
      if (params.get(`${name}${side}`)) filter[`${name}${side}`] = params.get(`${name}${side}`);
    }
  }
  return filter;
}

/** The order from the URL: `order=priority&dir=asc`; `order=oldest` is created ascending. */
export function orderFrom(params) {
  const order = params.get('order');
  if (order === 'oldest') return { key: 'created', field: 'CREATED', direction: 'ASC' };
  return listOrder(params, ORDERS);
}

/** Page arguments: `after` pages on in the order, `before` back. */
function pageOf(params, size) {
  const after = params.get('after');
  const before = params.get('before');
  if (after) return { first: size, after };
  if (before) return { last: size, before };
  return { first: size };
}

const toLocalInput = (iso) => {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
const fromLocalInput = (value) => (value ? new Date(value).toISOString() : '');

function StatusTabs({ route }) {
  const statuses = statusesFrom(route.params);
  const current = statuses.length === 1 ? statuses[0] : statuses.length ? null : '';
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
  const statuses = statusesFrom(params);
  const order = orderFrom(params);
  const submit = (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name) => String(form.get(name) ?? '').trim();
    const values = {
      status: form.getAll('status').join(','),
      type: list(text('type')).join(','),
      hasBatch: text('hasBatch'),
      minPriority: text('minPriority'),
      maxPriority: text('maxPriority'),
      order: text('order') === 'created' ? '' : text('order'),
      dir: text('dir') === 'asc' ? 'asc' : '',
      size: text('size') === '25' ? '' : text('size'),
    };
    for (const [name] of TEXT_FILTERS) values[name] = text(name);
    for (const [name] of RANGES) {
      for (const side of ['After', 'Before']) {
        values[`${name}${side}`] = fromLocalInput(text(`${name}${side}`));
      }
    }
    navigate(href('jobs', values));
  };
  const range = (name, label) => html`
    <fieldset class="range">
      <legend>${label}</legend>
      <label>after
        <input type="datetime-local" name=${`${name}After`} defaultValue=${toLocalInput(params.get(`${name}After`))} /></label>
      <label>before
        <input type="datetime-local" name=${`${name}Before`} defaultValue=${toLocalInput(params.get(`${name}Before`))} /></label>
    </fieldset>`;
  return html`
    <form class="filters" onSubmit=${submit} aria-label="Filter jobs">
      <fieldset class="checks">
        <legend>Statuses</legend>
        ${JOB_STATUSES.map((status) => html`
          <label class="check"><input type="checkbox" name="status" value=${status}
            defaultChecked=${statuses.includes(status)} /> ${status.toLowerCase()}</label>`)}
      </fieldset>
      <label>Job types (comma-separated)
        <input name="type" list="job-types" defaultValue=${params.get('type') ?? ''}
               autocomplete="off" />
        <datalist id="job-types">${types.map((type) => html`<option value=${type} />`)}</datalist>
      </label>
      ${TEXT_FILTERS.map(([name, , label]) => html`
        <label>${label} <input name=${name} defaultValue=${params.get(name) ?? ''} autocomplete="off" /></label>`)}
      <label>In a batch
        <select name="hasBatch">
          ${options([['', 'either'], ['yes', 'yes'], ['no', 'no']], params.get('hasBatch') ?? '')}
        </select></label>
      <label>Priority at least
        <input name="minPriority" type="number" class="narrow" step="1"
               defaultValue=${params.get('minPriority') ?? ''} /></label>
      <label>Priority at most
        <input name="maxPriority" type="number" class="narrow" step="1"
               defaultValue=${params.get('maxPriority') ?? ''} /></label>
      ${RANGES.map(([name, label]) => range(name, label))}
      <${OrderFields} orders=${ORDERS} order=${order} />
      <label>Per page
        <select name="size">
          ${options([10, 25, 50, 100].map((size) => [String(size), size]), String(pageSize(route)))}
        </select></label>
      <span class="filter-buttons">
        <button type="submit" class="button primary">Apply</button>
        <a class="button ghost" href=${href('jobs')} onClick=${resetForm}>Reset</a>
      </span>
    </form>`;
}

export default function Jobs({ route }) {
  useTitle('Jobs');
  const params = route.params;
  const filter = filterFrom(params);
  const order = orderFrom(params);
  const size = pageSize(route);
  const byDefault = order.field === 'CREATED' && order.direction === 'DESC';
  const jobs = useQuery(JOBS, {
    filter, ...pageOf(params, size),
    ...(!byDefault && { orderBy: { field: order.field, direction: order.direction } }),
  });
  const connection = jobs.data?.jobs;
  const rows = connection ? connection.edges.map((edge) => edge.node) : [];
  const firstPage = !params.get('after') && !params.get('before');
  const { stale, flashing } = useLiveJobs({
    filter, rows, fetchedAt: jobs.fetchedAt, refetch: jobs.refetch,
    interval: refreshInterval(jobs, 1500),
    newestPage: firstPage,
    replace: (job) => jobs.update((data) => ({ jobs: replaceInConnection(data.jobs, job) })),
  });
  const types = [...new Set(rows.map((job) => job.jobType))].sort();
  const labels = order.field === 'CREATED'
    ? (order.direction === 'DESC' ? ['Newer', 'Older', 'Newest'] : ['Older', 'Newer', 'Oldest'])
    : ['Previous', 'Next', 'First'];

  return html`
    <${PageHeader} title="Jobs" />
    <${StatusTabs} route=${route} />
    <${Filters} route=${route} types=${types} key=${params.toString()} />
    ${jobs.error && html`<${ErrorNotice} error=${jobs.error} title="The jobs could not be listed" />`}
    ${stale && html`
      <p class="notice info" role="status">Jobs changed since this page was loaded:${' '}
        <a href=${withParams(route, { after: '', before: '' })}>show the first page</a> or${' '}
        <button type="button" class="link" onClick=${jobs.refetch}>reload this page</button>.</p>`}
    ${!connection ? (!jobs.error && html`<${Loading} />`) : html`
      <section class="card flush" aria-label="Job list" aria-busy=${jobs.loading ? 'true' : 'false'}>
        <${JobTable} jobs=${rows} caption="Jobs" highlight=${flashing} />
        <${Pager} route=${route} pageInfo=${connection.pageInfo} shown=${rows.length}
                  total=${connection.totalCount} noun="jobs" labels=${labels} />
      </section>`}`;
}
