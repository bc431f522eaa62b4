// GraphiQL for Peer City Exchange: queries over HTTP with the headers pane's headers, and
// subscriptions over graphql-transport-ws with the same Authorization header sent in
// connection_init (the API reads the token there, not from the socket's HTTP headers).
(function () {
  "use strict";

  var DEFAULT_QUERY = [
    "# Peer City Exchange",
    "#",
    "# Every request needs an access token: paste one",
    "# into the Headers pane below, as",
    '#   {"Authorization": "Bearer <token>"}',
    "# `./dev serve --demo` prints one per demo city;",
    "# `./dev token issue --city rotterdam` mints one.",
    "# Subscriptions send the same header when the",
    "# socket opens (connection_init).",
    "",
    "{",
    "  viewer {",
    "    subject",
    "    scopes",
    "    city { name country }",
    "  }",
    "}",
    "",
  ].join("\n");
  var DEFAULT_HEADERS = '{\n  "Authorization": "Bearer <paste a token here>"\n}';

  var httpUrl = window.location.origin + window.location.pathname;
  var socketUrl = httpUrl.replace(/^http/, "ws");
  var sockets = {}; // one graphql-ws client per Authorization value

  function authorizationOf(headers) {
    for (var name in headers || {}) {
      if (name.toLowerCase() === "authorization") return String(headers[name]);
    }
    return "";
  }

  function socketFor(authorization) {
    if (!sockets[authorization]) {
      sockets[authorization] = graphqlWs.createClient({
        url: socketUrl,
        lazy: true,
        connectionParams: authorization ? { authorization: authorization } : {},
      });
    }
    return sockets[authorization];
  }

  function fetcher(params, options) {
    var authorization = authorizationOf(options && options.headers);
    var fetch = GraphiQL.createFetcher({ url: httpUrl, wsClient: socketFor(authorization) });
    return fetch(params, options);
  }

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
    }),
  );
})();
