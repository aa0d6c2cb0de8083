// One webhook and its deliveries: status, attempts, the last response; redeliver what was
// delivered, died or was skipped. Deliveries have no subscription: the newest page is
// queried again every few seconds while the tab is visible.

import { useEffect, useState } from 'preact/hooks';
import { request } from '../api.js';
import {
  ActionButton, Details, ErrorNotice, JsonView, Loading, PageHeader, Pager, RelativeTime,
  Section, ShortId, StatusBadge, pageArguments, pageSize,
} from '../components.js';
import { useQuery, useTitle } from '../hooks.js';
import { html } from '../html.js';
import { href, navigate, withParams } from '../router.js';
import { eventName } from './webhooks.js';

const DELIVERY_STATUSES = ['PENDING', 'DELIVERED', 'DEAD', 'SKIPPED'];
const DELIVERY = `deliveryId event objectId status attempts lastResponseCode lastError createdAt
  lastAttemptAt nextAttemptAt deliveredAt payload`;
const WEBHOOK = `query Webhook($webhookId: ID!, $status: DeliveryStatus, $first: Int,
                            $after: String, $last: Int, $before: String) {
  webhook(webhookId: $webhookId) {
    webhookId url events description owner createdAt secret
    filter { jobTypes batchId repositoryName }
  }
  webhookDeliveries(webhookId: $webhookId, status: $status, first: $first, after: $after,
                    last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { ${DELIVERY} } }
  }
}`;
const REDELIVER = `mutation Redeliver($deliveryId: ID!) {
  redeliverWebhookDelivery(deliveryId: $deliveryId) { ${DELIVERY} } }`;
const DELETE = 'mutation Delete($webhookId: ID!) { deleteWebhook(webhookId: $webhookId) { webhookId } }';
const POLL_MS = 5000;

/** The page of the object a delivery is about. */
function objectLink(delivery) {
  const section = delivery.event.startsWith('BATCH') ? 'batches'
    : delivery.event.startsWith('DOCUMENTATION') ? 'documentation-jobs' : 'jobs';
  return html`<a href=${href(`${section}/${delivery.objectId}`)}><${ShortId} value=${delivery.objectId} /></a>`;
}

function ResponseCode({ code }) {
  if (code == null) return html`<span class="muted">none</span>`;
  const kind = code < 300 ? 'ok' : code < 500 ? 'warn' : 'bad';
  return html`<span class=${`http http-${kind}`}>${code}</span>`;
}

function Secret({ secret }) {
  const [shown, setShown] = useState(false);
  if (!secret) return html`<span class="muted">only its owner sees it</span>`;
  return html`
    <span class="secret">
      <code>${shown ? secret : 'whsec_••••••••••••'}</code>
      <button type="button" class="button small ghost" aria-pressed=${shown ? 'true' : 'false'}
              onClick=${() => setShown(!shown)}>${shown ? 'Hide' : 'Reveal'}</button>
    </span>`;
}

function Deliveries({ connection, route, replace }) {
  if (connection.edges.length === 0) return html`<p class="empty">No deliveries.</p>`;
  return html`
    <div class="table-wrap">
      <table class="deliveries">
        <caption class="visually-hidden">Deliveries</caption>
        <thead><tr>
          <th scope="col">Event</th><th scope="col">About</th><th scope="col">Status</th>
          <th scope="col">Attempts</th><th scope="col">Last response</th>
          <th scope="col">Last attempt</th><th scope="col">Next attempt</th>
          <th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr></thead>
        <tbody>
          ${connection.edges.map(({ node: delivery }) => html`
            <tr key=${delivery.deliveryId}>
              <th scope="row">${eventName(delivery.event)}
                <details class="payload"><summary>payload <span class="visually-hidden">of ${delivery.deliveryId}</span></summary>
                  <p class="small muted">webhook-id <code>${delivery.deliveryId}</code></p>
                  <${JsonView} value=${delivery.payload} label="Payload" /></details></th>
              <td>${objectLink(delivery)}</td>
              <td><${StatusBadge} status=${delivery.status} /></td>
              <td>${delivery.attempts}</td>
              <td><${ResponseCode} code=${delivery.lastResponseCode} />
                ${delivery.lastError && html`<div class="small muted error-text">${delivery.lastError}</div>`}</td>
              <td><${RelativeTime} value=${delivery.lastAttemptAt} /></td>
              <td>${delivery.status === 'PENDING' ? html`<${RelativeTime} value=${delivery.nextAttemptAt} />`
                : html`<span class="muted">–</span>`}</td>
              <td>${delivery.status !== 'PENDING' && html`
                <${ActionButton} label="Redeliver"
                  run=${() => request(REDELIVER, { deliveryId: delivery.deliveryId })}
                  onDone=${(data) => replace(data.redeliverWebhookDelivery)} />`}</td>
            </tr>`)}
        </tbody>
      </table>
    </div>
    <${Pager} route=${route} pageInfo=${connection.pageInfo} shown=${connection.edges.length}
              total=${connection.totalCount} noun="deliveries" />`;
}

export default function Webhook({ id, route }) {
  const status = DELIVERY_STATUSES.includes(route.params.get('status')) ? route.params.get('status') : null;
  const query = useQuery(WEBHOOK, { webhookId: id, status, ...pageArguments(route, pageSize(route)) });
  const webhook = query.data?.webhook;
  const deliveries = query.data?.webhookDeliveries;
  useTitle(webhook ? `Webhook ${webhook.url}` : 'Webhook');
  const newest = !route.params.get('after') && !route.params.get('before');

  useEffect(() => {
    if (!newest) return undefined;
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') query.refetch();
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [newest, query.refetch]);

  const replace = (delivery) => query.update((data) => ({
    ...data,
    webhookDeliveries: { ...data.webhookDeliveries, edges: data.webhookDeliveries.edges.map((edge) => (
      edge.node.deliveryId === delivery.deliveryId ? { ...edge, node: delivery } : edge)) },
  }));
  const current = route.params.get('status') || '';

  return html`
    <${PageHeader} title=${webhook ? html`<code class="url">${webhook.url}</code>` : html`Webhook <${ShortId} value=${id} />`}
                   kicker=${html`<a href=${href('webhooks')}>Webhooks</a>`}>
      ${webhook && html`<${ActionButton} label="Delete" variant="danger"
        confirm=${`Delete the webhook to ${webhook.url} and its deliveries?`}
        run=${() => request(DELETE, { webhookId: id })} onDone=${() => navigate(href('webhooks'))} />`}
    <//>
    ${query.error && html`<${ErrorNotice} error=${query.error} title="The webhook could not be shown" />`}
    ${!webhook ? (!query.error && html`<${Loading} />`) : html`
      <${Section} title="Endpoint" id="endpoint">
        <${Details} rows=${[
          ['Webhook id', html`<code>${webhook.webhookId}</code>`],
          ['Events', webhook.events.map((event) => html`<span class="tag">${eventName(event)}</span> `)],
          ['Job types', webhook.filter.jobTypes.length ? webhook.filter.jobTypes.join(', ') : 'all'],
          webhook.filter.batchId && ['Batch', html`<a href=${href(`batches/${webhook.filter.batchId}`)}><${ShortId} value=${webhook.filter.batchId} /></a>`],
          webhook.filter.repositoryName && ['Repository', webhook.filter.repositoryName],
          ['Description', webhook.description],
          ['Owner', webhook.owner],
          ['Created', html`<${RelativeTime} value=${webhook.createdAt} />`],
          ['Signing secret', html`<${Secret} secret=${webhook.secret} />`],
        ]} />
      <//>
      <${Section} title="Deliveries" id="deliveries">
        <nav class="tabs" aria-label="Delivery status">
          ${[['', 'All'], ...DELIVERY_STATUSES.map((s) => [s, s.toLowerCase()])].map(([value, label]) => html`
            <a href=${withParams(route, { status: value, after: '', before: '' })}
               aria-current=${current === value ? 'page' : undefined}>${label}</a>`)}
        </nav>
        <${Deliveries} connection=${deliveries} route=${route} replace=${replace} />
      <//>`}`;
}
