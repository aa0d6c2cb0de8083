// Actions that take a value first (a cancel's reason, a priority, a concurrency limit): one
// labelled input and a button, busy while the mutation runs, the API's error with its code
// beneath; and readable forms of the queue-semantics values a page shows.

import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorNotice, formatDuration } from './components.js';
import { html } from './html.js';

/**
 * `run(value)` with the input's value ('' for an empty optional text; a number or null for
 * type="number"), then `onDone(result)`. `initial` fills the input (again when it changes);
 * `hideLabel`: the label is for screen readers only (a table's column names it).
 */
export function InputAction({ label, inputLabel, type = 'text', initial = '', run, onDone,
                              variant = 'secondary', min, max, placeholder, required = false,
                              className = '', hideLabel = false }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const mounted = useRef(true);
  useEffect(() => () => { mounted.current = false; }, []);
  const submit = async (event) => {
    event.preventDefault();
    const raw = new FormData(event.currentTarget).get('value').trim();
    const value = type === 'number' ? (raw === '' ? null : Number(raw)) : raw;
    setBusy(true);
    setError(null);
    try {
      const result = await run(value);
      if (mounted.current) setBusy(false);
      onDone?.(result);
    } catch (caught) {
      if (mounted.current) {
        setError(caught);
        setBusy(false);
      }
    }
  };
  return html`
    <form class=${`input-action ${className}`} onSubmit=${submit}>
      <label>${hideLabel ? html`<span class="visually-hidden">${inputLabel}</span>` : inputLabel}
        <input name="value" type=${type} key=${String(initial)} defaultValue=${initial ?? ''}
               min=${min} max=${max} step=${type === 'number' ? 1 : undefined}
               placeholder=${placeholder} required=${required} autocomplete="off" /></label>
      <button type="submit" class=${`button ${variant}`} disabled=${busy}
              aria-busy=${busy ? 'true' : 'false'}>${busy ? `${label}…` : label}</button>
      ${error && html`<${ErrorNotice} error=${error} title=${`${label} failed`} />`}
    </form>`;
}

/** What jobgraph's own error codes mean, in a few words. */
export const JOB_ERROR_NAMES = {
  CANCELLED: 'Cancelled',
  TIMED_OUT: 'Timed out',
  LEASE_EXPIRED: 'Lease expired',
};

/** "3 attempts; exponential waits from 2 s up to 5 min, jittered". */
export function describeRetryPolicy(policy) {
  if (!policy) return null;
  const attempts = `${policy.maxAttempts} attempt${policy.maxAttempts === 1 ? '' : 's'}`;
  if (policy.maxAttempts <= 1) return `${attempts}; never retried by itself`;
  const base = formatDuration(policy.baseSeconds * 1000);
  if (policy.backoff === 'FIXED') return `${attempts}; ${base} between them`;
  return `${attempts}; exponential waits from ${base} up to `
    + `${formatDuration(policy.capSeconds * 1000)}, jittered`;
}

/** Whether a PENDING job waits for its `runAt`. */
export const isDelayed = (job, now = Date.now()) => (
  job.status === 'PENDING' && job.runAt != null && new Date(job.runAt).getTime() > now);
