// One schedule: its next fire times, the jobs it created (live), and pause, resume and
// delete for those allowed.

import { request } from '../api.js';
import {
  ActionButton, Details, ErrorNotice, JOB_ROW, JobTable, JsonView, Loading, PageHeader,
  Pager, RelativeTime, Section, ShortId, formatNumber, formatTime, pageArguments, pageSize,
} from '../components.js';
import { refreshInterval, useQuery, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { replaceInConnection, useLiveJobs } from '../live.js';
import { href, navigate } from '../router.js';
import { Cron, useRefetchAfter } from './schedules.js';

const FIELDS = `scheduleId name cron timezone paused misfirePolicy catchUpLimit owner createdAt
  updatedAt nextFireAt lastFireAt skippedFires version
  jobTemplate { jobType parameters maxAttempts accessControl { visibility } }
  accessControl { visibility readAccess writeAccess adminAccess }
  viewerCanWrite viewerCanAdmin viewerCanDelete nextFireTimes(count: 5)`;
const SCHEDULE = `query Schedule($scheduleId: ID!, $first: Int, $after: String, $last: Int,
                             $before: String) {
  schedule(scheduleId: $scheduleId) {
    ${FIELDS}
    jobs(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { node { ${JOB_ROW} } }
    }
  }
}`;
const CHANGE = (name) => `mutation Change($scheduleId: ID!) {
  ${name}(scheduleId: $scheduleId) { ${FIELDS} } }`;

export default function Schedule({ id, route }) {
  const query = useQuery(SCHEDULE, { scheduleId: id, ...pageArguments(route, pageSize(route, 10)) });
  const schedule = query.data?.schedule;
  useTitle(schedule ? `Schedule ${schedule.name}` : 'Schedule');
  useRefetchAfter(schedule && !schedule.paused ? [schedule.nextFireAt] : [], query.refetch);
  const merge = (fields) => query.update((data) => ({ schedule: { ...data.schedule, ...fields } }));
  const rows = schedule ? schedule.jobs.edges.map((edge) => edge.node) : [];
  const { flashing } = useLiveJobs({
    filter: { scheduleId: id }, rows, fetchedAt: query.fetchedAt, refetch: query.refetch,
    interval: refreshInterval(query, 1500),
    newestPage: !route.params.get('after') && !route.params.get('before'),
    replace: (job) => query.update((data) => ({
      schedule: { ...data.schedule, jobs: replaceInConnection(data.schedule.jobs, job) } })),
    enabled: Boolean(schedule),
  });

  const actions = schedule && [
    schedule.viewerCanWrite && (schedule.paused
      ? html`<${ActionButton} label="Resume" variant="primary"
          run=${() => request(CHANGE('resumeSchedule'), { scheduleId: id })}
          onDone=${(data) => merge(data.resumeSchedule)} />`
      : html`<${ActionButton} label="Pause"
          run=${() => request(CHANGE('pauseSchedule'), { scheduleId: id })}
          onDone=${(data) => merge(data.pauseSchedule)} />`),
    schedule.viewerCanDelete && html`<${ActionButton} label="Delete" variant="danger"
      confirm=${`Delete schedule ${schedule.name}? The jobs it created stay.`}
      run=${() => request(CHANGE('deleteSchedule').replace(FIELDS, 'scheduleId'), { scheduleId: id })}
      onDone=${() => navigate(href('schedules'))} />`,
  ].filter(Boolean);

  return html`
    <${PageHeader} title=${schedule ? schedule.name : html`Schedule <${ShortId} value=${id} />`}
                   kicker=${html`<a href=${href('schedules')}>Schedules</a>`}>
      ${actions?.length ? actions : null}
    <//>
    ${query.error && html`<${ErrorNotice} error=${query.error} title="The schedule could not be shown" />`}
    ${!schedule ? (!query.error && html`<${Loading} />`) : html`
      <div class="grid two">
        <${Section} title="When" id="when">
          <p class="state-line"><${Cron} schedule=${schedule} />
            ${schedule.paused ? html`<span class="tag">paused</span>` : html`<span class="tag ok">running</span>`}</p>
          ${schedule.paused ? html`<p class="muted">Paused: it creates no jobs until resumed.</p>` : html`
            <h3>Next fire times</h3>
            <ol class="fire-times">
              ${schedule.nextFireTimes.map((time) => html`
                <li><time datetime=${time}>${formatTime(time)}</time>
                  <span class="muted small"> (<${RelativeTime} value=${time} />)</span></li>`)}
            </ol>`}
          <${Details} rows=${[
            ['Last fire', html`<${RelativeTime} value=${schedule.lastFireAt} />`],
            ['Misfires', `${schedule.misfirePolicy.toLowerCase().replace('_', ' ')}${
              schedule.misfirePolicy === 'CATCH_UP' ? ` (at most ${schedule.catchUpLimit})` : ''}`],
            ['Skipped fires', formatNumber(schedule.skippedFires)],
            ['Owner', schedule.owner],
            ['Created', html`<${RelativeTime} value=${schedule.createdAt} />`],
            ['Visibility', schedule.accessControl.visibility.toLowerCase()],
          ]} />
        <//>
        <${Section} title="Creates" id="template">
          <${Details} rows=${[
            ['Job type', schedule.jobTemplate.jobType],
            ['Max attempts', schedule.jobTemplate.maxAttempts ?? 'server default'],
            ['Job visibility', schedule.jobTemplate.accessControl.visibility.toLowerCase()],
          ]} />
          <h3>Parameters</h3>
          <${JsonView} value=${schedule.jobTemplate.parameters} label="Template parameters" />
        <//>
      </div>
      <${Section} title=${`Jobs created (${formatNumber(schedule.jobs.totalCount)})`} id="jobs">
        <${JobTable} jobs=${rows} caption=${`Jobs created by schedule ${schedule.name}`} highlight=${flashing} />
        <${Pager} route=${route} pageInfo=${schedule.jobs.pageInfo} shown=${rows.length}
                  total=${schedule.jobs.totalCount} noun="jobs" />
      <//>`}`;
}
