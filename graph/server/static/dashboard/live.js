// Lists of jobs that follow the jobsChanged subscription: a shown row changes in place
// (status, progress), and a job that enters or leaves the list makes it be queried again
// (on the newest page; further back, the page says it changed instead of moving under
// the reader's eyes).

import { useEffect, useRef, useState } from 'preact/hooks';
import { JOB_ROW } from './components.js';
import { useSubscription, useThrottled } from './hooks.js';

const JOBS_CHANGED = `subscription LiveJobs($filter: JobSubscriptionFilter) {
  jobsChanged(filter: $filter, initial: 0) { kind jobId job { ${JOB_ROW} } } }`;
const REFRESH_MS = 1500;
const FLASH_MS = 1200;

const after = (value, bound) => !bound || (value != null
  && new Date(value).getTime() > new Date(bound).getTime());
const before = (value, bound) => !bound || (value != null
  && new Date(value).getTime() < new Date(bound).getTime());

/** Whether a job passes a list's filter (what the subscription's filter cannot say). A
 * condition on a field the event lacks counts as passed: the list is queried again. */
export function jobMatches(job, filter) {
  if (!job) return false;
  if (filter.status && job.status !== filter.status) return false;
  if (filter.statuses && !filter.statuses.includes(job.status)) return false;
  if (filter.jobType && job.jobType !== filter.jobType) return false;
  if (filter.jobTypes && !filter.jobTypes.includes(job.jobType)) return false;
  if (filter.batchId && job.batchId !== filter.batchId) return false;
  if (filter.scheduleId && job.scheduleId !== filter.scheduleId) return false;
  if (filter.owner && job.owner !== filter.owner) return false;
  if (filter.claimedBy && job.claimedBy !== filter.claimedBy) return false;
  if (filter.errorCode && job.error?.code !== filter.errorCode) return false;
  if (filter.hasBatch != null && Boolean(job.batchId) !== filter.hasBatch) return false;
  const priority = job.priority ?? 0;
  if (typeof filter.minPriority === 'number' && priority < filter.minPriority) return false;
  if (typeof filter.maxPriority === 'number' && priority > filter.maxPriority) return false;
  if (!after(job.createdAt, filter.createdAfter) || !before(job.createdAt, filter.createdBefore)) {
    return false;
  }
  if (!after(job.updatedAt, filter.updatedAfter) || !before(job.updatedAt, filter.updatedBefore)) {
    return false;
  }
  if (!('completedAt' in job)) return true;
  return after(job.completedAt, filter.finishedAfter)
    && before(job.completedAt, filter.finishedBefore);
}

/**
 * Follow the jobs of a list shown from `rows` (fetched at `fetchedAt`). `replace(job)` puts
 * a new state of a shown job in place; `refetch()` queries the list again (throttled); on
 * older pages (`newestPage` false) a change only sets the returned `stale` flag. `interval`:
 * the least time between refreshes.
 */
export function useLiveJobs({ filter, rows, fetchedAt, replace, refetch, newestPage,
                              enabled = true, interval = REFRESH_MS }) {
  const [stale, setStale] = useState(false);
  const [flashing, setFlashing] = useState(() => new Set());
  const shown = useRef(new Set());
  shown.current = new Set(rows.map((job) => job.jobId));
  const refresh = useThrottled(refetch, Math.max(REFRESH_MS, interval));
  const listChanged = () => (newestPage ? refresh() : setStale(true));
  const timers = useRef(new Map());
  useEffect(() => () => timers.current.forEach(clearTimeout), []);
  useEffect(() => setStale(false), [fetchedAt]);

  const flash = (jobId) => {
    clearTimeout(timers.current.get(jobId));
    setFlashing((old) => new Set(old).add(jobId));
    timers.current.set(jobId, setTimeout(() => {
      timers.current.delete(jobId);
      setFlashing((old) => {
        const next = new Set(old);
        next.delete(jobId);
        return next;
      });
    }, FLASH_MS));
  };

  const subscriptionFilter = {
    ...(filter.status && { status: filter.status }),
    ...(filter.jobType && { jobType: filter.jobType }),
    ...(filter.batchId && { batchId: filter.batchId }),
  };
  useSubscription(JOBS_CHANGED, { filter: subscriptionFilter }, {
    next: ({ jobsChanged: { kind, jobId, job } }) => {
      if (shown.current.has(jobId)) {
        if (kind === 'DELETED' || !jobMatches(job, filter)) listChanged();
        if (job) {
          replace(job);
          flash(jobId);
        }
      } else if (kind !== 'DELETED' && jobMatches(job, filter)) {
        listChanged();
      }
    },
    resync: () => listChanged(),
  }, { enabled });

  return { stale, flashing };
}

/** A connection with one job replaced by its newer state. */
export function replaceInConnection(connection, job) {
  return {
    ...connection,
    edges: connection.edges.map((edge) => (
      edge.node.jobId === job.jobId ? { ...edge, node: { ...edge.node, ...job } } : edge)),
  };
}
