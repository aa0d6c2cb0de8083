// Hooks the pages share: a query that runs again after a reconnect, a subscription bound to
// a component's life, throttling for live refreshes, and a clock for relative times.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { onReconnect, request, subscribe } from './api.js';

/**
 * Run `query` with `variables` (again whenever they change, on `refetch()` and after the
 * live connection came back). `update(fn)` changes the data in place (live events);
 * `fetchedAt` changes with each answer from the server only; `took` is how long the last
 * answer took (live refreshes wait longer when the server is slow).
 */
export function useQuery(query, variables = {}, { skip = false } = {}) {
  const key = JSON.stringify(variables);
  const [state, setState] = useState({ data: null, error: null, loading: !skip, key });
  const [tick, setTick] = useState(0);
  const refetch = useCallback(() => setTick((value) => value + 1), []);
  useEffect(() => {
    if (skip) return undefined;
    let current = true;
    // another object or filter: forget the old answer; the same one again: keep showing it
    setState((old) => (old.key === key ? { ...old, loading: true }
      : { data: null, error: null, loading: true, key }));
    const started = Date.now();
    request(query, JSON.parse(key)).then(
      (data) => current && setState({ data, error: null, loading: false, key,
                                      fetchedAt: Date.now(), took: Date.now() - started }),
      (error) => current && setState((old) => ({ ...old, error, loading: false, key })));
    return () => { current = false; };
  }, [query, key, tick, skip]);
  useEffect(() => onReconnect(refetch), [refetch]);
  const update = useCallback((change) => setState((old) => (
    old.data ? { ...old, data: change(old.data) } : old)), []);
  return { ...state, refetch, update };
}

/**
 * Subscribe while the component is shown (and `enabled`); `handlers` are {next, error,
 * complete, resync}. A function for `variables` is called at every (re)start, so a stream
 * resumes where it was; `key` then says when it is another stream.
 */
export function useSubscription(query, variables, handlers, { enabled = true, key } = {}) {
  const latest = useRef(handlers);
  latest.current = handlers;
  const values = useRef(variables);
  values.current = variables;
  const identity = key ?? JSON.stringify(variables);
  useEffect(() => {
    if (!enabled) return undefined;
    const vars = typeof values.current === 'function' ? () => values.current() : values.current;
    return subscribe(query, vars, {
      next: (data) => latest.current.next?.(data),
      error: (error) => latest.current.error?.(error),
      complete: () => latest.current.complete?.(),
      resync: () => latest.current.resync?.(),
    });
  }, [query, identity, enabled]);
}

/** How long live refreshes of a query wait between runs: `base`, or three times as long
 * as the last answer took, so a busy list never keeps a slow server busy. */
export const refreshInterval = (query, base) => Math.max(base, 3 * (query.took ?? 0));

/** `fn`, called at most once per `ms` (the last call always runs): live refreshes. */
export function useThrottled(fn, ms) {
  const latest = useRef(fn);
  latest.current = fn;
  const timer = useRef(null);
  const last = useRef(0);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current) return;
    const wait = Math.max(0, last.current + ms - Date.now());
    timer.current = setTimeout(() => {
      timer.current = null;
      last.current = Date.now();
      latest.current();
    }, wait);
  }, [ms]);
}

/** The time now, re-rendering every `ms` (relative times, "waiting for 3 min"). */
export function useNow(ms = 15000) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** Set the document's title while the page is shown. */
export function useTitle(title) {
  useEffect(() => {
    document.title = title ? `${title} · jobgraph` : 'jobgraph';
  }, [title]);
}
