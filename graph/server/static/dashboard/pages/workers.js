// Workers seen in the last five minutes (the `workers` query): the job types they take,
// when they were last seen, the jobs they hold. Live as the queues page is: on job
// changes (throttled) and every 15 s (a heartbeat changes no job's state).

import {
  Empty, Loading, PageHeader, RelativeTime, Section, ShortId, formatNumber,
} from '../components.js';
import { useQuery, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href } from '../router.js';
import { QueuesError, useLiveQueues } from './queues.js';

const WORKERS = `query Workers($jobType: String) {
  workers(jobType: $jobType) { workerId jobTypes lastSeen jobCount
    jobs { jobId jobType status } } }`;

export default function Workers({ route }) {
  useTitle('Workers');
  const jobType = route.params.get('type') || null;
  const query = useQuery(WORKERS, { jobType });
  useLiveQueues(query);
  const workers = query.data?.workers;
  return html`
    <${PageHeader} title="Workers" kicker=${html`<a href=${href('queues')}>Queues</a>`}>
      ${jobType && html`<a class="button ghost" href=${href('workers')}>All job types</a>`}
    <//>
    ${query.error && html`<${QueuesError} error=${query.error} />`}
    ${!workers ? (!query.error && html`<${Loading} />`) : html`
      <${Section} title=${jobType ? `Taking ${jobType}` : 'Seen in the last 5 minutes'} id="workers">
        ${workers.length === 0 ? html`<${Empty}>No worker seen lately.<//>` : html`
          <div class="table-wrap">
            <table class="workers">
              <caption class="visually-hidden">Workers</caption>
              <thead>
                <tr><th scope="col">Worker</th><th scope="col">Job types</th>
                  <th scope="col">Last seen</th><th scope="col">Jobs held</th></tr>
              </thead>
              <tbody>
                ${workers.map((worker) => html`
                  <tr key=${worker.workerId}>
                    <th scope="row"><code>${worker.workerId}</code></th>
                    <td>${worker.jobTypes
                      ? worker.jobTypes.map((type) => html`<a class="tag" href=${href('jobs', { type })}>${type}</a> `)
                      : html`<span class="muted">any</span>`}</td>
                    <td><${RelativeTime} value=${worker.lastSeen} /></td>
                    <td>
                      <span class="job-links">
                        ${worker.jobs.map((job) => html`
                          <a href=${href(`jobs/${job.jobId}`)}><${ShortId} value=${job.jobId} /></a>
                          <span class="muted small">${job.jobType}</span>`)}
                        ${worker.jobCount === 0 && html`<span class="muted">none</span>`}
                      </span>
                      ${worker.jobCount > worker.jobs.length && html`
                        <div class="muted small">${formatNumber(worker.jobCount - worker.jobs.length)}${' '}
                          more you may not read</div>`}
                    </td>
                  </tr>`)}
              </tbody>
            </table>
          </div>`}
      <//>`}`;
}
