#!/usr/bin/env node
// The request machine as it ships, fuzzed with access keys: the committed
// entry and planner (dist/, through the deploy build of
// tests/entry/routes.fuzz.toml) run under Node with the runtime's fetch
// replaced by a recorder that answers every upstream request at random
// (tokens, challenges naming good and bad realms, redirects, throttling,
// failures). Requests are generated with the mirror's keys in every place a
// client puts one, in places none does, wrong keys, no key, clients inside
// and outside the allow list, and scanners. After each, it checks:
//   - a request without a valid key anywhere in it fetches nothing;
//   - no fetch carries a key (URL, headers, body), nor does any log line;
//   - the private route's secret goes only to https on its upstream's
//     domain (a discovered realm as location.rs allows it);
//   - a client outside the allow list, a denied agent and a request over
//     the rate limit fetch nothing;
//   - every answer is a Response (with X-Robots-Tag for a browser or
//     crawler), and an answer holds no key that neither the request nor
//     an upstream's answer brought (the entry puts back only the
//     request's own);
//   - a request with a valid key where clients put one is admitted (so the
//     checks above are not met by refusing everything).
//
//   node tests/entry/fuzz_entry.mjs [SECONDS] [SEED]
// Bounded by time (default 10 s) and by count (200,000 requests); prints
// the seed, and on a failure the request that broke it.
import { register } from "node:module";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const seconds = Number(process.argv[2] || 10);
const seed = Number(process.argv[3] || Date.now() % 2147483647);
const MAX_REQUESTS = 200000;

// A deterministic generator (mulberry32).
let state = seed >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(rand() * list.length)];

const K1 = "fuzzkey1-" + "A".repeat(12) + "x1";
const K2 = "fuzz_key2_" + "b".repeat(12) + "y2";
const WRONG = "fuzzkey1-" + "A".repeat(12) + "x2";
const KEYS = [K1, K2];
const SECRET = "robot:s3cret-canary-7f2a";
const BASIC = "Basic " + Buffer.from(SECRET).toString("base64");

// The deploy build of the fuzz table, with the committed planner.
const out = mkdtempSync(join(tmpdir(), "fuzz-entry-"));
execFileSync("node", [join(ROOT, "scripts/build.mjs"), "--table", "tests/entry/routes.fuzz.toml", "--out", out],
  { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
register(pathToFileURL(join(ROOT, "tests/entry/module_hooks.mjs")));

// What the entry logs.
const logged = [];
console.log = (...a) => logged.push(a.join(" "));
console.warn = (...a) => logged.push(a.join(" "));

// The runtime's fetch: recorded, answered at random.
let fetches = [];
// What the upstreams' answers to this request's fetches said in their
// headers (one of the challenges names a realm with a key in it: an
// upstream's own text, which a relay passes on as it came).
let said = "";
const REALMS = [
  "https://auth.private.example/token", "https://private.example/token", "http://auth.private.example/token",
  "https://evil.example/token", "https://user:pw@auth.private.example/token", "/token", "token",
  "https://auth.private.example/token?scope=repository:x:push", "https://auth.private.example.evil.example/t",
  "https://auth.hub.example/token", "https://evil.example/t?service=" + K1,
];
globalThis.fetch = async (url, init = {}) => {
  const headers = {};
  if (init.headers) for (const [k, v] of new Headers(init.headers)) headers[k] = v;
  const f = { url: String(url), method: init.method || "GET", headers, body: typeof init.body === "string" ? init.body : "" };
  fetches.push(f);
  const r = rand();
  if (r < 0.05) throw new TypeError("fetch failed");
  if (r < 0.08) throw new DOMException("The operation timed out.", "TimeoutError");
  const u = new URL(f.url);
  if (u.pathname.includes("token")) {
    if (rand() < 0.8) return Response.json({ token: "tok." + Math.floor(rand() * 1e6), expires_in: 300 });
    return new Response("{}", { status: pick([401, 403, 500]) });
  }
  const s = pick([200, 200, 401, 401, 307, 429, 502, 404]);
  const h = new Headers({ "content-type": "application/json" });
  if (s === 401) {
    const realm = pick(REALMS);
    h.set("www-authenticate", `Bearer realm="${realm}",service="${pick(["registry.private.example", "x"])}"` +
      (rand() < 0.5 ? `,scope="repository:${pick(["team/app", "library/busybox"])}:pull"` : ""));
  }
  if (s === 307) h.set("location", pick(["https://cdn.example/blob?sig=1", "/v2/team/app/blobs/sha256:" + "a".repeat(64),
    "https://registry.private.example/v2/team/app/manifests/1"]));
  if (s === 200 && u.pathname.includes("/manifests/")) h.set("docker-content-digest", "sha256:" + "b".repeat(64));
  said += JSON.stringify([...h]);
  return new Response(s === 429 ? '{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}' : "{}", { status: s, headers: h });
};

const worker = (await import(pathToFileURL(join(out, "index.js")))).default;

let limited = false;
const env = {
  MIRROR_KEYS: `${K1}, ${K2}`,
  PRIVATE_CREDENTIALS: SECRET,
  MIRROR_RATE: { limit: async () => ({ success: !limited }) },
};

// --- requests ---
const HOSTS = ["m.test", "hub.m.test", "private.m.test", "other.test", "m.test:8443"];
const NAMES = ["busybox", "library/busybox", "team/app", "docker.io/library/busybox", "private.example/team/app",
  "private.example/library/x", "nope.io/x", "a/b/c/d"];
const REFS = ["latest", "1.0", "sha256:" + "c".repeat(64), ".bad", "sha256:zz"];
const ENC = (s) => encodeURIComponent(s);

// A request: its URL, method, headers and body, and whether a valid key
// sits where clients put one (`keyed`).
function generate() {
  const key = rand() < 0.12 ? WRONG : rand() < 0.5 ? K1 : K2;
  const where = pick(["none", "segment", "name", "scope", "form", "search", "segment+name", "segment+scope", "odd", "odd",
    "junk"]);
  const host = pick(HOSTS);
  const name = pick(NAMES);
  const ref = pick(REFS);
  let path, query = "", method = pick(["GET", "GET", "HEAD"]), body;
  const kind = pick(["ping", "manifest", "blob", "tags", "token", "search", "page", "robots", "catalog"]);
  const keyedName = where === "name" || where === "segment+name" ? `${key}/${name}` : name;
  const scopeName = where === "scope" || where === "form" || where === "segment+scope" ? `${key}/${name}` : name;
  switch (kind) {
    case "ping": path = "/v2/"; break;
    case "manifest": path = `/v2/${keyedName}/manifests/${ref}`; break;
    case "blob": path = `/v2/${keyedName}/blobs/sha256:${"d".repeat(64)}`; break;
    case "tags": path = `/v2/${keyedName}/tags/list`; break;
    case "catalog": path = "/v2/_catalog"; break;
    case "search": path = "/v1/search"; query = `q=${ENC(where === "search" ? `${key}/busybox` : "busybox")}&n=25`; break;
    case "page": path = "/"; break;
    case "robots": path = "/robots.txt"; break;
    default: {
      path = pick(["/token", "/token/docker.io", "/token/private.example"]);
      const scopes = `repository:${scopeName}:${pick(["pull", "pull,push", "*"])}` + (rand() < 0.3 ? ` repository:${scopeName}:pull` : "");
      if (where === "form" || rand() < 0.3) {
        method = "POST";
        body = `grant_type=${pick(["password", "refresh_token"])}&username=u&password=p&service=x&scope=${ENC(scopes)}`;
        if (rand() < 0.3) query = `scope=${ENC(`repository:${scopeName}:pull`)}`;
      } else {
        query = `service=x&scope=${ENC(scopes)}` + (rand() < 0.2 ? "&account=alice" : "");
      }
    }
  }
  if (where.startsWith("segment")) path = `/${key}${path}`;
  if (where === "odd") {
    // A key where no client puts one.
    const odd = pick([`x=${key}`, `ns=${key}`, `scope=repository:library/${key}:pull`]);
    query = query ? `${query}&${odd}` : odd;
    if (rand() < 0.5) path = `/${key}${path}`;
  }
  if (where === "junk") {
    const chars = "abcAZ09-_/.:%?&=+ " + key.slice(0, 5);
    let junk = "";
    const n = Math.floor(rand() * 40);
    for (let i = 0; i < n; i++) junk += chars[Math.floor(rand() * chars.length)];
    path = "/" + (rand() < 0.5 ? key + "/" : "") + encodeURI(junk);
  }
  const url = `https://${host}${path}${query ? "?" + query : ""}`;
  const headers = {};
  if (rand() < 0.3) headers.authorization = pick(["Bearer tok.1", "Basic YWxpY2U6d29uZGVybGFuZA=="]);
  if (rand() < 0.2) headers.accept = "text/html";
  headers["user-agent"] = pick([...Array(18).fill("docker/27.0 go/go1.22"), "Mozilla/5.0 (compatible; NetcraftSurveyAgent/1.0)",
    "Mozilla/5.0 (compatible; Googlebot/2.1)"]);
  const inside = rand() < 0.85;
  const ip = inside ? pick(["203.0.113.9", "2001:db8:1::5", "::ffff:203.0.113.7"]) : pick(["198.51.100.1", "2001:db9::1", "", "junk"]);
  if (ip !== "") headers["cf-connecting-ip"] = ip;
  const country = !inside && rand() < 0.3 ? "CN" : pick(["DE", "US", undefined]);
  const standard = ["segment", "name", "scope", "form", "search", "segment+name", "segment+scope"].includes(where);
  const placed = standard && (where !== "name" && where !== "segment+name" || ["manifest", "blob", "tags"].includes(kind)) &&
    (where !== "scope" && where !== "segment+scope" && where !== "form" || kind === "token") &&
    (where !== "form" || method === "POST") && (where !== "search" || kind === "search");
  return { url, method, headers, body, country, key, valid: key !== WRONG, placed, where, kind,
    allowedClient: inside || country === "CN", scanner: headers["user-agent"].includes("Netcraft") };
}

function fail(why, req, extra) {
  console.error(`fuzz_entry: FAIL (seed ${seed}): ${why}\nrequest: ${JSON.stringify(req)}\n${extra || ""}`);
  rmSync(out, { recursive: true, force: true });
  process.exit(1);
}

const has = (s, list) => list.some((k) => s.includes(k));
const t0 = Date.now();
let n = 0, admitted = 0, fetched = 0, secretSent = 0;
while (n < MAX_REQUESTS && Date.now() - t0 < seconds * 1000) {
  n++;
  const g = generate();
  limited = rand() < 0.05;
  fetches = [];
  said = "";
  logged.length = 0;
  const req = new Request(g.url, { method: g.method, headers: g.headers, body: g.body });
  if (g.country !== undefined) Object.defineProperty(req, "cf", { value: { country: g.country } });
  let res;
  try {
    res = await worker.fetch(req, env);
  } catch (e) {
    fail(`the entry threw ${e && e.stack}`, g);
  }
  if (!(res instanceof Response)) fail("no Response", g);
  // X-Robots-Tag on every answer to a browser or crawler (and on the
  // mirror's own answers, which the e2e suite checks).
  const browser = g.headers.accept === "text/html" || g.headers["user-agent"].startsWith("Mozilla/");
  if (browser && res.headers.get("x-robots-tag") !== "noindex, nofollow") fail("no X-Robots-Tag", g, [...res.headers].join("\n"));
  // The mirror's own answers (no fetch made them) carry it whoever asks,
  // and a challenge of theirs names this request's host: the headers of an
  // answer the entry kept from an earlier request (edge.js ownHeaders) are
  // never another host's or another key's.
  if (fetches.length === 0) {
    if (res.headers.get("x-robots-tag") !== "noindex, nofollow") fail("no X-Robots-Tag on the mirror's own answer", g, [...res.headers].join("\n"));
    const challenge = res.headers.get("www-authenticate");
    if (challenge !== null && !challenge.startsWith(`Bearer realm="https://${new URL(g.url).host}/`)) {
      fail("a challenge for another host", g, challenge);
    }
  }
  const text = g.method === "HEAD" ? "" : await res.text();
  const inRequest = g.url + (g.body || "");
  const broughtValid = KEYS.some((k) => inRequest.includes(k));
  if (fetches.length > 0) {
    fetched++;
    if (!broughtValid) fail("a request without a valid key reached an upstream", g, JSON.stringify(fetches));
    if (!g.allowedClient) fail("a client outside the allow list reached an upstream", g, JSON.stringify(fetches));
    if (g.scanner) fail("a denied agent reached an upstream", g, JSON.stringify(fetches));
    if (limited && /\/(manifests|blobs)\/[^/]+$/.test(new URL(g.url).pathname)) fail("a request over the rate limit was fetched", g);
  }
  for (const f of fetches) {
    const all = f.url + JSON.stringify(f.headers) + f.body;
    if (has(all, [K1, K2, WRONG])) fail("a key in a fetch", g, JSON.stringify(f));
    const sends = f.headers.authorization === BASIC || f.body.includes("s3cret-canary");
    if (sends) {
      secretSent++;
      const u = new URL(f.url);
      if (u.protocol !== "https:" || !(u.hostname === "private.example" || u.hostname.endsWith(".private.example")) || u.username) {
        fail("the route's secret went where it does not belong", g, JSON.stringify(f));
      }
    }
    if (f.headers.authorization !== undefined && has(f.headers.authorization, [SECRET])) fail("the raw secret in a header", g);
  }
  if (logged.some((l) => has(l, [K1, K2, WRONG, SECRET]))) fail("a key or secret in a log line", g, logged.join("\n"));
  const answer = text + JSON.stringify([...res.headers]);
  for (const k of KEYS) {
    if (answer.includes(k) && !inRequest.includes(k) && !said.includes(k)) {
      fail("an answer holds a key that neither the request nor an upstream brought", g, answer + "\n" + JSON.stringify(fetches));
    }
  }
  if (answer.includes(SECRET)) fail("an answer holds the secret", g, answer);
  const keyMissing = res.status === 404 && text.includes("access key in the URL");
  if (g.placed && g.valid && g.allowedClient && !g.scanner && !limited && !keyMissing) admitted++;
  if (g.placed && g.valid && g.allowedClient && !g.scanner && !(limited && res.status === 429) && keyMissing) {
    fail("a valid key where clients put one was refused", g, text);
  }
}
rmSync(out, { recursive: true, force: true });
if (admitted < n / 20 || fetched < n / 20 || secretSent === 0) {
  console.error(`fuzz_entry: too little got through to mean anything (seed ${seed}): ${n} requests, ${admitted} admitted with ` +
    `a key, ${fetched} fetched, ${secretSent} carried the route's secret`);
  process.exit(1);
}
console.log = console.error;
console.error(`fuzz_entry: ${n} requests in ${((Date.now() - t0) / 1000).toFixed(1)} s (seed ${seed}): ${admitted} admitted with a ` +
  `key, ${fetched} reached an upstream, ${secretSent} carried the route's secret to its realm; no key in any fetch or log line`);
