// Documentation jobs: by status and repository, paged from the server.

import {
  ErrorNotice, Loading, PageHeader, Pager, RelativeTime, StatusBadge, formatNumber,
  pageArguments, pageSize,
} from '../components.js';
import { useQuery, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href, navigate, withParams } from '../router.js';

export const DOCUMENTATION_STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED'];

const DOCUMENTATION_JOBS = `query DocumentationJobs($filter: DocumentationJobFilterInput,
    $first: Int, $after: String, $last: Int, $before: String) {
  documentationJobs(filter: $filter, first: $first, after: $after, last: $last,
                    before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { jobId repositoryName branchName status createdAt updatedAt moduleCount
                   attempts claimedBy errorMessage
                   statistics { totalFilesAnalyzed totalTokensUsed } } }
  }
}`;

function Filters({ route }) {
  const current = route.params.get('status') || '';
  const submit = (event) => {
    event.preventDefault();
    const repository = new FormData(event.currentTarget).get('repository').trim();
    navigate(withParams(route, { repository, after: '', before: '' }));
  };
  return html`
    <nav class="tabs" aria-label="Status">
      ${[['', 'All'], ...DOCUMENTATION_STATUSES.map((s) => [s, s.toLowerCase()])].map(([status, label]) => html`
        <a href=${withParams(route, { status, after: '', before: '' })}
           aria-current=${current === status ? 'page' : undefined}>${label}</a>`)}
    </nav>
    <form class="filters" onSubmit=${submit} aria-label="Filter documentation jobs"
          key=${route.params.get('repository') ?? ''}>
      <label>Repository (exact name)
        <input name="repository" value=${route.params.get('repository') ?? ''} autocomplete="off" /></label>
      <span class="filter-buttons">
        <button type="submit" class="button primary">Apply</button>
        <a class="button ghost" href=${href('documentation-jobs')}>Reset</a>
      </span>
    </form>`;
}

export default function DocumentationJobs({ route }) {
  useTitle('Documentation jobs');
  const status = route.params.get('status');
  const filter = {
    ...(DOCUMENTATION_STATUSES.includes(status) && { status }),
    ...(route.params.get('repository') && { repositoryName: route.params.get('repository') }),
  };
  const query = useQuery(DOCUMENTATION_JOBS, { filter, ...pageArguments(route, pageSize(route)) });
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
                  total=${connection.totalCount} noun="documentation jobs" />
      </section>`}`;
}
