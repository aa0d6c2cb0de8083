// Sign in as the API knows callers: a bearer token (JWT), or, where the server trusts it
// (JOBGRAPH_DEV_TRUST_USER_HEADER), a user id sent as X-User-Id. Kept for this tab only.

import { useState } from 'preact/hooks';
import { ApiError, request } from '../api.js';
import { devUserHeader, setSignIn } from '../auth.js';
import { ErrorNotice, PageHeader, Section } from '../components.js';
import { useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href, navigate } from '../router.js';

const VIEWER = 'query Viewer { viewer { userId anonymous } }';

/** Try a sign-in before keeping it: a token the server refuses is said so at once. */
async function check(candidate) {
  const { viewer } = await request(VIEWER, {}, { as: candidate });
  if (viewer.anonymous) throw new ApiError([{ message: 'the server did not recognise you' }]);
  setSignIn(candidate);
  navigate(href(''));
}

export default function SignIn() {
  useTitle('Sign in');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = (build) => async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await check(build(new FormData(event.currentTarget)));
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };
  const token = submit((form) => ({ kind: 'token', token: form.get('token').trim().replace(/^Bearer\s+/i, '') }));
  const user = submit((form) => ({ kind: 'user', userId: form.get('userId').trim(),
                                   roles: form.getAll('roles').join(',') }));
  return html`
    <${PageHeader} title="Sign in" />
    ${error && html`<${ErrorNotice} error=${error} title="Not signed in" />`}
    <div class="grid two">
      <${Section} title="Bearer token" id="token">
        <form class="stack" onSubmit=${token}>
          <label for="token">Token (a JWT the server accepts)</label>
          <textarea id="token" name="token" rows="5" required spellcheck=${false}
                    autocomplete="off" placeholder="eyJhbGciOi…"></textarea>
          <p class="muted small">Kept for this tab only: closing it forgets the token.${' '}
            <code>jobgraph token --sub USER</code> mints one; <code>make run</code> prints one.</p>
          <div><button type="submit" class="button primary" disabled=${busy}>Sign in</button></div>
        </form>
      <//>
      ${devUserHeader && html`
        <${Section} title="Development user" id="dev-user">
          <form class="stack" onSubmit=${user}>
            <p class="notice warn">This server trusts the <code>X-User-Id</code> header${' '}
              (JOBGRAPH_DEV_TRUST_USER_HEADER): development only.</p>
            <label for="user-id">User id</label>
            <input id="user-id" name="userId" required autocomplete="off" />
            <fieldset>
              <legend>Roles</legend>
              <label class="toggle"><input type="checkbox" name="roles" value="worker" /> worker</label>
              <label class="toggle"><input type="checkbox" name="roles" value="admin" /> admin</label>
            </fieldset>
            <div><button type="submit" class="button primary" disabled=${busy}>Sign in as this user</button></div>
          </form>
        <//>`}
    </div>`;
}
