// The dashboard's entry point: the frame (navigation, who you are, the live connection's
// state) and the table of pages. Each page is one module under pages/; data comes from
// api.js only.

import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { connectionState, onConnectionState, request } from './api.js';
import { onSignInChange, setSignIn, signIn } from './auth.js';
import { ErrorNotice } from './components.js';
import { html } from './html.js';
import { href, useRoute } from './router.js';
import { ViewerContext } from './viewer.js';
import Batch from './pages/batch.js';
import Batches from './pages/batches.js';
import DocumentationJob from './pages/documentation-job.js';
import DocumentationJobs from './pages/documentation-jobs.js';
import Job from './pages/job.js';
import Jobs from './pages/jobs.js';
import NotFound from './pages/not-found.js';
import Overview from './pages/overview.js';
import Queues from './pages/queues.js';
import Schedule from './pages/schedule.js';
import Schedules from './pages/schedules.js';
import SignIn from './pages/sign-in.js';
import Webhook from './pages/webhook.js';
import Webhooks from './pages/webhooks.js';
import Workers from './pages/workers.js';

/** Path (below /ui/) to page; a group in the pattern is handed to the page as `id`. */
const ROUTES = [
  [/^$/, Overview],
  [/^jobs$/, Jobs],
  [/^jobs\/([^/]+)$/, Job],
  [/^batches$/, Batches],
  [/^batches\/([^/]+)$/, Batch],
  [/^documentation-jobs$/, DocumentationJobs],
  [/^documentation-jobs\/([^/]+)$/, DocumentationJob],
  [/^schedules$/, Schedules],
  [/^schedules\/([^/]+)$/, Schedule],
  [/^webhooks$/, Webhooks],
  [/^webhooks\/([^/]+)$/, Webhook],
  [/^queues$/, Queues],
  [/^workers$/, Workers],
  [/^sign-in$/, SignIn],
];

const NAV = [
  ['', 'Overview'],
  ['queues', 'Queues'],
  ['jobs', 'Jobs'],
  ['batches', 'Batches'],
  ['documentation-jobs', 'Documentation jobs'],
  ['schedules', 'Schedules'],
  ['webhooks', 'Webhooks'],
];

const VIEWER = 'query Viewer { viewer { userId roles anonymous } }';

function match(path) {
  for (const [pattern, page] of ROUTES) {
    const found = pattern.exec(path);
    if (found) return { page, id: found[1] && decodeURIComponent(found[1]) };
  }
  return { page: NotFound, id: null };
}

function useSignIn() {
  const [value, setValue] = useState(signIn);
  const [version, setVersion] = useState(0);
  useEffect(() => onSignInChange((next) => {
    setValue(next);
    setVersion((n) => n + 1);
  }), []);
  return [value, version];
}

function useViewerQuery(version) {
  const [state, setState] = useState({ viewer: null, error: null });
  useEffect(() => {
    let current = true;
    request(VIEWER).then((data) => current && setState({ viewer: data.viewer, error: null }),
                         (error) => current && setState({ viewer: null, error }));
    return () => { current = false; };
  }, [version]);
  return state;
}

const STATES = {
  idle: null,
  connecting: ['connecting', 'Connecting…'],
  live: ['live', 'Live'],
  reconnecting: ['reconnecting', 'Reconnecting…'],
};

function ConnectionIndicator() {
  const [state, setState] = useState(connectionState);
  useEffect(() => onConnectionState(setState), []);
  const shown = STATES[state];
  return html`
    <span class="connection" role="status" aria-live="polite">
      ${shown && html`<span class=${`dot ${shown[0]}`} aria-hidden="true"></span>${shown[1]}`}
    </span>`;
}

function ViewerBox({ state }) {
  const { viewer, error } = state;
  if (error) {
    return html`
      <div class="viewer">
        <span class="viewer-error"><code>${error.code ?? 'ERROR'}</code> not signed in</span>
        <a class="button small" href=${href('sign-in')}>Sign in again</a>
      </div>`;
  }
  if (!viewer) return html`<div class="viewer"></div>`;
  if (viewer.anonymous) {
    return html`
      <div class="viewer">
        <span class="muted">Not signed in</span>
        <a class="button small primary" href=${href('sign-in')}>Sign in</a>
      </div>`;
  }
  return html`
    <div class="viewer">
      <span class="who" aria-label=${`Signed in as ${viewer.userId}`}>
        <span class="avatar" aria-hidden="true">${viewer.userId.slice(0, 1).toUpperCase()}</span>
        <strong>${viewer.userId}</strong>
        ${viewer.roles.map((role) => html`<span class="role">${role}</span>`)}
      </span>
      <button type="button" class="button small ghost" onClick=${() => setSignIn(null)}>Sign out</button>
    </div>`;
}

function Navigation({ route }) {
  const section = route.path.split('/')[0];
  return html`
    <nav class="site-nav" aria-label="Main">
      <ul>
        ${NAV.map(([path, label]) => html`
          <li><a href=${href(path)} aria-current=${section === path ? 'page' : undefined}>${label}</a></li>`)}
      </ul>
    </nav>`;
}

function App() {
  const route = useRoute();
  const [, version] = useSignIn();
  const viewerState = useViewerQuery(version);
  const { page: Page, id } = match(route.path);
  const main = useRef(null);
  const first = useRef(true);

  // after moving to another page, focus its heading: screen readers announce it, and
  // the keyboard starts from the top of the new content
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const heading = main.current?.querySelector('h1');
    (heading ?? main.current)?.focus({ preventScroll: false });
    window.scrollTo(0, 0);
  }, [route.path]);

  return html`
    <${ViewerContext.Provider} value=${viewerState}>
      <a class="skip-link" href="#main">Skip to content</a>
      <header class="site-header">
        <a class="brand" href=${href('')}>
          <img src="static/favicon.svg" alt="" width="24" height="24" />
          <span>jobgraph</span>
        </a>
        <${Navigation} route=${route} />
        <div class="header-end">
          <${ConnectionIndicator} />
          <${ViewerBox} state=${viewerState} />
        </div>
      </header>
      <main id="main" ref=${main} tabindex="-1">
        ${viewerState.error && route.path !== 'sign-in' && html`
          <${ErrorNotice} error=${viewerState.error} title="Your sign-in was not accepted" />`}
        <${Page} key=${`${version}:${route.path}`} id=${id} route=${route} />
      </main>
    <//>`;
}

render(html`<${App} />`, document.getElementById('app'));
