// What every script here shares: its spec (one JSON argument), one JSON line per thing
// it saw, and an end when the test closes its stdin.
export const spec = JSON.parse(process.argv[2] ?? "{}");

export const print = (line) => console.log(JSON.stringify(line));

// A GraphQL error list, a CloseEvent or an Error, as plain JSON.
export const describe = (error) =>
  Array.isArray(error) ? { errors: error }
  : error?.graphQLErrors?.length ? { errors: error.graphQLErrors }
  : error?.errors?.length ? { errors: error.errors }
  : { code: error?.code, reason: error?.reason, message: error?.message ?? String(error) };

export const onStdinEnd = (callback) => {
  process.stdin.on("end", callback);
  process.stdin.resume();
};
