// A job's history for its admins (the API answers `history: null` to anyone else, and the
// section is then not shown): who changed what and when, newest first, older entries paged
// from the server, new ones arriving live from `jobHistory` (resumed after a reconnect from
// the newest entry seen).

import { useRef, useState } from 'preact/hooks';
import { request } from '../api.js';
import { ErrorNotice, Loading, RelativeTime, Section, StatusBadge } from '../components.js';
import { useQuery, useSubscription } from '../hooks.js';
import { html } from '../html.js';

const ENTRY = 'id at by kind status changes cursor';
const HISTORY = `query JobHistory($jobId: ID!, $after: String) {
  job(jobId: $jobId) { jobId history(first: 20, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { ${ENTRY} } } } } }`;
const LIVE = `subscription JobHistoryLive($jobId: ID!, $after: String, $fromStart: Boolean!) {
  jobHistory(jobId: $jobId, after: $after, fromStart: $fromStart) { ${ENTRY} } }`;
const KIND_NAMES = {
  CANCEL_REQUESTED: 'cancel requested', ACCESS_CHANGED: 'access changed',
  PRIORITY_CHANGED: 'priority changed',
};
const SHOWN_CHANGES = 6;

const kindName = (kind) => KIND_NAMES[kind] ?? kind.toLowerCase();

function short(value) {
  const text = value === null ? 'removed' : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function Changes({ changes }) {
  const fields = Object.entries(changes ?? {});
  if (!fields.length) return html`<span class="muted">–</span>`;
  return html`
    <ul class="changes">
      ${fields.slice(0, SHOWN_CHANGES).map(([field, value]) => html`
        <li><code>${field}</code> ${short(value)}</li>`)}
      ${fields.length > SHOWN_CHANGES && html`<li class="muted">and ${fields.length - SHOWN_CHANGES} more</li>`}
    </ul>`;
}

export function JobHistory({ jobId }) {
  const query = useQuery(HISTORY, { jobId });
  const [live, setLive] = useState([]);  // entries heard since the query, newest first
  const [older, setOlder] = useState({ entries: [], pageInfo: null, loading: false, error: null });
  const history = query.data?.job?.history;
  const first = history ? history.edges.map((edge) => edge.node) : [];
  const newest = useRef(null);
  newest.current = live[0]?.cursor ?? first[0]?.cursor ?? null;

  // with none shown yet (a job just created: its entries come shortly after its changes),
  // every entry from the start: one recorded between the query and the subscription was
  // never shown (`after: null` follows only those recorded from then on)
  useSubscription(LIVE, () => ({
    jobId, after: newest.current, fromStart: newest.current === null,
  }), {
    next: ({ jobHistory: entry }) => setLive((old) => (
      old.some((seen) => seen.id === entry.id) || first.some((seen) => seen.id === entry.id)
        ? old : [entry, ...old])),
    resync: () => query.refetch(),
  }, { enabled: Boolean(history), key: `${jobId}:${query.fetchedAt ?? ''}` });

  if (query.error) return html`<${ErrorNotice} error=${query.error} title="The history could not be shown" />`;
  if (!history) return query.loading && !query.data ? html`<${Loading} />` : null;

  const pageInfo = older.pageInfo ?? history.pageInfo;
  const loadOlder = async () => {
    setOlder((old) => ({ ...old, loading: true, error: null }));
    try {
      const data = await request(HISTORY, { jobId, after: pageInfo.endCursor });
      const page = data.job.history;
      setOlder((old) => ({ entries: [...old.entries, ...page.edges.map((edge) => edge.node)],
                           pageInfo: page.pageInfo, loading: false, error: null }));
    } catch (error) {
      setOlder((old) => ({ ...old, loading: false, error }));
    }
  };
  // a refetch may hold entries heard live meanwhile: each entry once
  const seen = new Set();
  const entries = [...live, ...first, ...older.entries].filter((entry) => (
    !seen.has(entry.id) && seen.add(entry.id)));
  const heard = live.filter((entry) => !first.some((known) => known.id === entry.id)).length;
  return html`
    <${Section} title="History" id="history">
      <div class="table-wrap">
        <table class="history">
          <caption class="visually-hidden">Changes of this job, newest first</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Who</th>
            <th scope="col">What</th><th scope="col">Status</th><th scope="col">Changed</th></tr></thead>
          <tbody>
            ${entries.map((entry) => html`
              <tr key=${entry.id} data-kind=${entry.kind}>
                <td><${RelativeTime} value=${entry.at} /></td>
                <td>${entry.by}</td>
                <th scope="row">${kindName(entry.kind)}</th>
                <td>${entry.status ? html`<${StatusBadge} status=${entry.status} />` : html`<span class="muted">–</span>`}</td>
                <td><${Changes} changes=${entry.changes} /></td>
              </tr>`)}
          </tbody>
        </table>
      </div>
      ${older.error && html`<${ErrorNotice} error=${older.error} title="Older entries could not be loaded" />`}
      <p class="muted small">${entries.length} of ${history.totalCount + heard} entries shown
        ${pageInfo.hasNextPage && html` · <button type="button" class="link" onClick=${loadOlder}
          disabled=${older.loading}>${older.loading ? 'Loading…' : 'Show older'}</button>`}</p>
    <//>`;
}
