// Who may use the mirror: the entry's checks before the planner sees a
// request, from the policy the table compiler wrote after the table's
// string pool (src/route_table/admission.rs has its form). Pure functions of
// strings; src/edge.js calls them and writes the answers, and
// tests/entry/admission.test.mjs holds their table of cases.
//
// - deny_agents: case-insensitive substrings of User-Agent, refused first.
// - clients: the client's address (CF-Connecting-IP) in one of the ranges,
//   or Cloudflare's country of the request among the countries.
// - access: the keys (a Worker secret, comma-separated, each 16 or more of
//   A-Z a-z 0-9 _ -). A key rides in the URL, where every client can carry
//   it: the first path segment (/KEY/v2/..., containerd's hosts.toml and
//   dockerd's registry-mirrors), the first component of the name
//   (/v2/KEY/name/..., a reference or registries.conf), or the first
//   component of a token request's repository scopes and of docker
//   search's term. Every copy is cut out before the planner sees the URL,
//   so no key reaches an upstream, a realm, the memo or a log line; a URL
//   that still holds a key after that is refused. Keys are compared in
//   time that depends on the keys only.

// The policy at the end of the table's bytes (POOL_END, header bytes
// 18-19, says where it starts); null when the table has none.
export function policyOf(table) {
  if (table.length < 20) return null;
  const at = table[18] | table[19] << 8;
  if (at >= table.length) return null;
  try {
    return JSON.parse(new TextDecoder().decode(table.subarray(at)));
  } catch {
    return null;
  }
}

// The agents as one case-insensitive pattern (a regular expression of the
// substrings, escaped), made once per isolate: a test per request instead
// of a lower-casing and a search per substring. null for none.
export function agentPattern(agents) {
  if (agents.length === 0) return null;
  return new RegExp(agents.map((a) => a.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|"), "i");
}

// Whether the User-Agent holds one of the pattern's substrings.
export function deniedAgent(pattern, ua) {
  return pattern !== null && ua !== null && pattern.test(ua);
}

// Whether a request comes from a browser or a crawler, which the answer's
// X-Robots-Tag is for: it accepts HTML, or its User-Agent is a browser's
// (crawlers' start with Mozilla/ too) or names itself a bot. Registry
// clients (docker/, containerd/, containers/, skopeo/, Helm/, Go's
// default) are none of these.
export function crawler(acceptsHtml, ua) {
  return acceptsHtml || (ua !== null && (ua.startsWith("Mozilla/") || /bot|crawl|spider|scan/i.test(ua)));
}

// An address as its family and bits ("4:0110..." or "6:0010..."; an
// IPv4-mapped IPv6 address as IPv4), "" when it is not an address.
export function addressBits(ip) {
  if (typeof ip !== "string" || ip.length > 45) return "";
  if (!ip.includes(":")) {
    const b = v4Bits(ip);
    return b === "" ? "" : "4:" + b;
  }
  // A dotted IPv4 tail stands for the last two groups.
  let s = ip, tail = "";
  const c = s.lastIndexOf(":");
  if (s.includes(".", c)) {
    tail = v4Bits(s.slice(c + 1));
    if (tail === "") return "";
    s = s.slice(0, c + 1) + "0:0";
  }
  const halves = s.split("::");
  if (halves.length > 2) return "";
  const head = halves[0] === "" ? [] : halves[0].split(":");
  let groups = head;
  if (halves.length === 2) {
    const rest = halves[1] === "" ? [] : halves[1].split(":");
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return "";
    groups = [...head, ...Array(fill).fill("0"), ...rest];
  }
  if (groups.length !== 8) return "";
  let bits = "";
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return "";
    bits += parseInt(g, 16).toString(2).padStart(16, "0");
  }
  if (tail !== "") bits = bits.slice(0, 96) + tail;
  return bits.startsWith("0".repeat(80) + "1".repeat(16)) ? "4:" + bits.slice(96) : "6:" + bits;
}

function v4Bits(s) {
  const parts = s.split(".");
  if (parts.length !== 4) return "";
  let bits = "";
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || +p > 255) return "";
    bits += (+p).toString(2).padStart(8, "0");
  }
  return bits;
}

// Whether a client may use the mirror: its address in one of the policy's
// ranges, or its country among the policy's countries.
export function allowedClient(policy, ip, country) {
  if (typeof country === "string" && policy.countries.includes(country.toUpperCase())) return true;
  const bits = addressBits(ip);
  if (bits === "") return false;
  for (const r of policy.clients) if (bits.startsWith(r)) return true;
  return false;
}

// The key a rate limit counts a client by: its address, an IPv6 client by
// its /64 (one subscriber's usual allocation).
export function rateKey(ip) {
  const bits = addressBits(ip);
  return bits.startsWith("6:") ? bits.slice(0, 66) : bits;
}

const KEY = /^[A-Za-z0-9_-]{16,}$/;

// The keys of the secret's value; null when it is not set or any is not a
// key (the entry then answers 503, saying so).
export function keysOf(value) {
  if (typeof value !== "string") return null;
  const keys = value.split(",").map((k) => k.trim());
  for (const k of keys) if (!KEY.test(k) || k.length > 256) return null;
  return keys;
}

// Which key `s` is (1, 2, ...), 0 for none. Every key is compared in full
// whatever `s` is, so the time taken says nothing about how much of `s`
// matched, nor which key it is.
export function whichKey(keys, s) {
  let found = 0;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    let d = k.length ^ s.length;
    for (let j = 0; j < k.length; j++) d |= k.charCodeAt(j) ^ s.charCodeAt(j);
    found = d === 0 && found === 0 ? i + 1 : found;
  }
  return found;
}

// `name` without a key as its first component; sets `got.n` to the key's
// number (the first found).
function unkeyName(keys, name, got) {
  const slash = name.indexOf("/");
  if (slash < 16) return name;
  const n = whichKey(keys, name.slice(0, slash));
  if (n === 0) return name;
  if (got.n === 0) {
    got.n = n;
    got.key = name.slice(0, slash);
  }
  return name.slice(slash + 1);
}

// A form or query (`a=1&scope=...`) with the key cut out of every
// repository scope and of docker search's `q`.
export function unkeyParams(keys, params, got) {
  if (params === "") return params;
  const parts = params.split("&");
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const scope = p.startsWith("scope=");
    if (!scope && !p.startsWith("q=")) continue;
    let v;
    try {
      v = decodeURIComponent(p.slice(scope ? 6 : 2).replace(/\+/g, " "));
    } catch {
      continue;
    }
    const out = scope ? v.split(" ").map((item) => {
      const a = item.indexOf(":"), b = item.lastIndexOf(":");
      if (a < 0 || b <= a || !item.startsWith("repository")) return item;
      return item.slice(0, a + 1) + unkeyName(keys, item.slice(a + 1, b), got) + item.slice(b);
    }).join(" ") : unkeyName(keys, v, got);
    if (out !== v) parts[i] = (scope ? "scope=" : "q=") + encodeURIComponent(out);
  }
  return parts.join("&");
}

// The request URL without its key: { url, n, key } with the key's number,
// or null when it carries none (or still holds a key once the copies are
// cut: a key in a place no client puts it is never passed on).
export function unlock(keys, url) {
  const p = url.indexOf("/", url.indexOf("//") + 2);
  if (p < 0) return null;
  const q = url.indexOf("?", p);
  const origin = url.slice(0, p);
  let path = q < 0 ? url.slice(p) : url.slice(p, q);
  let query = q < 0 ? "" : url.slice(q + 1);
  const got = { n: 0, key: "" };
  // /KEY/...
  const seg = path.indexOf("/", 1);
  const first = seg < 0 ? path.slice(1) : path.slice(1, seg);
  if (first.length >= 16) {
    const n = whichKey(keys, first);
    if (n !== 0) {
      got.n = n;
      got.key = first;
      path = seg < 0 ? "/" : path.slice(seg);
    }
  }
  // /v2/KEY/name/...
  if (path.startsWith("/v2/")) path = "/v2/" + unkeyName(keys, path.slice(4), got);
  // The mirror's token endpoint and docker search: in the parameters.
  if (path === "/token" || path.startsWith("/token/") || path === "/v1/search") query = unkeyParams(keys, query, got);
  if (got.n === 0) return null;
  const out = origin + path + (q < 0 ? "" : "?" + query);
  for (const k of keys) if (out.includes(k)) return null;
  return { url: out, n: got.n, key: got.key };
}

// Whether a form body still holds a key (after unkeyParams).
export function holdsKey(keys, s) {
  for (const k of keys) if (s.includes(k)) return true;
  return false;
}

// A URL the mirror hands out (a realm, a Location) on `origin`, with the
// client's key as its first path segment, so the client's next request
// carries it too. Other origins (a CDN's) are left as they are.
export function withKey(s, origin, key) {
  return s === "" ? s : s.split(origin + "/").join(origin + "/" + key + "/");
}

// Manifest and blob requests, which a rate limit counts.
export function pulls(url) {
  const p = url.indexOf("/", url.indexOf("//") + 2);
  const q = url.indexOf("?", p);
  const path = q < 0 ? url.slice(p) : url.slice(p, q);
  return path.startsWith("/v2/") && /\/(manifests|blobs)\/[^/]+$/.test(path);
}
