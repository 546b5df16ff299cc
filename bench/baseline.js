// Baseline for the benchmark: the same mirror job as the Rust worker, written
// the way a careful, lean JavaScript worker would be. Same answers (statuses,
// bodies, headers: scripts/bench.py checks them side by side before timing)
// and the same subrequests: routes in code, WWW-Authenticate parsed by
// parameter name, library/ added in place in paths and token scopes, the
// OAuth2 token form rewritten, redirects followed by the runtime (which drops
// Authorization on a cross-origin hop), upstream responses passed through
// untouched unless a header must go or a challenge must change, the same
// 20 s header timeout, and the fallback a throttled manifest or blob is
// asked for (its token fetched from its challenge's realm). It serves
// bench/routes.bench.toml's route only. Not deployed; it exists to measure
// the Rust worker against.

const ROUTES = {
  "docker.bench.test": {
    upstream: "http://127.0.0.20:16001",
    realm: "http://127.0.0.20:16001/token",
    service: "bench",
    library: true,
    fallbacks: [{ registry: "bench-fallback", upstream: "http://127.0.0.22:16003", library: true }],
  },
};
const FORWARDED = ["accept", "authorization", "if-match", "if-modified-since", "if-none-match",
  "if-range", "if-unmodified-since", "range", "user-agent"];
const DROPPED = ["set-cookie", "proxy-authenticate", "connection", "keep-alive", "trailer", "upgrade"];
const TIMEOUT_MS = 20000;
const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const PARAM = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*,?/y;
const MESSAGES = {
  NAME_INVALID: "invalid repository name: lower-case letters and digits, with '.', '_', '__' or '-' inside '/'-separated components",
  MANIFEST_UNKNOWN: "manifest unknown: the reference is neither a tag (1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-') nor a digest",
  BLOB_UNKNOWN: "blob unknown: blobs are named by their digest, algorithm:hex",
  DIGEST_INVALID: "invalid digest: write it as algorithm:hex, for example sha256: followed by 64 lower-case hex digits",
};

function oci(status, code, message, extra) {
  const headers = { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0" };
  if (extra) Object.assign(headers, extra);
  return new Response(JSON.stringify({ errors: [{ code, message, detail: null }] }), { status, headers });
}

function rewriteChallenge(value, realm) {
  const m = /^\s*Bearer\s+/i.exec(value);
  if (!m) return value;
  PARAM.lastIndex = m[0].length;
  const out = [];
  let p;
  while ((p = PARAM.exec(value))) {
    const v = p[3] !== undefined ? p[3].replace(/\\(.)/g, "$1") : p[2];
    const val = p[1].toLowerCase() === "realm" ? realm : v;
    out.push(`${p[1]}="${val.replace(/["\\]/g, "\\$&")}"`);
  }
  return "Bearer " + out.join(",");
}

function rewriteScopes(search, library) {
  const params = new URLSearchParams(search);
  const out = new URLSearchParams();
  for (const [k, v] of params) {
    if (k === "scope" && library) {
      out.append(k, v.split(" ").map((s) => {
        const a = s.indexOf(":"), b = s.lastIndexOf(":");
        const name = s.slice(a + 1, b);
        return a > 0 && b > a && s.startsWith("repository") && !name.includes("/") && NAME.test(name)
          ? s.slice(0, a + 1) + "library/" + s.slice(a + 1) : s;
      }).join(" "));
    } else out.append(k, v);
  }
  return out.toString();
}

// With the binding REDIRECTS = "manual" (scripts/bench.py --js-redirects
// manual), redirects are followed here instead of by the runtime, as the
// worker once did: at most 5 hops, Authorization only to the first origin.
// The benchmark uses it to measure what letting the runtime follow saves.
async function follow(url, init) {
  const origin = new URL(url).origin;
  init.redirect = "manual";
  for (let hop = 0; hop <= 5; hop++) {
    const resp = await fetch(url, init);
    if (![301, 302, 303, 307, 308].includes(resp.status)) return resp;
    if (resp.body) resp.body.cancel();
    url = new URL(resp.headers.get("location") || "", url).href;
    if (new URL(url).origin !== origin) init.headers.delete("authorization");
  }
  throw new TypeError("Too many redirects.");
}

async function send(url, init, manual) {
  const controller = new AbortController();
  init.signal = controller.signal;
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    return await (manual ? follow(url, init) : fetch(url, init));
  } catch (e) {
    const message = e.name === "AbortError" ? "the upstream registry did not answer in time"
      : String(e.message).startsWith("Too many redirects") ? "the upstream redirected too many times"
        : "the upstream registry could not be reached, or redirected to a URL that cannot be fetched";
    return oci(e.name === "AbortError" ? 504 : 502, "UNAVAILABLE", message + ": " + new URL(url).origin);
  } finally {
    clearTimeout(timer);
  }
}

function pass(resp, realm) {
  let dirty = resp.status === 401 && realm;
  if (!dirty) {
    for (const name of DROPPED) {
      if (resp.headers.has(name)) {
        dirty = true;
        break;
      }
    }
    if (!dirty) return resp;
  }
  const out = new Response(resp.body, resp);
  for (const name of DROPPED) out.headers.delete(name);
  if (resp.status === 401 && realm) {
    const c = resp.headers.get("www-authenticate");
    if (!c) return oci(502, "UNAVAILABLE", "the upstream answered 401 without a WWW-Authenticate challenge");
    out.headers.set("www-authenticate", rewriteChallenge(c, realm));
    out.headers.set("docker-distribution-api-version", "registry/2.0");
  }
  return out;
}

// A throttled manifest or blob from a fallback: the client's headers without
// its Authorization; on a challenge, a pull token of the mirror's own from
// the challenge's realm, and once more with it. The response, naming its
// source, or null.
async function fromFallback(fb, name, kind, ref, request, why) {
  const path = fb.library && !name.includes("/") ? "library/" + name : name;
  const target = `${fb.upstream}/v2/${path}/${kind}/${ref}`;
  const headers = forwarded(request);
  headers.delete("authorization");
  let resp = await send(target, { method: request.method, headers }, false);
  if (resp.status === 401) {
    const c = resp.headers.get("www-authenticate") || "";
    const realm = /realm="([^"]*)"/.exec(c), service = /service="([^"]*)"/.exec(c);
    if (!realm) return null;
    const q = new URLSearchParams({ scope: `repository:${path}:pull` });
    if (service) q.set("service", service[1]);
    const t = await send(new URL(realm[1], fb.upstream + "/v2/").href + "?" + q, {}, false);
    const token = t.status === 200 ? (await t.json().catch(() => ({}))).token : undefined;
    if (!token) return null;
    headers.set("authorization", "Bearer " + token);
    resp = await send(target, { method: request.method, headers }, false);
  }
  if (resp.status >= 400) return null;
  const out = new Response(resp.body, resp);
  out.headers.set("x-mirror-source", `${fb.registry} (fallback: ${why})`);
  return out;
}

function forwarded(request) {
  const headers = new Headers();
  for (const h of FORWARDED) {
    const v = request.headers.get(h);
    if (v !== null) headers.set(h, v);
  }
  return headers;
}

export default {
  async fetch(request, env) {
    const manual = env.REDIRECTS === "manual";
    const url = new URL(request.url);
    const host = url.hostname.replace(/\.$/, "").toLowerCase();
    const route = ROUTES[host];
    if (!route) return oci(404, "NAME_UNKNOWN", "no mirror is configured for this host: " + host);
    const realm = `${url.protocol}//${url.host.toLowerCase()}/token`;
    if (url.pathname === "/token") {
      const q = rewriteScopes(url.search, route.library);
      const target = route.realm + (q ? "?" + q : "");
      if (request.method === "POST") {
        const headers = forwarded(request);
        headers.set("content-type", "application/x-www-form-urlencoded");
        const form = rewriteScopes(await request.text(), route.library);
        return pass(await send(target, { method: "POST", headers, body: form }, manual), null);
      }
      return pass(await send(target, { headers: forwarded(request) }, manual), null);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return oci(405, "UNSUPPORTED", "this mirror only pulls: registry API paths take GET and HEAD", { allow: "GET, HEAD" });
    }
    if (url.pathname === "/v2/" || url.pathname === "/v2") {
      if (!request.headers.has("authorization")) {
        return oci(401, "UNAUTHORIZED", "authentication required",
          { "www-authenticate": `Bearer realm="${realm}",service="${route.service}"` });
      }
      return pass(await send(route.upstream + "/v2/", { method: request.method, headers: forwarded(request) }, manual), realm);
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) return oci(404, "UNSUPPORTED", "not a registry path");
    const [, name, kind, ref] = m;
    if (!NAME.test(name) || name.length > 255) return oci(404, "NAME_INVALID", MESSAGES.NAME_INVALID);
    if (kind === "blobs" ? !DIGEST.test(ref) : !(TAG.test(ref) || DIGEST.test(ref))) {
      if (!ref.includes(":")) {
        const code = kind === "blobs" ? "BLOB_UNKNOWN" : "MANIFEST_UNKNOWN";
        return oci(404, code, MESSAGES[code]);
      }
      return oci(400, "DIGEST_INVALID", MESSAGES.DIGEST_INVALID);
    }
    const path = route.library && !name.includes("/") ? "library/" + name : name;
    const target = `${route.upstream}/v2/${path}/${kind}/${ref}${url.search}`;
    const resp = await send(target, { method: request.method, headers: forwarded(request) }, manual);
    if (route.fallbacks && (resp.status === 429 || (resp.status >= 502 && resp.status <= 504))) {
      const why = "docker.io " + resp.status;
      for (const fb of route.fallbacks) {
        const got = await fromFallback(fb, name, kind, ref, request, why);
        if (got) return got;
      }
    }
    return pass(resp, realm);
  },
};
