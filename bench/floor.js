// The floor of the benchmark: each request kind's inherent work and nothing
// else, for the benchmark's route (bench/routes.bench.toml). Local answers
// are constants; every proxied kind is one fetch with the client's request
// as it came (method, headers, body), the runtime following redirects. No
// checks, no allow-list of headers, no timer, no rewritten challenge, no
// re-wrapped response. It is not a mirror anyone should deploy (it forwards
// cookies and would pass any name); it shows how much of a request's cost
// workerd spends whatever the worker does, so scripts/bench.py can print how
// much of the rest is ours.
//
// With RUNG above 0 it is a rung of the ladder from the floor to the Rust
// worker: each rung adds one piece of the work the worker does on a proxied
// request, so that measuring the rungs side by side says where a request's
// CPU goes (scripts/bench.py --contenders rust,rung4,...,floor writes rung N
// as a copy of this file with RUNG = N; V8 folds the constant away).
//   rung 1: the client's headers through the worker's allow-list (a new
//           Headers of the allowed ones) instead of as they came
//   rung 2: + the 20 s header timeout (AbortSignal.timeout)
//   rung 3: + awaiting the response in an async handler, looking at its
//           status, and the two response-header checks (Set-Cookie,
//           Proxy-Authenticate) before passing it on
//   rung 4: + a new Response with the challenge rewritten when the upstream
//           answers 401 (what a mirror must do with an upstream challenge)
// The Rust worker adds to rung 4 what is left: the facts, the memo lookup,
// the call into wasm and back, and reading the action.
//
// The "fallback" kind (a manifest the upstream throttles) is, at its floor,
// the four fetches it takes: the upstream (429), the fallback (its
// challenge), its token, the fallback again with the token.
const RUNG = 0;
const UPSTREAM = "http://127.0.0.20:16001";
const FALLBACK = "http://127.0.0.22:16003";
const HEADERS = { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0" };
const UNAUTHORIZED = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}';
const CHALLENGE = 'Bearer realm="http://docker.bench.test/token",service="bench"';
const INVALID = '{"errors":[{"code":"NAME_INVALID","message":"invalid repository name","detail":null}]}';
const FORWARDED = ["if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "range",
  "user-agent"];

function headers(request) {
  if (RUNG < 1) return request.headers;
  const h = request.headers;
  const out = new Headers();
  for (const name of ["authorization", "accept", ...FORWARDED]) {
    const v = h.get(name);
    if (v !== null) out.set(name, v);
  }
  return out;
}

async function checked(response) {
  const r = await response;
  if (r.status === 401 && RUNG >= 4) {
    const out = new Response(r.body, r);
    out.headers.set("www-authenticate", CHALLENGE);
    return out;
  }
  if (r.headers.has("set-cookie") || r.headers.has("proxy-authenticate")) return new Response(r.body, r);
  return r;
}

function forward(target, request) {
  const init = { method: request.method, headers: headers(request), body: request.body, redirect: "follow" };
  if (RUNG >= 2) init.signal = AbortSignal.timeout(20000);
  const response = fetch(target, init);
  return RUNG >= 3 ? checked(response) : response;
}

// The fetches of a throttled manifest served by the fallback, and nothing else.
async function fallback(path, request) {
  const up = await fetch(UPSTREAM + "/v2/library/" + path.slice(4), { method: request.method, headers: request.headers });
  await up.text();
  const target = FALLBACK + "/v2/library/throttled/manifests/1";
  const challenge = await fetch(target);
  await challenge.text();
  const t = await fetch(FALLBACK + "/token?scope=repository:library/throttled:pull&service=bench-fb");
  const { token } = await t.json();
  return fetch(target, { headers: { accept: request.headers.get("accept"), authorization: "Bearer " + token } });
}

export default {
  fetch(request) {
    const url = request.url;
    const path = url.slice(url.indexOf("/", 7));
    if (path.startsWith("/token")) return forward(UPSTREAM + path, request);
    if (path.startsWith("/v2/?") || path === "/v2/") {
      if (request.headers.has("authorization")) return forward(UPSTREAM + path, request);
      return new Response(UNAUTHORIZED, { status: 401, headers: { ...HEADERS, "www-authenticate": CHALLENGE } });
    }
    if (path.charCodeAt(4) < 97) return new Response(INVALID, { status: 404, headers: HEADERS });
    if (path.startsWith("/v2/throttled/")) return fallback(path, request);
    return forward(UPSTREAM + "/v2/library/" + path.slice(4), request);
  },
};
