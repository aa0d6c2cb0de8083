// The one GraphQL client of the dashboard: queries and mutations over HTTP (fetch),
// subscriptions over one WebSocket (the vendored graphql-ws client), both to the page's
// own origin. The socket reconnects on its own after the server restarts; pages listen to
// `onReconnect` to query again what they may have missed meanwhile.

import { createClient } from 'graphql-ws';
import { authHeaders, onSignInChange } from './auth.js';

export const endpoint = new URL('../graphql', document.baseURI).href;
const socketUrl = endpoint.replace(/^http/, 'ws');

/** A GraphQL error answer: every error's message, and the codes the API gave them. */
export class ApiError extends Error {
  constructor(errors) {
    const list = Array.isArray(errors) && errors.length ? errors : [{ message: String(errors) }];
    super(list.map((error) => error.message).join('; '));
    this.errors = list;
    this.code = list.map((error) => error.extensions?.code).find(Boolean) ?? null;
  }
}

function asApiError(error) {
  if (error instanceof ApiError) return error;
  if (Array.isArray(error)) return new ApiError(error);  // graphql-ws: the server's errors
  if (error && typeof error.code === 'number' && 'reason' in error) {  // a close event
    const reason = error.reason || 'the connection closed';
    return new ApiError([{ message: `${reason} (WebSocket ${error.code})`,
                           extensions: { code: closeCodes[error.code] ?? null } }]);
  }
  return new ApiError([{ message: error?.message || 'the live connection failed' }]);
}

// what the server's close codes mean (README, "Subscriptions")
const closeCodes = { 4401: 'UNAUTHENTICATED', 4403: 'FORBIDDEN', 4400: 'BAD_REQUEST' };

/** Run a query or mutation; its data, or an ApiError (with the API's error codes).
 * `as`: another sign-in than the current one (to check it before keeping it). */
export async function request(query, variables = {}, { as } = {}) {
  let response;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json',
                 Accept: 'application/graphql-response+json, application/json',
                 ...(as === undefined ? authHeaders() : authHeaders(as)) },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError([{ message: 'the server cannot be reached' }]);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError([{ message: `the server answered HTTP ${response.status}` }]);
  }
  if (body.errors?.length) throw new ApiError(body.errors);
  return body.data;
}

// -- the live connection --------------------------------------------------------------

let client = null;
let active = 0;  // subscriptions open now
let state = 'idle';  // idle | connecting | live | reconnecting
const stateListeners = new Set();
const reconnectListeners = new Set();
const resumable = new Set();

function setState(next) {
  if (next === state) return;
  state = next;
  for (const listener of [...stateListeners]) listener(state);
}

/** The live connection's state, and a way to hear it change. */
export function connectionState() {
  return state;
}
export function onConnectionState(listener) {
  stateListeners.add(listener);
  return () => stateListeners.delete(listener);
}

/** Called after the socket came back from an outage: query again what may have changed. */
export function onReconnect(listener) {
  reconnectListeners.add(listener);
  return () => reconnectListeners.delete(listener);
}

function retryWait(retries) {
  // quick at first (a restart takes seconds), then every few seconds, with jitter
  const wait = Math.min(500 * 2 ** retries, 5000) + Math.random() * 500;
  return new Promise((resolve) => setTimeout(resolve, wait));
}

/** A close the client does not retry: the server refused us (4400-4498), e.g. 4401 when
 * the token expired; graphql-ws hands it to every subscription as its error. */
function fatal(event) {
  const code = event?.code;
  return typeof code === 'number' && code >= 4400 && code < 4499;
}

function liveClient() {
  if (client) return client;
  client = createClient({
    url: socketUrl,
    connectionParams: () => authHeaders(),
    lazy: true,
    lazyCloseTimeout: 5000,  // page to page, the socket stays open
    keepAlive: 20000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait,
    on: {
      connecting: (isRetry) => setState(isRetry ? 'reconnecting' : 'connecting'),
      connected: (_socket, _payload, wasRetry) => {
        setState('live');
        if (wasRetry) for (const listener of [...reconnectListeners]) listener();
      },
      closed: (event) => {
        setState(active > 0 && !fatal(event) ? 'reconnecting' : 'idle');
        // subscriptions that resume from a position start again with their new one
        if (!fatal(event)) for (const restart of [...resumable]) restart();
      },
    },
  });
  return client;
}

onSignInChange(() => {
  // another caller: a new socket, whose connection-init carries the new credentials
  const old = client;
  client = null;
  old?.dispose();
  setState('idle');
});

/**
 * Subscribe; `sink.next(data)` gets each event's data, `sink.error(ApiError)` the end by
 * an error. `variables` may be a function: it is called again after every reconnect, so
 * a subscription resumes where it was (jobLogs' `after`). A subscriber the server dropped
 * for lagging behind (SUBSCRIPTION_LAGGING) subscribes again, after `sink.resync()` (what
 * it missed must be queried again). Returns the unsubscribe function.
 */
export function subscribe(query, variables, sink) {
  let run = null;  // the current graphql-ws subscription: {dispose, over}
  let stopped = false;
  const start = () => {
    const values = typeof variables === 'function' ? variables() : variables;
    const current = { over: false, dispose: null };
    const live = () => !stopped && !current.over && run === current;
    current.dispose = liveClient().subscribe({ query, variables: values }, {
      next: (result) => {
        if (!live()) return;
        if (result.errors?.length) fail(new ApiError(result.errors));
        else sink.next(result.data);
      },
      error: (error) => {
        if (live()) fail(asApiError(error));
      },
      complete: () => {
        if (live()) sink.complete?.();
      },
    });
    run = current;
  };
  const restart = () => {
    // after graphql-ws has handled the close itself: a new run from the new position
    if (run) {
      run.over = true;
      run.dispose();
    }
    setTimeout(() => { if (!stopped) start(); }, 0);
  };
  const fail = (error) => {
    if (error.code === 'SUBSCRIPTION_LAGGING') {
      sink.resync?.();
      restart();
    } else {
      sink.error?.(error);
    }
  };
  active += 1;
  start();
  if (typeof variables === 'function') resumable.add(restart);
  return () => {
    if (stopped) return;
    stopped = true;
    active -= 1;
    resumable.delete(restart);
    run?.dispose();
  };
}
