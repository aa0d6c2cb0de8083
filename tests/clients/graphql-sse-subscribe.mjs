// One operation through the npm graphql-sse client (distinct connections mode: one
// text/event-stream response per operation), with a bearer token header.
// spec: {url, token, query, variables}; prints {next}, {error}, {complete}.
import { createClient } from "graphql-sse";
import { describe, onStdinEnd, print, spec } from "./print.mjs";

const client = createClient({
  url: spec.url,
  headers: spec.token ? { Authorization: `Bearer ${spec.token}` } : {},
  retryAttempts: 0,
});

const dispose = client.subscribe({ query: spec.query, variables: spec.variables }, {
  next: (result) => print({ next: result }),
  error: (error) => print({ error: describe(error) }),
  complete: () => print({ complete: true }),
});

onStdinEnd(() => {
  dispose();
  client.dispose();
});
