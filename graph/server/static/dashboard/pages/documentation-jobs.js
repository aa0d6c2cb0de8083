// Documentation jobs: by statuses and repositories, in the orders the API offers (created,
// updated, started, ended; either way), paged from the server, everything in the URL.

import {
  ErrorNotice, Loading, OrderFields, PageHeader, Pager, RelativeTime, StatusBadge, formatNumber,
  listOrder, pageArguments, pageSize, resetForm,
} from '../components.js';
import { useQuery, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href, navigate, withParams } from '../router.js';

export const DOCUMENTATION_STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED'];

const ORDERS = [['created', 'CREATED', 'Created'], ['updated', 'UPDATED', 'Updated'],
                ['started', 'STARTED', 'Started'], ['ended', 'ENDED', 'Ended']];

const list = (value) => (value ? value.split(',').map((item) => item.trim()).filter(Boolean) : []);

/** The API's filter from the URL: `status=RUNNING,FAILED`, `repository=a,b`. */
export function documentationFilterFrom(params) {
  const statuses = list(params.get('status')).filter((s) => DOCUMENTATION_STATUSES.includes(s));
  const repositories = list(params.get('repository'));
  return {
    ...(statuses.length === 1 && { status: statuses[0] }),
    ...(statuses.length > 1 && { statuses }),
    ...(repositories.length === 1 && { repositoryName: repositories[0] }),
    ...(repositories.length > 1 && { repositoryNames: repositories }),
  };
}

const orderFrom = (params) => listOrder(params, ORDERS);

const DOCUMENTATION_JOBS = `query DocumentationJobs($filter: DocumentationJobFilterInput,
    $first: Int, $after: String, $last: Int, $before: String,
    $orderBy: DocumentationJobOrderInput) {
  documentationJobs(filter: $filter, first: $first, after: $after, last: $last,
                    before: $before, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { jobId repositoryName branchName status createdAt updatedAt moduleCount
                   attempts claimedBy errorMessage
                   statistics { totalFilesAnalyzed totalTokensUsed } } }
  }
}`;

function Filters({ route }) {
  const params = route.params;
  const statuses = list(params.get('status'));
  const current = statuses.length === 1 ? statuses[0] : statuses.length ? null : '';
  const order = orderFrom(params);
  const submit = (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name) => String(form.get(name) ?? '').trim();
    navigate(href('documentation-jobs', {
      status: form.getAll('status').join(','),
      repository: list(text('repository')).join(','),
      order: text('order') === 'created' ? '' : text('order'),
      dir: text('dir') === 'asc' ? 'asc' : '',
      size: params.get('size'),
    }));
  };
  return html`
    <nav class="tabs" aria-label="Status">
      ${[['', 'All'], ...DOCUMENTATION_STATUSES.map((s) => [s, s.toLowerCase()])].map(([status, label]) => html`
        <a href=${withParams(route, { status, after: '', before: '' })}
           aria-current=${current === status ? 'page' : undefined}>${label}</a>`)}
    </nav>
    <form class="filters" onSubmit=${submit} aria-label="Filter documentation jobs"
          key=${params.toString()}>
      <fieldset class="checks">
        <legend>Statuses</legend>
        ${DOCUMENTATION_STATUSES.map((status) => html`
          <label class="check"><input type="checkbox" name="status" value=${status}
            defaultChecked=${statuses.includes(status)} /> ${status.toLowerCase()}</label>`)}
      </fieldset>
      <label>Repositories (exact names, comma-separated)
        <input name="repository" defaultValue=${params.get('repository') ?? ''} autocomplete="off" /></label>
      <${OrderFields} orders=${ORDERS} order=${order} />
      <span class="filter-buttons">
        <button type="submit" class="button primary">Apply</button>
        <a class="button ghost" href=${href('documentation-jobs')} onClick=${resetForm}>Reset</a>
      </span>
    </form>`;
}

export default function DocumentationJobs({ route }) {
  useTitle('Documentation jobs');
  const filter = documentationFilterFrom(route.params);
  const order = orderFrom(route.params);
  const byDefault = order.field === 'CREATED' && order.direction === 'DESC';
  const query = useQuery(DOCUMENTATION_JOBS, {
    filter, ...pageArguments(route, pageSize(route)),
    ...(!byDefault && { orderBy: { field: order.field, direction: order.direction } }),
  });
  const connection = query.data?.documentationJobs;
  return html`
    <${PageHeader} title="Documentation jobs">
      <button type="button" class="button ghost" onClick=${query.refetch}>Refresh</button>
    <//>
    <${Filters} route=${route} />
    ${query.error && html`<${ErrorNotice} error=${query.error} title="The documentation jobs could not be listed" />`}
    ${!connection ? (!query.error && html`<${Loading} />`) : html`
      <section class="card flush" aria-label="Documentation job list" aria-busy=${query.loading ? 'true' : 'false'}>
        ${connection.edges.length === 0 ? html`<p class="empty">No documentation jobs.</p>` : html`
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Documentation jobs</caption>
              <thead><tr>
                <th scope="col">Repository</th><th scope="col">Status</th>
                <th scope="col">Files analyzed</th><th scope="col">Modules</th>
                <th scope="col">Tokens</th><th scope="col">Worker</th><th scope="col">Created</th>
              </tr></thead>
              <tbody>
                ${connection.edges.map(({ node: job }) => html`
                  <tr key=${job.jobId}>
                    <th scope="row"><a href=${href(`documentation-jobs/${job.jobId}`)}>${job.repositoryName}</a>
                      ${job.branchName && html` <span class="tag">${job.branchName}</span>`}</th>
                    <td><${StatusBadge} status=${job.status} /></td>
                    <td>${formatNumber(job.statistics.totalFilesAnalyzed)}</td>
                    <td>${formatNumber(job.moduleCount)}</td>
                    <td>${formatNumber(job.statistics.totalTokensUsed)}</td>
                    <td>${job.claimedBy ?? html`<span class="muted">–</span>`}</td>
                    <td><${RelativeTime} value=${job.createdAt} /></td>
                  </tr>`)}
              </tbody>
            </table>
          </div>`}
        <${Pager} route=${route} pageInfo=${connection.pageInfo} shown=${connection.edges.length}
                  total=${connection.totalCount} noun="documentation jobs"
                  labels=${byDefault ? undefined : ['Previous', 'Next', 'First']} />
      </section>`}`;
}
