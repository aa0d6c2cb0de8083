// Real URLs under the page's base (/ui/ by default): links are <a href>, the History API
// moves between pages without a reload, and any of these URLs reloads or opens as it is
// (the server answers every /ui/... path with the same page).

import { useEffect, useState } from 'preact/hooks';

const base = new URL(document.baseURI).pathname;  // e.g. "/ui/"
const listeners = new Set();

/** The route now: {path: "jobs/123", params: URLSearchParams}. */
export function currentRoute() {
  const path = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : '';
  return { path: path.replace(/\/+$/, ''), params: new URLSearchParams(location.search) };
}

/** The address of a page: href('jobs', {status: 'FAILED'}) -> "/ui/jobs?status=FAILED". */
export function href(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(name, value);
  }
  const search = query.toString();
  return base + path.replace(/^\/+/, '') + (search ? `?${search}` : '');
}

export function navigate(to, { replace = false } = {}) {
  if (to === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', to);
  notify();
}

function notify() {
  for (const listener of [...listeners]) listener(currentRoute());
}

addEventListener('popstate', notify);

// A click on a link to one of our pages changes the page in place; new-tab clicks
// (modifier keys, middle button) and other addresses behave as links do.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey
      || event.shiftKey || event.altKey) return;
  const link = event.target.closest?.('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(base)
      || url.pathname.startsWith(`${base}static/`)) return;
  if (url.hash && url.pathname === location.pathname && url.search === location.search) {
    return;  // a link within the page (skip to content)
  }
  event.preventDefault();
  navigate(url.pathname + url.search);
});

/** The current route, re-rendering on navigation. */
export function useRoute() {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    listeners.add(setRoute);
    return () => listeners.delete(setRoute);
  }, []);
  return route;
}

/** Replace some query parameters of the current page (filters, cursors). */
export function withParams(route, changes) {
  const params = Object.fromEntries(route.params.entries());
  return href(route.path, { ...params, ...changes });
}
