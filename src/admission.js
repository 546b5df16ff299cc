// Who may use the mirror: the entry's checks before the planner sees a
// request, from the policy the table compiler wrote after the table's
// string pool (src/route_table/policy.rs has its form). Pure functions of
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

// IPv4 dotted decimal (four numbers 0-255, no leading zeros) as a number
// below 2^32; -1 when it is not one. By hand, over char codes: it runs on
// every request of a table with a client list.
export function v4(s) {
  let n = 0, part = 0, digits = 0, dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
      continue;
    }
    if (c < 48 || c > 57 || (digits > 0 && part === 0)) return -1;
    part = part * 10 + c - 48;
    if (++digits > 3 || part > 255) return -1;
  }
  return dots === 3 && digits > 0 ? n * 256 + part : -1;
}

// IPv6 text (one `::` at most, an IPv4 tail allowed, no zone) as its eight
// 16-bit groups; null when it is not one.
export function v6(s) {
  if (s.length > 45) return null;
  const c = s.lastIndexOf(":");
  if (c < 0) return null;
  let tail = -1, body = s;
  if (s.indexOf(".", c) > 0) {
    tail = v4(s.slice(c + 1));
    if (tail < 0) return null;
    body = s.slice(0, c + 1) + "0:0";
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  let groups = head;
  if (halves.length === 2) {
    const rest = halves[1] === "" ? [] : halves[1].split(":");
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return null;
    groups = head.concat(Array(fill).fill("0"), rest);
  }
  if (groups.length !== 8) return null;
  const out = [];
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    out.push(parseInt(g, 16));
  }
  if (tail >= 0) {
    out[6] = Math.floor(tail / 65536);
    out[7] = tail % 65536;
  }
  return out;
}

// A client's address: a number for IPv4 (an IPv4-mapped IPv6 address
// too), eight groups for IPv6, null for anything else.
export function address(ip) {
  if (typeof ip !== "string" || ip === "") return null;
  if (!ip.includes(":")) {
    const n = v4(ip);
    return n < 0 ? null : n;
  }
  const g = v6(ip);
  if (g === null) return null;
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff ? g[6] * 65536 + g[7] : g;
}

// The policy's ranges ("4:bits", "6:bits": a family and its prefix's bits)
// as numbers to match against, made once per isolate.
export function ranges(clients) {
  const out = { v4: [], v6: [] };
  for (const r of clients) {
    const bits = r.slice(2);
    if (r.startsWith("4:")) {
      const len = bits.length;
      out.v4.push([len === 0 ? 0 : parseInt(bits.padEnd(32, "0"), 2), len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0]);
    } else {
      const groups = [];
      for (let i = 0; i < 8; i++) groups.push(parseInt(bits.slice(16 * i, 16 * i + 16).padEnd(16, "0") || "0", 2));
      out.v6.push([groups, bits.length]);
    }
  }
  return out;
}

// Whether an address (`address`) is in one of the ranges (`ranges`).
export function inRanges(r, a) {
  if (a === null) return false;
  if (typeof a === "number") {
    // Indexed, not destructured: this runs on every request.
    for (let i = 0; i < r.v4.length; i++) if (((a & r.v4[i][1]) >>> 0) === r.v4[i][0]) return true;
    return false;
  }
  for (const [net, len] of r.v6) {
    let ok = true;
    for (let i = 0; i < 8 && 16 * i < len; i++) {
      const bits = Math.min(16, len - 16 * i);
      const mask = (0xffff << (16 - bits)) & 0xffff;
      if ((a[i] & mask) !== net[i]) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}

// Whether a client may use the mirror: its address in one of the ranges, or
// else its country (read only then: `country()`, Cloudflare's
// request.cf.country) among the countries.
export function allowedClient(r, countries, ip, country) {
  return inRanges(r, address(ip)) || (countries.length !== 0 && inCountries(countries, country()));
}

// Whether a country (request.cf.country) is among the countries.
export function inCountries(countries, c) {
  return typeof c === "string" && countries.includes(c.toUpperCase());
}

// The key a rate limit counts a client by: its address, an IPv6 client by
// its /64 (one subscriber's usual allocation); "" without one.
export function rateKey(ip) {
  const a = address(ip);
  if (a === null) return "";
  return typeof a === "number" ? "4:" + a : "6:" + a.slice(0, 4).join(":");
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
  return keyAt(keys, s, 0, s.length);
}

// Which key `s` from `a` to `b` is, as whichKey, without cutting it out.
function keyAt(keys, s, a, b) {
  let found = 0;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    let d = k.length ^ (b - a);
    for (let j = 0; j < k.length; j++) d |= k.charCodeAt(j) ^ s.charCodeAt(a + j);
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

// The request URL without its key: { url, n, key, origin } with the key's
// number and the URL's origin (the mirror's own, which its answers' URLs
// carry the key back on), or null when it carries none (or still holds a
// key once the copies are cut: a key in a place no client puts it is never
// passed on). Allocates little: it runs on every request of a keyed table.
export function unlock(keys, url) {
  const p = url.indexOf("/", url.indexOf("//") + 2);
  if (p < 0) return null;
  const q = url.indexOf("?", p);
  // The usual request holds its key once, where a client put it: the first
  // path segment (a, b) or the first component after /v2/. Cut from the URL
  // as it is, without taking it apart, when no key is anywhere else in it;
  // any other URL goes the long way below, which finds the same.
  const end = q < 0 ? url.length : q;
  let a = p + 1, b = url.indexOf("/", a);
  if (b < 0 || b > end) b = end;
  let n = b - a >= 16 ? keyAt(keys, url, a, b) : 0;
  if (n === 0 && url.startsWith("/v2/", p)) {
    a = p + 4;
    b = url.indexOf("/", a);
    n = b > 0 && b < end && b - a >= 16 ? keyAt(keys, url, a, b) : 0;
  }
  if (n !== 0 && alone(keys, url, a, b)) {
    return { url: url.slice(0, b === end ? a : a - 1) + url.slice(b), n, key: url.slice(a, b), origin: url.slice(0, p) };
  }
  return unlockAnywhere(keys, url, p, q);
}

// unlock the long way: every place a client puts a key taken apart and
// cut, then the whole URL searched for any left.
export function unlockAnywhere(keys, url, p, q) {
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
  if ((path === "/token" || path.startsWith("/token/") || path === "/v1/search") && holdsKey(keys, query)) {
    query = unkeyParams(keys, query, got);
  }
  if (got.n === 0) return null;
  const out = origin + path + (q < 0 ? "" : "?" + query);
  for (const k of keys) if (out.includes(k)) return null;
  return { url: out, n: got.n, key: got.key, origin };
}

// Whether no key occurs in `url` outside a to b (the key there): a key's
// characters are never a slash or a question mark, which bound the two.
function alone(keys, url, a, b) {
  for (const k of keys) {
    const i = url.indexOf(k);
    if (i >= 0 && (i < a || i >= b || url.indexOf(k, b) >= 0)) return false;
  }
  return true;
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
  return s === "" ? s : s.replaceAll(origin + "/", origin + "/" + key + "/");
}

// Manifest and blob requests, which a rate limit counts.
export function pulls(url) {
  const p = url.indexOf("/", url.indexOf("//") + 2);
  const q = url.indexOf("?", p);
  const path = q < 0 ? url.slice(p) : url.slice(p, q);
  return path.startsWith("/v2/") && /\/(manifests|blobs)\/[^/]+$/.test(path);
}
