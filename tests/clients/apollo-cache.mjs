// Apollo Client's InMemoryCache, with no typePolicies at all: a job read by one query is
// updated in place by a later mutation's result, because both carry the job's Relay `id`.
// The query runs as the job's owner (spec.token), the mutation, completeJob, as the worker
// holding the job (spec.workerToken, per operation through the link's context headers).
// spec: {http, token, workerToken, jobId}; prints {typePolicies}, {watched} per emission of
// the watched query, {mutation}, {cached} (cache.readQuery, no network), {error}.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { describe, onStdinEnd, print, spec } from "./print.mjs";

const cache = new InMemoryCache(); // no options: no typePolicies, no keyFields
const client = new ApolloClient({
  link: new HttpLink({ uri: spec.http, headers: { Authorization: `Bearer ${spec.token}` } }),
  cache,
});
print({ typePolicies: Object.keys(cache.policies.typePolicies ?? {}).filter(
  (name) => !name.startsWith("__")) });

const JOB = gql`query Job($jobId: ID!) { job(jobId: $jobId) { id jobId status } }`;
const COMPLETE = gql`mutation Complete($jobId: ID!) {
  completeJob(jobId: $jobId, results: {pages: 3}) { id status } }`;

let watching;
try {
  const first = new Promise((resolve, reject) => {
    watching = client.watchQuery({ query: JOB, variables: { jobId: spec.jobId } }).subscribe({
      next: ({ data }) => {
        if (data?.job) {
          print({ watched: data });
          resolve();
        }
      },
      error: reject,
    });
  });
  await first;
  const mutation = await client.mutate({
    mutation: COMPLETE,
    variables: { jobId: spec.jobId },
    context: { headers: { Authorization: `Bearer ${spec.workerToken}` } },
  });
  print({ mutation: mutation.data });
  print({ cached: cache.readQuery({ query: JOB, variables: { jobId: spec.jobId } }) });
} catch (error) {
  print({ error: describe(error) });
}

onStdinEnd(() => {
  watching?.unsubscribe();
  client.stop();
});
