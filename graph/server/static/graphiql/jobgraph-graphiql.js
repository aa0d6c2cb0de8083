// GraphiQL for jobgraph, loaded by the page that GET /graphql renders (graph/server/graphiql.py).
// Queries and mutations go by POST to the page's own URL; subscriptions by WebSocket
// (graphql-transport-ws) to the same URL, ws:// or wss:// as the page is http:// or https://.
// The Headers tab's headers go with both (over the socket as its connection-init payload).
(function () {
  "use strict";

  var url = window.location.href.split(/[?#]/)[0];
  var socket = new URL(url);
  socket.protocol = socket.protocol === "https:" ? "wss:" : "ws:";

  // Headers (a pasted bearer token) stay in memory unless the user turns on "Persist
  // headers" in GraphiQL's settings: with no shouldPersistHeaders prop GraphiQL 3 keeps them
  // out of localStorage, except in its query history, which stores each run's headers
  // whatever that setting says. This storage drops them from the history too.
  var HISTORY = { "graphiql:queries": "queries", "graphiql:favorites": "favorites" };
  var PERSIST = "graphiql:shouldPersistHeaders";

  function storageOrNull() {
    try {
      var local = window.localStorage;
      local.getItem(PERSIST);
      return local;
    } catch (e) {
      return null; // storage disabled: GraphiQL then keeps everything in memory
    }
  }

  function withoutHeaders(local, key, value) {
    if (!(key in HISTORY) || local.getItem(PERSIST) === "true") {
      return value;
    }
    try {
      var stored = JSON.parse(value);
      (stored[HISTORY[key]] || []).forEach(function (item) { delete item.headers; });
      return JSON.stringify(stored);
    } catch (e) {
      return null; // not what GraphiQL writes: keep nothing rather than a token
    }
  }

  function historyWithoutHeaders(local) {
    function put(key, value) {
      var kept = withoutHeaders(local, key, value);
      if (kept === null) {
        local.removeItem(key);
      } else {
        local.setItem(key, kept);
      }
    }
    Object.keys(HISTORY).forEach(function (key) {
      var value = local.getItem(key);
      if (value) {
        put(key, value); // runs from while the setting was on, since turned off
      }
    });
    return {
      getItem: function (key) { return local.getItem(key); },
      setItem: put,
      removeItem: function (key) { local.removeItem(key); },
      get length() {
        var count = 0;
        for (var i = 0; i < local.length; i++) {
          if (String(local.key(i)).indexOf("graphiql:") === 0) { count += 1; }
        }
        return count;
      },
      clear: function () {
        Object.keys(local).forEach(function (key) {
          if (key.indexOf("graphiql:") === 0) { local.removeItem(key); }
        });
      }
    };
  }

  var welcome = [
    "# jobgraph: GraphQL over MongoDB for asynchronous jobs.",
    "#",
    "# Sign in: paste {\"Authorization\": \"Bearer <token>\"} into the Headers tab below",
    "# (`jobgraph token --sub you` prints one). It is kept in this page only, unless you",
    "# turn on \"Persist headers\" in the settings (the gear, bottom left).",
    "#",
    "# Run: Ctrl-Enter. Subscriptions (jobChanged, jobsChanged, ...) run over a WebSocket.",
    "",
    "query Viewer {",
    "  viewer {",
    "    userId",
    "    roles",
    "  }",
    "}",
    ""
  ].join("\n");

  var local = storageOrNull();
  var fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: socket.toString() });

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      storage: local ? historyWithoutHeaders(local) : null,
      defaultQuery: welcome,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      inputValueDeprecation: true
    })
  );
})();
