// Host calls for src/edge.rs, batched: each function here replaces several
// JS<->wasm crossings with one (issue: CPU per request). Nothing here decides
// anything about a request; the Rust side plans, validates and rewrites, and
// this file only moves values in and out of the runtime's web types.

// Request headers passed upstream (an allow-list: cookies, cf-*,
// x-forwarded-* and hop-by-hop headers stay behind).
const FORWARDED = ["accept", "authorization", "if-match", "if-modified-since", "if-none-match",
  "if-range", "if-unmodified-since", "range", "user-agent"];
// Response headers never passed to clients.
const DROPPED = ["set-cookie", "connection", "keep-alive", "proxy-authenticate", "trailer", "upgrade"];

// "METHOD FLAGS URL": FLAGS is 1 for Authorization, plus 2 for an Accept
// that mentions text/html.
export function describe(request) {
  const h = request.headers;
  const accept = h.get("accept");
  const flags = (h.has("authorization") ? 1 : 0) + (accept !== null && accept.includes("text/html") ? 2 : 0);
  return request.method + " " + flags + " " + request.url;
}

export function forwardedHeaders(request) {
  const out = new Headers();
  for (const name of FORWARDED) {
    const v = request.headers.get(name);
    if (v !== null) out.set(name, v);
  }
  return out;
}

// One upstream request, redirects not followed. Resolves to the Response, or
// to undefined when no headers arrived within `ms` (the request is aborted).
// Rejects when the upstream cannot be reached.
export function send(url, method, headers, body, dropAuthorization, ms) {
  if (dropAuthorization) headers.delete("authorization");
  const controller = new AbortController();
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(resolve, ms); });
  const init = { method, headers, redirect: "manual", signal: controller.signal };
  if (body !== undefined) init.body = body;
  return Promise.race([fetch(url, init), timeout]).then((r) => {
    clearTimeout(timer);
    if (r === undefined) controller.abort();
    return r;
  }, (e) => {
    clearTimeout(timer);
    throw e;
  });
}

export function header(response, name) {
  return response.headers.get(name);
}

// A redirect's Location; the redirect's own body is discarded.
export function takeLocation(response) {
  if (response.body) response.body.cancel();
  return response.headers.get("location") || "";
}

// The upstream response for the client, body streamed through. `challenges`
// (one per line) replace WWW-Authenticate; `location` replaces Location.
export function relay(response, challenges, location) {
  const out = new Response(response.body, response);
  const h = out.headers;
  for (const name of DROPPED) h.delete(name);
  if (challenges !== undefined) {
    h.delete("www-authenticate");
    for (const line of challenges.split("\n")) h.append("www-authenticate", line);
    h.set("docker-distribution-api-version", "registry/2.0");
  }
  if (location !== undefined) h.set("location", location);
  return out;
}

// An answer made by the worker itself.
export function reply(status, body, contentType, challenge, allow) {
  const headers = { "content-type": contentType, "docker-distribution-api-version": "registry/2.0" };
  if (challenge !== undefined) headers["www-authenticate"] = challenge;
  if (allow !== undefined) headers["allow"] = allow;
  return new Response(body, { status, headers });
}
