// One subscription through the npm graphql-ws client, whose socket stops reading for
// spec.stallMs after the first event (as a frozen tab's would), then reads again; the
// client retries (reconnects and subscribes again) as it does by default, after 0.5 s.
// spec: {url, token, query, variables, stallMs};
// prints {connected}, {stalled}, {resumed}, {closed}, {next}, {error}, {complete}.
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { describe, onStdinEnd, print, spec } from "./print.mjs";

let socket = null;
let stalled = false;
const client = createClient({
  url: spec.url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${spec.token}` },
  retryAttempts: 3,
  retryWait: () => new Promise((resolve) => setTimeout(resolve, 500)), // not its backoff
  on: {
    connected: (connected, payload) => {
      socket = connected;
      print({ connected: payload });
    },
    closed: (event) => print({ closed: { code: event.code, reason: event.reason } }),
  },
});

client.subscribe({ query: spec.query, variables: spec.variables }, {
  next: (result) => {
    print({ next: result });
    if (!stalled) {
      stalled = true;
      const tcp = socket._socket; // the ws package's net.Socket: nothing is read while paused
      tcp.pause();
      print({ stalled: spec.stallMs });
      setTimeout(() => {
        tcp.resume();
        print({ resumed: true });
      }, spec.stallMs);
    }
  },
  error: (error) => print({ error: describe(error) }),
  complete: () => print({ complete: true }),
});

onStdinEnd(() => client.dispose());
