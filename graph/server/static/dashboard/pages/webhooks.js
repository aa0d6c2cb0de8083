// Your webhooks (a webhook is its owner's alone), paged from the server.

import {
  ErrorNotice, Loading, PageHeader, Pager, RelativeTime, pageArguments, pageSize,
} from '../components.js';
import { useQuery, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href } from '../router.js';

const WEBHOOKS = `query Webhooks($first: Int, $after: String, $last: Int, $before: String) {
  webhooks(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { webhookId url events description owner createdAt } }
  }
}`;

export const eventName = (event) => event.toLowerCase().replaceAll('_', ' ');

export default function Webhooks({ route }) {
  useTitle('Webhooks');
  const query = useQuery(WEBHOOKS, pageArguments(route, pageSize(route)));
  const connection = query.data?.webhooks;
  return html`
    <${PageHeader} title="Webhooks" />
    ${query.error && html`<${ErrorNotice} error=${query.error} title="The webhooks could not be listed" />`}
    ${!connection ? (!query.error && html`<${Loading} />`) : html`
      <section class="card flush" aria-label="Webhook list">
        ${connection.edges.length === 0 ? html`<p class="empty">No webhooks of yours.${' '}
            Create one with the <code>createWebhook</code> mutation.</p>` : html`
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Webhooks</caption>
              <thead><tr><th scope="col">Endpoint</th><th scope="col">Events</th>
                <th scope="col">Description</th><th scope="col">Owner</th><th scope="col">Created</th></tr></thead>
              <tbody>
                ${connection.edges.map(({ node: webhook }) => html`
                  <tr key=${webhook.webhookId}>
                    <th scope="row"><a href=${href(`webhooks/${webhook.webhookId}`)}><code class="url">${webhook.url}</code></a></th>
                    <td>${webhook.events.map((event) => html`<span class="tag">${eventName(event)}</span> `)}</td>
                    <td>${webhook.description ?? html`<span class="muted">–</span>`}</td>
                    <td>${webhook.owner}</td>
                    <td><${RelativeTime} value=${webhook.createdAt} /></td>
                  </tr>`)}
              </tbody>
            </table>
          </div>`}
        <${Pager} route=${route} pageInfo=${connection.pageInfo} shown=${connection.edges.length}
                  total=${connection.totalCount} noun="webhooks" />
      </section>`}`;
}
