// Schedules: their cron, next and last fire, and the type of job each creates; listed
// again when the next fire time has passed.

import { useEffect } from 'preact/hooks';
import {
  ErrorNotice, Loading, PageHeader, Pager, RelativeTime, pageArguments, pageSize,
} from '../components.js';
import { useQuery, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href, withParams } from '../router.js';

const SCHEDULES = `query Schedules($filter: ScheduleFilterInput, $first: Int, $after: String,
                              $last: Int, $before: String) {
  schedules(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { scheduleId name cron timezone paused nextFireAt lastFireAt skippedFires
                   misfirePolicy owner jobTemplate { jobType } } }
  }
}`;

/** Query again just after the earliest of these fire times (a fire changes the list). */
export function useRefetchAfter(times, refetch) {
  const next = times.filter(Boolean).map((time) => new Date(time).getTime())
    .filter((time) => !Number.isNaN(time)).sort((a, b) => a - b)[0];
  useEffect(() => {
    if (next === undefined) return undefined;
    const wait = Math.min(Math.max(next - Date.now() + 1500, 2000), 2 ** 31 - 1);
    const timer = setTimeout(refetch, wait);
    return () => clearTimeout(timer);
  }, [next, refetch]);
}

export function Cron({ schedule }) {
  return html`<code class="cron">${schedule.cron}</code> <span class="muted small">${schedule.timezone}</span>`;
}

export default function Schedules({ route }) {
  useTitle('Schedules');
  const paused = route.params.get('paused');
  const filter = paused === 'true' || paused === 'false' ? { paused: paused === 'true' } : {};
  const query = useQuery(SCHEDULES, { filter, ...pageArguments(route, pageSize(route)) });
  const connection = query.data?.schedules;
  useRefetchAfter(connection ? connection.edges.map((edge) => edge.node.nextFireAt) : [],
                  query.refetch);
  const current = paused ?? '';
  return html`
    <${PageHeader} title="Schedules" />
    <nav class="tabs" aria-label="Paused">
      ${[['', 'All'], ['false', 'running'], ['true', 'paused']].map(([value, label]) => html`
        <a href=${withParams(route, { paused: value, after: '', before: '' })}
           aria-current=${current === value ? 'page' : undefined}>${label}</a>`)}
    </nav>
    ${query.error && html`<${ErrorNotice} error=${query.error} title="The schedules could not be listed" />`}
    ${!connection ? (!query.error && html`<${Loading} />`) : html`
      <section class="card flush" aria-label="Schedule list">
        ${connection.edges.length === 0 ? html`<p class="empty">No schedules.</p>` : html`
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Schedules</caption>
              <thead><tr>
                <th scope="col">Schedule</th><th scope="col">Cron</th><th scope="col">Creates</th>
                <th scope="col">Next fire</th><th scope="col">Last fire</th><th scope="col">Owner</th>
              </tr></thead>
              <tbody>
                ${connection.edges.map(({ node: schedule }) => html`
                  <tr key=${schedule.scheduleId}>
                    <th scope="row"><a href=${href(`schedules/${schedule.scheduleId}`)}>${schedule.name}</a>
                      ${schedule.paused && html` <span class="tag">paused</span>`}</th>
                    <td><${Cron} schedule=${schedule} /></td>
                    <td>${schedule.jobTemplate.jobType}</td>
                    <td>${schedule.paused ? html`<span class="muted">paused</span>`
                      : html`<${RelativeTime} value=${schedule.nextFireAt} />`}</td>
                    <td><${RelativeTime} value=${schedule.lastFireAt} /></td>
                    <td>${schedule.owner}</td>
                  </tr>`)}
              </tbody>
            </table>
          </div>`}
        <${Pager} route=${route} pageInfo=${connection.pageInfo} shown=${connection.edges.length}
                  total=${connection.totalCount} noun="schedules" />
      </section>`}`;
}
