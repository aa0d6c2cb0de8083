// Throughput of the last hour: jobs created, completed and failed per minute (`jobStats`),
// drawn as plain SVG lines (no chart library), with the same numbers in a visually hidden
// table for screen readers. Counted again when jobs change (throttled) and every minute,
// keeping the last chart on screen while the next answer comes.

import { useCallback, useEffect, useState } from 'preact/hooks';
import { onReconnect, request } from './api.js';
import { ErrorNotice, Loading, formatDuration, formatNumber } from './components.js';
import { useThrottled } from './hooks.js';
import { html } from './html.js';

const STATS = `query Throughput($window: StatsWindowInput) {
  jobStats(window: $window) {
    since until
    throughput { start created completed failed }
    durations { count p50 p95 }
  }
}`;
export const SERIES = [
  ['created', 'Created', 'var(--bar-processing)'],
  ['completed', 'Completed', 'var(--bar-completed)'],
  ['failed', 'Failed', 'var(--bar-failed)'],
];
const HOUR_MS = 3600 * 1000;
const EVERY_MS = 60000;  // new minutes appear even when nothing changes
const LIVE_MS = 5000;  // at most this often after jobs changed
const W = 640;
const H = 180;
const PAD = { left: 36, right: 8, top: 10, bottom: 22 };

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/** The last hour's throughput, queried again on `changed()` (throttled) and every minute. */
export function useThroughput() {
  const [state, setState] = useState({ data: null, error: null, took: 0 });
  const [due, setDue] = useState(0);
  const again = useCallback(() => setDue((n) => n + 1), []);
  useEffect(() => {
    let current = true;
    const started = Date.now();
    // whole minutes: the first bucket is a full one
    const since = new Date(Math.floor((started - HOUR_MS) / 60000) * 60000 + 60000);
    request(STATS, { window: { since: since.toISOString(), bucket: 'MINUTE' } }).then(
      (data) => current && setState({ data: data.jobStats, error: null,
                                      took: Date.now() - started }),
      (error) => current && setState((old) => ({ ...old, error })));
    return () => { current = false; };
  }, [due]);
  useEffect(() => {
    const timer = setInterval(again, EVERY_MS);
    return () => clearInterval(timer);
  }, [again]);
  useEffect(() => onReconnect(again), [again]);
  const changed = useThrottled(again, Math.max(LIVE_MS, 3 * state.took));
  return { ...state, changed };
}

function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const factor of [1, 2, 2.5, 5, 10]) {
    if (factor * step >= value) return factor * step;
  }
  return 10 * step;
}

/** The chart: one line per series over the window's minutes, an axis of counts and times. */
export function ThroughputChart({ stats }) {
  const buckets = stats.throughput;
  const totals = Object.fromEntries(SERIES.map(([key]) => (
    [key, buckets.reduce((sum, bucket) => sum + bucket[key], 0)])));
  const summary = `Last hour, per minute: ${SERIES.map(([key, label]) => (
    `${formatNumber(totals[key])} ${label.toLowerCase()}`)).join(', ')}.`;
  const top = niceMax(Math.max(0, ...buckets.flatMap((b) => SERIES.map(([key]) => b[key]))));
  const width = W - PAD.left - PAD.right;
  const height = H - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (buckets.length > 1 ? (i * width) / (buckets.length - 1) : 0);
  const y = (value) => PAD.top + height - (value / top) * height;
  const ticks = [0, top / 2, top];
  const timeTicks = buckets.map((bucket, i) => [bucket, i])
    .filter(([bucket]) => new Date(bucket.start).getMinutes() % 15 === 0);
  const { durations } = stats;
  return html`
    <figure class="chart">
      <svg viewBox=${`0 0 ${W} ${H}`} role="img" aria-labelledby="throughput-title throughput-desc" class="chart-svg">
        <title id="throughput-title">Throughput over the last hour</title>
        <desc id="throughput-desc">${summary}</desc>
        ${ticks.map((tick) => html`
          <g class="chart-grid">
            <line x1=${PAD.left} x2=${W - PAD.right} y1=${y(tick)} y2=${y(tick)} />
            <text x=${PAD.left - 6} y=${y(tick) + 4} text-anchor="end">${formatNumber(tick)}</text>
          </g>`)}
        ${timeTicks.map(([bucket, i]) => html`
          <text class="chart-time" x=${x(i)} y=${H - 6} text-anchor="middle">
            ${clock.format(new Date(bucket.start))}</text>`)}
        ${SERIES.map(([key, , color]) => html`
          <polyline class=${`chart-line series-${key}`} fill="none" stroke=${color}
            stroke-width="2" vector-effect="non-scaling-stroke" stroke-linejoin="round"
            points=${buckets.map((bucket, i) => `${x(i).toFixed(1)},${y(bucket[key]).toFixed(1)}`).join(' ')} />`)}
      </svg>
      <figcaption>
        <ul class="legend">
          ${SERIES.map(([key, label, color]) => html`
            <li><span class="swatch" style=${{ background: color }} aria-hidden="true"></span>
              ${label} <strong data-series=${key}>${formatNumber(totals[key])}</strong></li>`)}
          ${durations.count > 0 && html`
            <li>run time p50 <strong>${formatDuration(durations.p50 * 1000)}</strong>,
              p95 <strong>${formatDuration(durations.p95 * 1000)}</strong></li>`}
        </ul>
      </figcaption>
      <table class="visually-hidden">
        <caption>Jobs per minute over the last hour</caption>
        <thead><tr><th scope="col">Minute</th>
          ${SERIES.map(([, label]) => html`<th scope="col">${label}</th>`)}</tr></thead>
        <tbody>
          ${buckets.filter((bucket) => SERIES.some(([key]) => bucket[key] > 0)).map((bucket) => html`
            <tr><th scope="row">${clock.format(new Date(bucket.start))}</th>
              ${SERIES.map(([key]) => html`<td>${bucket[key]}</td>`)}</tr>`)}
        </tbody>
      </table>
    </figure>`;
}

/** The chart, its loading state or its error. */
export function Throughput({ query }) {
  if (query.data) {
    return html`
      ${query.error && html`<${ErrorNotice} error=${query.error} title="The chart could not be updated" />`}
      <${ThroughputChart} stats=${query.data} />`;
  }
  return query.error ? html`<${ErrorNotice} error=${query.error} />` : html`<${Loading} />`;
}
