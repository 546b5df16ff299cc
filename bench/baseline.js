// Baseline for the benchmark: the same mirror job as the Rust worker, written
// the way a careful JavaScript worker would be (routes in code, WWW-Authenticate
// parsed by parameter name, library/ added in place, redirects followed with
// credentials kept to the upstream's origin). It serves bench/routes.bench.toml's
// route only. Not deployed; it exists to measure the Rust worker against.

const ROUTES = {
  "docker.bench.test": {
    upstream: "http://127.0.0.20:16001",
    realm: "http://127.0.0.20:16001/token",
    service: "bench",
    library: true,
  },
};
const FORWARDED = ["accept", "authorization", "if-match", "if-modified-since", "if-none-match",
  "if-range", "if-unmodified-since", "range", "user-agent"];
const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const PARAM = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*,?/y;

function oci(status, code, message, extra = {}) {
  return new Response(JSON.stringify({ errors: [{ code, message, detail: null }] }), {
    status,
    headers: { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0", ...extra },
  });
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

async function exchange(route, url, method, headers, body) {
  const origin = new URL(url).origin;
  for (let hop = 0; hop <= 5; hop++) {
    if (new URL(url).origin !== origin) headers.delete("authorization");
    const resp = await fetch(url, { method, headers, body, redirect: "manual" });
    if (![301, 302, 303, 307, 308].includes(resp.status)) return resp;
    const next = new URL(resp.headers.get("location") || "", url);
    if (next.protocol !== "http:" && next.protocol !== "https:") return oci(502, "UNAVAILABLE", "bad redirect");
    url = next.href;
  }
  return oci(502, "UNAVAILABLE", "the upstream redirected too many times");
}

function pass(resp, realm) {
  const out = new Response(resp.body, resp);
  out.headers.delete("set-cookie");
  if (resp.status === 401 && realm) {
    const c = resp.headers.get("www-authenticate");
    if (!c) return oci(502, "UNAVAILABLE", "no challenge");
    out.headers.set("www-authenticate", rewriteChallenge(c, realm));
    out.headers.set("docker-distribution-api-version", "registry/2.0");
  }
  return out;
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const route = ROUTES[url.hostname.replace(/\.$/, "").toLowerCase()];
    if (!route) return oci(404, "NAME_UNKNOWN", "no mirror is configured for this host: " + url.hostname);
    const realm = `${url.protocol}//${url.host}/token`;
    const headers = new Headers();
    for (const h of FORWARDED) {
      const v = request.headers.get(h);
      if (v !== null) headers.set(h, v);
    }
    if (url.pathname === "/token") {
      const q = rewriteScopes(url.search, route.library);
      return pass(await exchange(route, route.realm + (q ? "?" + q : ""), "GET", headers), null);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return oci(405, "UNSUPPORTED", "this mirror only pulls", { allow: "GET, HEAD" });
    }
    if (url.pathname === "/v2/" || url.pathname === "/v2") {
      if (!request.headers.has("authorization")) {
        return oci(401, "UNAUTHORIZED", "authentication required",
          { "www-authenticate": `Bearer realm="${realm}",service="${route.service}"` });
      }
      return pass(await exchange(route, route.upstream + "/v2/", request.method, headers), realm);
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) return oci(404, "UNSUPPORTED", "not a registry path");
    const [, name, kind, ref] = m;
    if (!NAME.test(name) || name.length > 255) return oci(400, "NAME_INVALID", "invalid repository name");
    if (kind === "blobs" ? !DIGEST.test(ref) : !(TAG.test(ref) || DIGEST.test(ref))) {
      return oci(400, kind === "blobs" ? "DIGEST_INVALID" : "TAG_INVALID", "invalid reference");
    }
    const path = route.library && !name.includes("/") ? "library/" + name : name;
    const target = `${route.upstream}/v2/${path}/${kind}/${ref}${url.search}`;
    return pass(await exchange(route, target, request.method, headers), realm);
  },
};
