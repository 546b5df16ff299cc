// The floor of the benchmark: each request kind's inherent work and nothing
// else, for the benchmark's route (bench/routes.bench.toml). Local answers
// are constants; every proxied kind is one fetch with the client's request
// as it came (method, headers, body), the runtime following redirects. No
// checks, no allow-list of headers, no timer, no rewritten challenge, no
// re-wrapped response. It is not a mirror anyone should deploy (it forwards
// cookies and would pass any name); it shows how much of a request's cost
// workerd spends whatever the worker does, so scripts/bench.py can print how
// much of the rest is ours.
const UPSTREAM = "http://127.0.0.20:16001";
const HEADERS = { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0" };
const UNAUTHORIZED = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}';
const CHALLENGE = 'Bearer realm="http://docker.bench.test/token",service="bench"';
const INVALID = '{"errors":[{"code":"NAME_INVALID","message":"invalid repository name","detail":null}]}';

// The client's request as it came, with redirects followed by the runtime
// (an incoming request says "manual").
function forward(target, request) {
  return fetch(target, { method: request.method, headers: request.headers, body: request.body, redirect: "follow" });
}

export default {
  fetch(request) {
    const url = request.url;
    // scheme://host is followed by the path: "http://".length is 7.
    const path = url.slice(url.indexOf("/", 7));
    if (path.startsWith("/token")) return forward(UPSTREAM + path, request);
    if (path.startsWith("/v2/?") || path === "/v2/") {
      if (request.headers.has("authorization")) return forward(UPSTREAM + path, request);
      return new Response(UNAUTHORIZED, { status: 401, headers: { ...HEADERS, "www-authenticate": CHALLENGE } });
    }
    // The benchmark's one malformed name (an upper-case letter).
    if (path.charCodeAt(4) < 97) return new Response(INVALID, { status: 400, headers: HEADERS });
    // Docker Hub's library/ for the benchmark's one-component names.
    return forward(UPSTREAM + "/v2/library/" + path.slice(4), request);
  },
};
