// Several subscribers through the npm graphql-ws client (graphql-transport-ws), each on
// its own socket with its own bearer token in connectionParams.
// spec: {url, subscribers: [{label, token, query, variables}]}; prints {label, connected},
// {label, next}, {label, error}, {label, complete}.
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { describe, onStdinEnd, print, spec } from "./print.mjs";

const clients = spec.subscribers.map(({ label, token, query, variables }) => {
  const client = createClient({
    url: spec.url,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
    on: { connected: () => print({ label, connected: true }) },
  });
  client.subscribe({ query, variables }, {
    next: (result) => print({ label, next: result }),
    error: (error) => print({ label, error: describe(error) }),
    complete: () => print({ label, complete: true }),
  });
  return client;
});

onStdinEnd(() => clients.forEach((client) => client.dispose()));
