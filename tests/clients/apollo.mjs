// Apollo Client (core) in Node: a query and a mutation over HttpLink, then a subscription
// over GraphQLWsLink (spec.subscriptions "ws", split by operation type) or over HttpLink
// itself as a multipart/mixed stream (spec.subscriptions "http").
// spec: {http, ws, token, jobId, jobType, subscriptions}; prints {query}, {mutation},
// then {next} per subscription event, {error}, {complete}.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { isSubscriptionOperation } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { describe, onStdinEnd, print, spec } from "./print.mjs";

const authorization = `Bearer ${spec.token}`;
const http = new HttpLink({ uri: spec.http, headers: { Authorization: authorization } });
const sockets = createClient({
  url: spec.ws,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: authorization },
  retryAttempts: 0,
});
const link = spec.subscriptions === "ws"
  ? ApolloLink.split(({ query }) => isSubscriptionOperation(query), new GraphQLWsLink(sockets), http)
  : http;
const client = new ApolloClient({ link, cache: new InMemoryCache() });

try {
  const query = await client.query({
    query: gql`query Job($id: ID!) { job(jobId: $id) { jobId status version } }`,
    variables: { id: spec.jobId },
  });
  print({ query: query.data });
  const mutation = await client.mutate({
    mutation: gql`mutation Create($input: CreateJobInput!) {
      createJob(input: $input) { jobId jobType status } }`,
    variables: { input: { jobType: spec.jobType } },
  });
  print({ mutation: mutation.data });
} catch (error) {
  print({ error: describe(error) });
}

const subscription = client.subscribe({
  query: gql`subscription Follow($id: ID!) { jobChanged(jobId: $id) { jobId status version } }`,
  variables: { id: spec.jobId },
}).subscribe({
  next: ({ data, error }) => print(error ? { error: describe(error) } : { next: data }),
  error: (error) => print({ error: describe(error) }),
  complete: () => print({ complete: true }),
});

onStdinEnd(() => {
  subscription.unsubscribe();
  sockets.dispose();
  client.stop();
});
