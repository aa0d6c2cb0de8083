// Who the dashboard calls the API as: a pasted bearer token, the development user header
// (only when the server trusts it), or nobody. Kept for this tab only (sessionStorage: a
// reload keeps it, closing the tab forgets it), never in localStorage.

const KEY = 'jobgraph.sign-in';
const listeners = new Set();

/** Whether the server trusts X-User-Id (JOBGRAPH_DEV_TRUST_USER_HEADER): it says so in the page. */
export const devUserHeader = document.body.dataset.devUserHeader === 'true';

function read() {
  try {
    const value = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (value?.kind === 'token' && typeof value.token === 'string') return value;
    if (value?.kind === 'user' && devUserHeader && typeof value.userId === 'string') return value;
  } catch {
    // unreadable: as if signed out
  }
  return null;
}

let current = read();

/** The current sign-in: {kind: 'token', token} | {kind: 'user', userId, roles} | null. */
export function signIn() {
  return current;
}

export function setSignIn(value) {
  current = value;
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
  for (const listener of [...listeners]) listener(value);
}

export function onSignInChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Headers for HTTP, and the same names in a WebSocket's connection-init payload. */
export function authHeaders(value = current) {
  if (value?.kind === 'token') return { Authorization: `Bearer ${value.token}` };
  if (value?.kind === 'user') {
    const headers = { 'X-User-Id': value.userId };
    if (value.roles) headers['X-User-Roles'] = value.roles;
    return headers;
  }
  return {};
}
