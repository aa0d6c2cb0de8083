// One subscription through the npm graphql-ws client (protocol graphql-transport-ws),
// authenticated by a bearer token in connectionParams.
// spec: {url, token, query, variables}; prints {connected}, {next}, {error}, {complete}.
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { describe, onStdinEnd, print, spec } from "./print.mjs";

const client = createClient({
  url: spec.url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${spec.token}` },
  retryAttempts: 0,
  on: {
    connected: (_socket, payload) => print({ connected: payload }),
    closed: (event) => print({ closed: { code: event.code, reason: event.reason } }),
  },
});

client.subscribe({ query: spec.query, variables: spec.variables }, {
  next: (result) => print({ next: result }),
  error: (error) => print({ error: describe(error) }),
  complete: () => print({ complete: true }),
});

onStdinEnd(() => client.dispose());
