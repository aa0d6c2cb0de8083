// An address under /ui/ that is no page of ours.

import { PageHeader } from '../components.js';
import { useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href } from '../router.js';

export default function NotFound() {
  useTitle('Not found');
  return html`
    <${PageHeader} title="No such page" />
    <p>This address is not a page of the dashboard. <a href=${href('')}>Go to the overview</a>.</p>`;
}
