// Batches: each with its jobs by status as a bar, paged from the server, counted again
// when jobs change (on the newest page).

import {
  CountsBar, ErrorNotice, Loading, PageHeader, Pager, RelativeTime, StatusBadge, pageArguments,
  pageSize,
} from '../components.js';
import {
  refreshInterval, useQuery, useSubscription, useThrottled, useTitle,
} from '../hooks.js';
import { html } from '../html.js';
import { href, withParams } from '../router.js';

const BATCHES = `query Batches($filter: BatchFilterInput, $first: Int, $after: String, $last: Int,
                            $before: String) {
  batches(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { batchId batchName status active createdAt owner
                   counts { pending processing completed failed cancelled total } } }
  }
}`;
const CHANGES = 'subscription BatchJobsChanged { jobsChanged(initial: 0) { kind jobId } }';

function ActiveTabs({ route }) {
  const current = route.params.get('active') ?? '';
  return html`
    <nav class="tabs" aria-label="Active">
      ${[['', 'All'], ['true', 'active'], ['false', 'inactive']].map(([value, label]) => html`
        <a href=${withParams(route, { active: value, after: '', before: '' })}
           aria-current=${current === value ? 'page' : undefined}>${label}</a>`)}
    </nav>`;
}

export default function Batches({ route }) {
  useTitle('Batches');
  const active = route.params.get('active');
  const filter = active === 'true' || active === 'false' ? { active: active === 'true' } : {};
  const batches = useQuery(BATCHES, { filter, ...pageArguments(route, pageSize(route)) });
  const firstPage = !route.params.get('after') && !route.params.get('before');
  const refresh = useThrottled(batches.refetch, refreshInterval(batches, 3000));
  useSubscription(CHANGES, {}, { next: refresh, resync: refresh }, { enabled: firstPage });
  const connection = batches.data?.batches;

  return html`
    <${PageHeader} title="Batches" />
    <${ActiveTabs} route=${route} />
    ${batches.error && html`<${ErrorNotice} error=${batches.error} title="The batches could not be listed" />`}
    ${!connection ? (!batches.error && html`<${Loading} />`) : html`
      <section class="card flush" aria-label="Batch list">
        ${connection.edges.length === 0 ? html`<p class="empty">No batches.</p>` : html`
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Batches</caption>
              <thead><tr>
                <th scope="col">Batch</th><th scope="col">Status</th>
                <th scope="col" class="wide">Jobs</th><th scope="col">Owner</th>
                <th scope="col">Created</th></tr></thead>
              <tbody>
                ${connection.edges.map(({ node: batch }) => html`
                  <tr key=${batch.batchId}>
                    <th scope="row"><a href=${href(`batches/${batch.batchId}`)}>${batch.batchName}</a>
                      ${!batch.active && html` <span class="tag">inactive</span>`}</th>
                    <td><${StatusBadge} status=${batch.status} /></td>
                    <td class="wide"><${CountsBar} counts=${batch.counts} compact=${true} />
                      <span class="small muted">${batch.counts.completed + batch.counts.failed} of ${batch.counts.total} finished</span></td>
                    <td>${batch.owner}</td>
                    <td><${RelativeTime} value=${batch.createdAt} /></td>
                  </tr>`)}
              </tbody>
            </table>
          </div>`}
        <${Pager} route=${route} pageInfo=${connection.pageInfo} shown=${connection.edges.length}
                  total=${connection.totalCount} noun="batches" />
      </section>`}`;
}
