// The worker's entry: carries out what the wasm planner decides.
//
// Rust decides, the runtime does the I/O. For each request this module hands
// the planner the request's facts in one synchronous call and gets one action
// back, as bytes in the wasm's I/O buffer (src/wire.rs has the layout):
// answer locally, read the body or a secret, fetch, or relay the upstream's
// response. Numbers are read as bytes; only the fields handed to the runtime
// become strings. After a fetch it calls again only when the action asked
// for the status it got; otherwise the response goes to the client as the
// runtime gave it, body streaming through, re-wrapped only when it carries a
// header that must not reach clients, the planner names the fallback that
// answered, or a browser or crawler asked. A request the planner answers locally is answered without
// a promise. Actions for inputs that repeat are remembered (the memo
// below), so a repeated request skips the wasm call; the planner is pure,
// so that changes no answer. Nothing here looks at a host or a challenge,
// nor at a path or a scope but to admit the request (below: the table's
// agents, clients, access keys and rate limit, src/admission.js); it holds
// data only: the request headers passed upstream, the response headers
// dropped, and the table of error messages (generated from
// src/messages.rs), from which it writes the OCI error bodies the planner
// names by number. Every answer the mirror writes itself, and every answer
// to a browser or crawler, carries X-Robots-Tag: noindex, nofollow (a
// registry client's relayed manifests and blobs go as the runtime gave
// them: re-wrapping each would cost more CPU than the rest of the request's
// JavaScript); /robots.txt disallows everything, whatever the table says.
//
// The route table is data the deploy build wrote beside this module
// (table.bin, from routes.toml; page.html, the browser page): it is copied
// into the planner's memory once per instance, so one committed planner
// serves every table.
import module from "./index_bg.wasm";
import TABLE from "./table.bin";
import PAGE from "./page.html";
import MESSAGES, { AGENT_DENIED, CLIENT_DENIED, KEY_MISSING, KEY_PING, KEYS_UNSET, MIRROR_LIMIT } from "messages";
import {
  address, agentPattern, crawler, inCountries, inRanges, deniedAgent, holdsKey, keysOf, policyOf, pulls, ranges, rateKey, unkeyParams, unlock,
  withKey,
} from "./admission.js";
import { tokenOf } from "./token_answer.js";

// Request headers passed upstream (an allow-list: cookies, cf-*,
// x-forwarded-* and hop-by-hop headers stay behind). Authorization and Accept
// are read for the facts anyway; these are the others.
const FORWARDED = ["if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "range",
  "user-agent"];
// Response headers never passed to clients. The hop-by-hop ones (Connection,
// Keep-Alive, TE, Trailer, Upgrade) need no work here: workerd drops them
// when it sends the response (tests/e2e checks that they never arrive).
const DROPPED = ["set-cookie", "proxy-authenticate"];
// How long an upstream may take to send response headers.
const TIMEOUT_MS = 20000;
const CAP = 65536;
// The planner is a pure function of its input: the same request facts (and
// upstream answer) always give the same action. So actions of inputs that
// repeat are kept and reused, and a repeated request (every pull's /v2/
// ping, a popular tag, a layer many clients fetch, the upstream's challenge
// for it) costs a lookup instead of a call into wasm.
// A request seen once must cost nothing more than without the memo, and most
// are seen once: so an input is kept only the second time it comes. The
// entry hashes each input while it writes it into wasm memory; SEEN
// remembers the hashes of recent inputs (a fixed array of numbers: nothing
// to allocate, nothing for the garbage collector to keep alive), and only an
// input whose hash is already there gets a key (a string of its parts) to
// look up in the memo (a Map) or to go into it. Only inputs without secrets
// or bodies are kept (no credential and no password stays in the memo),
// each key and action at most MEMO_KEY bytes, MEMO_BYTES in all; the memo is
// emptied when full. MEMO is false only in builds that must run the planner
// on every request (the soak's, which samples linear memory;
// scripts/build-worker.sh, EDGE_MEMO=0).
const SEEN_SLOTS = 4096;
const SEEN = new Int32Array(SEEN_SLOTS);
const memo = new Map();
let memoBytes = 0;

const enc = new TextEncoder();
const dec = new TextDecoder();
let wasm, at, view;
// A planner instance with the route table in it: its exports are plain
// functions of numbers (src/edge.rs), and it imports nothing. A table
// larger than the planner's buffer (64 KiB; the build refuses one) is not
// copied, and the planner, finding none, answers every request with a 500
// saying so.
function start() {
  wasm = new WebAssembly.Instance(module, {}).exports;
  const n = TABLE.byteLength;
  if (n <= 65536) new Uint8Array(wasm.memory.buffer, wasm.table() >>> 0, n).set(new Uint8Array(TABLE));
  wasm.load(n);
  at = wasm.io() >>> 0;
  view = new Uint8Array(wasm.memory.buffer, at, CAP);
}
start();
// Whether the table logs requests, and client addresses (read once per
// isolate). Only then are times and addresses read per request: the
// planner says what a request was about (route, kind, repository), and the
// entry adds what it saw and writes the line.
const LOGS = wasm.logs() !== 0;
const CLIENT = wasm.client_address() !== 0;
// Who may use the mirror (the table's policy, after its string pool; null
// when it admits everyone and denies no agent).
const POLICY = policyOf(new Uint8Array(TABLE));
const AGENTS = POLICY !== null && POLICY.agents !== undefined ? agentPattern(POLICY.agents) : null;
const RANGES = POLICY !== null && POLICY.clients !== undefined ? ranges(POLICY.clients) : null;
// The keys, read from the secret once per `env` (the same object for every
// request of an isolate; a new secret comes with a new isolate).
let keyEnv = null;
let KEYS = null;

// The last action: its bytes (the I/O buffer, or the memo's copy of its
// first four), read synchronously right after the call that made it,
// before anything else can run. OFF holds where its fields start (each 2
// bytes after the previous one ends); TEXTS, for an action from the memo,
// its fields as the strings they were decoded to when it went in (null
// for an action fresh from the planner).
let act = view;
let TEXTS = null;
const OFF = new Int32Array(8);
let FIELDS = 0;
let hash = 0;

// Writes `s` at `i` of the buffer, hashing it: ASCII (nearly every field)
// byte by byte, without an API call; anything else through the encoder.
// Returns where it ends (past CAP when it does not fit).
function put(s, i) {
  const n = s.length;
  if (i + n <= CAP) {
    let j = 0;
    for (; j < n; j++) {
      const c = s.charCodeAt(j);
      if (c > 127) break;
      view[i + j] = c;
      hash = Math.imul(hash ^ c, 16777619);
    }
    if (j === n) return i + n;
    for (; j < n; j++) hash = Math.imul(hash ^ s.charCodeAt(j), 16777619);
  }
  const { read, written } = enc.encodeInto(s, view.subarray(i, CAP));
  return read < n ? CAP + 1 : i + written;
}

// Writes field `s` at `i` and its length at `k`; returns where it ends
// (past CAP, and every later field with it, when it does not fit).
function field(s, i, k) {
  if (i > CAP) return i;
  const e = s === "" ? i : put(s, i);
  const n = e - i;
  view[k] = n;
  view[k + 1] = n >> 8;
  hash = Math.imul(hash ^ n, 16777619);
  return e;
}

// One synchronous step: the request's facts (and the upstream's answer to
// the last fetch) in, the action out (in `act`, its fields' offsets in
// OFF); from the memo when `keep` says the input may be kept. The fields
// after `status` are strings ("" when empty); FLAGS already says whether
// secret and body are there.
function call(flags, method, url, phase, status, trail, challenge, third, secret, upstream, body, keep) {
  // Constants inside the functions that use them: esbuild inlines those,
  // not a bundle's top-level ones.
  const MEMO_KEY = 2048;
  const MEMO_BYTES = 256 * 1024;
  const IN_HEADER = 20;
  if (view.length === 0) view = new Uint8Array(wasm.memory.buffer, at, CAP);
  keep = MEMO && keep;
  hash = Math.imul(-2128831035 ^ (flags | method << 8 | phase << 16), 16777619);
  hash = Math.imul(hash ^ status, 16777619);
  view[0] = flags;
  view[1] = method;
  view[2] = phase;
  view[4] = status;
  view[5] = status >> 8;
  let i = field(url, IN_HEADER, 6);
  i = field(trail, i, 8);
  i = field(challenge, i, 10);
  i = field(third, i, 12);
  i = field(secret, i, 14);
  i = field(upstream, i, 16);
  i = field(body, i, 18);
  let key;
  if (keep && i <= MEMO_KEY) {
    // Only an input seen before can be in the memo: a first-seen one costs
    // one array read here, and builds no key.
    const slot = hash & (SEEN_SLOTS - 1);
    if (SEEN[slot] !== hash) {
      SEEN[slot] = hash;
    } else {
      key = flags + "," + method + "," + phase + "," + status + "," + url + "\n" + trail + "\n" + challenge + "\n" + third;
      const kept = memo.get(key);
      if (kept !== undefined) {
        act = kept[0];
        TEXTS = kept[1];
        return act[0];
      }
    }
  }
  let n;
  try {
    n = wasm.step(i) >>> 0;
  } catch (e) {
    // A trap leaves nothing in flight (each call is complete in itself):
    // start a fresh instance for the next request.
    start();
    throw e;
  }
  if (view.length === 0) view = new Uint8Array(wasm.memory.buffer, at, CAP);
  act = view;
  TEXTS = null;
  const op = fields(n);
  if (key !== undefined && n <= MEMO_KEY) {
    // Kept decoded: a hit then costs no decoding (the memo's gain, beside
    // the wasm call, on a repeated proxied request).
    const texts = [];
    for (let k = 0; k < FIELDS; k++) texts.push(text(k));
    const size = key.length + 2 * n;
    if (memoBytes + size > MEMO_BYTES) {
      memo.clear();
      memoBytes = 0;
    }
    memo.set(key, [view.slice(0, 4), texts]);
    memoBytes += size;
  }
  return op;
}

// Finds where the action's fields start (OFF), and returns its first byte.
function fields(n) {
  const b = act;
  let i = 4, k = 0;
  while (i < n && k < 7) {
    OFF[k++] = i + 2;
    i += 2 + (b[i] | b[i + 1] << 8);
  }
  FIELDS = k;
  OFF[k] = i + 2;
  return b[0];
}

// Field `k` of the action as a string ("" past its last field).
function text(k) {
  if (TEXTS !== null) return k < TEXTS.length ? TEXTS[k] : "";
  if (k >= FIELDS) return "";
  const s = OFF[k], e = OFF[k + 1] - 2;
  return e > s ? dec.decode(act.subarray(s, e)) : "";
}

// The client's allow-listed headers.
function forwarded(h, authorization, accept) {
  const out = new Headers();
  if (authorization !== null) out.set("authorization", authorization);
  if (accept !== null) out.set("accept", accept);
  for (const name of FORWARDED) {
    const v = h.get(name);
    if (v !== null) out.set(name, v);
  }
  return out;
}

// At most max + 1 bytes of a request's or response's body (the planner
// judges the length): all of it at once when its declared length is within
// max, else chunk by chunk until more than max has arrived, the rest left
// unread. The declared length is read first: a body read whole by text()
// never gets a JavaScript stream object (reading `body` makes one, which
// workerd then has to wrap and later finalize).
async function readBody(request, max) {
  const length = request.headers.get("content-length");
  if (length !== null && +length <= max) return request.text();
  if (request.body === null) return "";
  const reader = request.body.getReader();
  const parts = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    n += value.length;
    if (n > max) {
      reader.cancel();
      break;
    }
  }
  const all = new Uint8Array(n);
  let i = 0;
  for (const p of parts) {
    all.set(p, i);
    i += p.length;
  }
  return dec.decode(all.subarray(0, max + 1));
}

// An OCI error body: message `m` of the table, naming `subject`, followed by
// the upstream's own errors when `theirs` (its body) is an OCI error list,
// or carrying it as the detail when it is something else.
function oci(m, subject, theirs) {
  const e = MESSAGES[m];
  const head = '{"errors":[{"code":"' + e[1] + '","message":' + JSON.stringify(subject === "" ? e[2] : e[2] + ": " + subject) +
    ',"detail":';
  if (theirs === undefined) return head + "null}]}";
  const t = theirs.trimStart();
  return t.startsWith('{"errors":[') && t.endsWith("}") ? head + "null}," + t.slice(11) : head + JSON.stringify(t) + "}]}";
}

// The upstream's response for the client. `location`, `error` (the
// mirror's message number, 255 for none, with `subject`, in front of the
// upstream's errors from `theirs`, its body as read) and `challenges` (one
// per line) replace the upstream's when given; `source` names the fallback
// that answered. `kx`: the request's key, which the mirror's own URLs among
// them carry. Re-wrapped (which costs workerd 15-20 us a response: the
// benchmark) only for a reason: something to replace or drop, or a
// browser or crawler asking (`req`, `flags`, `ua`: the request's headers,
// facts and User-Agent, undefined when admission did not read it), whose
// answer gets X-Robots-Tag; a registry client's manifest or blob goes as
// the runtime gave it.
function relay(r, location, error, subject, source, challenges, theirs, kx, req, flags, ua) {
  if (location === "" && error === 255 && source === "" && challenges === "") {
    let clean = true;
    const rh = r.headers;
    for (const name of DROPPED) {
      if (rh.has(name)) {
        clean = false;
        break;
      }
    }
    if (clean && (flags & 2) === 0 && !crawlerAgent(ua !== undefined ? ua : req.get("user-agent"))) return r;
  }
  const json = error !== 255 ? oci(error, subject, theirs) : "";
  const out = new Response(json !== "" ? json : r.body, r);
  const h = out.headers;
  for (const name of DROPPED) h.delete(name);
  h.set("x-robots-tag", "noindex, nofollow");
  if (json !== "") {
    h.delete("content-length");
    h.delete("content-encoding");
    h.set("content-type", "application/json");
  }
  if (location !== "") h.set("location", kx === null ? location : withKey(location, kx.origin, kx.key));
  if (source !== "") h.set("x-mirror-source", source);
  if (challenges !== "") {
    // The first replaces the upstream's; any others follow it.
    const list = (kx === null ? challenges : withKey(challenges, kx.origin, kx.key)).split("\n");
    for (let i = 0; i < list.length; i++) h[i ? "append" : "set"]("www-authenticate", list[i]);
    h.set("docker-distribution-api-version", "registry/2.0");
  }
  return out;
}

// One JSON line for the Workers log: what the planner said the request was
// about (`about`: the route's name, the kind of request, the fallback that
// answered or "", and the repository, tab-separated, the repository last and
// as it is), the status the client gets, the last upstream exchange (its
// status, 0 when the fetch failed, or none), which key the request carried
// (its position in the secret; never the key), why the entry refused it
// (`refused`), and the client's address when the table asks for it.
function log(about, status, upStatus, redirected, ms, h, kx, refused) {
  const f = about.split("\t", 3);
  let line = '{"route":' + JSON.stringify(f[0]) + ',"kind":"' + f[1] + '","repository":' +
    JSON.stringify(about.slice(f[0].length + f[1].length + f[2].length + 3)) +
    (f[2] !== "" ? ',"source":"' + f[2] + '"' : "") + ',"status":' + status + (upStatus < 0 ? ',"upstream":null'
    : ',"upstream":' + upStatus + ',"redirected":' + redirected + ',"ms":' + ms);
  if (kx !== null) line += ',"key":' + kx.n;
  if (refused !== "") line += ',"refused":"' + refused + '"';
  if (CLIENT) line += ',"client":' + JSON.stringify(h.get("cf-connecting-ip") || "");
  console.log(line + "}");
}

// The headers of a local answer: its challenge (with the request's key put
// back, `kx` not null), Allow and memory probe ("" for none) with the fixed
// ones. Two answers are kept, the last with a challenge (the ping's 401,
// the commonest local answer) and the last without (errors), so errors
// between pings do not cost the ping its kept headers. A Headers object
// when the kept answer of its sort had the same (every /v2/ ping of a host
// does): workerd copies one into a Response in C++, about 0.5 us less than
// reading four names and values out of a plain object, which is what
// X-Robots-Tag, the fourth, costs. Built on the second such answer, since
// building one and copying it costs 2.5 us more than the plain object: an
// answer whose headers change every time (a challenge carries the scope)
// pays only the comparisons. Compared before the key is put back, so a
// repeat with a key skips withKey (a replaceAll and the strings it joins,
// which workerd then flattens).
function ownHeaders(challenge, allow, probe, kx) {
  const key = kx === null ? null : kx.key, origin = kx === null ? null : kx.origin;
  const o = challenge !== "" ? OWN_CHALLENGE : OWN_OTHER;
  if (challenge === o.challenge && allow === o.allow && probe === o.probe && key === o.key && origin === o.origin) {
    if (o.made === null) o.made = new Headers(o.plain);
    return o.made;
  }
  o.challenge = challenge;
  o.allow = allow;
  o.probe = probe;
  o.key = key;
  o.origin = origin;
  o.made = null;
  o.plain = plainHeaders(kx === null ? challenge : withKey(challenge, origin, key), allow, probe);
  return o.plain;
}
const OWN_CHALLENGE = { challenge: null, allow: null, probe: null, key: null, origin: null, made: null, plain: null };
const OWN_OTHER = { challenge: null, allow: null, probe: null, key: null, origin: null, made: null, plain: null };

function plainHeaders(challenge, allow, probe) {
  const headers = { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0",
    "x-robots-tag": "noindex, nofollow" };
  if (challenge !== "") headers["www-authenticate"] = challenge;
  if (allow !== "") headers["allow"] = allow;
  if (probe !== "") headers["x-wasm-memory-pages"] = probe;
  return headers;
}

// A local answer (the planner's A or P action) as a Response; undefined for
// any other action. The log line, when the table logs, with the last
// upstream exchange (`upStatus` -1: none).
function answer(op, h, upStatus, redirected, ms, kx) {
  // The actions (src/wire.rs): the first byte of the planner's answer.
  const ANSWER = 65; // A: a local answer
  const PAGE_ANSWER = 80; // P: the browser page
  if (op === ANSWER) {
    const m = act[1];
    const challenge = text(0);
    const headers = ownHeaders(challenge, text(1), text(2), kx);
    const status = MESSAGES[m][0];
    if (LOGS) log(text(3), status, upStatus, redirected, ms, h, kx, "");
    return new Response(oci(m, text(4), undefined), { status, headers });
  }
  if (op === PAGE_ANSWER) {
    if (LOGS) log(text(0), 200, upStatus, redirected, ms, h, kx, "");
    return new Response(kx === null ? PAGE : PAGE.split("{KEY}").join(kx.key),
      { headers: { "content-type": "text/html; charset=utf-8", "x-robots-tag": "noindex, nofollow" } });
  }
  return undefined;
}

// The entry's own answer (a refusal, or the misconfigured keys' 503):
// message `m` naming `subject`, with `headers`; logged with why (and the
// key, when the request carried one).
function refuse(m, subject, h, refused, headers, kx = null) {
  const status = MESSAGES[m][0];
  if (LOGS) log("\t\t\t", status, -1, false, 0, h, kx, refused);
  return new Response(oci(m, subject, undefined), {
    status,
    headers: { "content-type": "application/json", "x-robots-tag": "noindex, nofollow", ...headers },
  });
}

export default {
  // Not async: a request the planner answers locally (the ping's 401, an
  // error) gets its Response at once, without a promise; the others go on
  // in `proceed`. A table with a policy admits the request first.
  fetch(request, env) {
    // The request's facts read once: each read is a call into the runtime.
    const h = request.headers;
    if (POLICY !== null) return admit(request, env, h);
    const url = request.url;
    return robotsPath(url) ? robots(h) : serve(request, env, h, request.method, url, null, undefined, undefined);
  },
};

// Where a URL's path starts.
function pathAt(url) {
  return url.indexOf("/", url.indexOf("//") + 2);
}

function robotsPath(url) {
  const p = pathAt(url);
  return url.startsWith("/robots.txt", p) && (url.length === p + 11 || url.charCodeAt(p + 11) === 63);
}

// The table's policy, in order: a denied agent gets its 403 before
// anything else; then a client outside the allow list its 403; robots.txt
// is everyone's; then the access key (cut out of the URL, or the same 404
// for every path: a 401 for /v2/, whose challenge clients need before they
// ask for a name with the key in it); then the rate limit, for manifests
// and blobs. `kx` carries the key to the answers (the mirror's own URLs
// in them get it back) and its number to the log line.
function admit(request, env, h) {
  const P = POLICY;
  let ua;
  if (AGENTS !== null) {
    ua = h.get("user-agent");
    if (ua !== lastAgent) {
      lastAgent = ua;
      lastDenied = deniedAgent(AGENTS, ua);
    }
    if (lastDenied) return refuse(AGENT_DENIED, "", h, "agent", {});
  }
  if (RANGES !== null) {
    const ip = h.get("cf-connecting-ip");
    if (ip !== lastAddress) {
      lastAddress = ip;
      lastInRange = inRanges(RANGES, address(ip));
    }
    // In a range: admitted without reading the country.
    if (!lastInRange) {
      const country = request.cf ? request.cf.country : undefined;
      if (!inCountries(P.countries, country)) {
        return refuse(CLIENT_DENIED, (ip || "no address") + ", country " + (country || "unknown"), h, "client", {});
      }
    }
  }
  let url = request.url;
  if (robotsPath(url)) return robots(h);
  const method = request.method;
  let kx = null;
  if (P.access !== undefined) {
    if (env !== keyEnv) {
      keyEnv = env;
      KEYS = keysOf(env[P.access]);
    }
    const keys = KEYS;
    if (keys === null) return refuse(KEYS_UNSET, P.access, h, "", {});
    const u = unlock(keys, url);
    const post = method === "POST";
    if (u === null) {
      const p = pathAt(url);
      const origin = url.slice(0, p);
      const path = url.slice(p).split("?", 1)[0];
      if (post && (path === "/token" || path.startsWith("/token/"))) return formKey(request, env, h, keys, url, null, ua);
      return path === "/v2/" || path === "/v2"
        ? refuse(KEY_PING, "", h, "key", { "www-authenticate": 'Bearer realm="' + origin + '/token"',
          "docker-distribution-api-version": "registry/2.0" })
        : refuse(KEY_MISSING, "", h, "key", {});
    }
    url = u.url;
    kx = u;
    if (post) return formKey(request, env, h, keys, url, kx, ua);
  }
  if (P.rate !== undefined && pulls(url)) {
    const limiter = env[P.rate];
    if (limiter && typeof limiter.limit === "function") return limited(request, env, h, method, url, kx, limiter, ua);
    if (!unbound) {
      unbound = true;
      console.warn(`rate_limit names ${P.rate}, which wrangler.toml does not bind ([[ratelimits]]): no client is counted`);
    }
  }
  return serve(request, env, h, method, url, kx, undefined, ua);
}
let unbound = false;
// The verdicts on the last User-Agent and the last address, which a
// client's next request nearly always brings again: a string compare
// instead of the scanner pattern over some 130 characters (0.2 us) and
// the address parsed and matched.
let lastAgent = null, lastDenied = false, lastAddress = null, lastInRange = false;

// Whether a User-Agent is a browser's or a crawler's (crawler() without the
// Accept test), kept for the last one as the verdicts above.
function crawlerAgent(ua) {
  if (ua !== lastCrawlerAgent) {
    lastCrawlerAgent = ua;
    lastCrawler = crawler(false, ua);
  }
  return lastCrawler;
}
let lastCrawlerAgent, lastCrawler = false;

// A POST to the token endpoint on a mirror with keys: its form read first,
// the key cut out of its scopes (where a client whose realm had none puts
// it), and nothing passed on that still holds one.
async function formKey(request, env, h, keys, url, kx, ua) {
  const got = { n: 0, key: "" };
  const body = await readBody(request, 16 * 1024);
  const form = holdsKey(keys, body) ? unkeyParams(keys, body, got) : body;
  if (kx === null && got.n !== 0) kx = { n: got.n, key: got.key, origin: url.slice(0, pathAt(url)) };
  if (kx === null || holdsKey(keys, form)) return refuse(KEY_MISSING, "", h, "key", {});
  return serve(request, env, h, "POST", url, kx, form, ua);
}

// Manifests and blobs against the rate limit binding, by client address
// (an IPv6 client by its /64): over it, the mirror's own 429.
async function limited(request, env, h, method, url, kx, limiter, ua) {
  const { success } = await limiter.limit({ key: rateKey(h.get("cf-connecting-ip")) });
  if (!success) return refuse(MIRROR_LIMIT, "", h, "rate", { "retry-after": "60" }, kx);
  return serve(request, env, h, method, url, kx, undefined, ua);
}

// /robots.txt, everyone's (no key needed): disallows everything.
function robots(h) {
  if (LOGS) log("\trobots\t\t", 200, -1, false, 0, h, null, "");
  return new Response("User-agent: *\nDisallow: /\n", { headers: { "content-type": "text/plain; charset=utf-8", "x-robots-tag": "noindex, nofollow" } });
}

// The request, admitted, to the planner: `url` without the key, `form` the
// token form already read (undefined: read when the planner asks), `ua` the
// User-Agent when admission read it (undefined: read when an answer needs
// it).
function serve(request, env, h, m, url, kx, form, ua) {
  const authorization = h.get("authorization");
  const accept = h.get("accept");
  const flags = (authorization !== null ? 1 : 0) | (accept !== null && accept.includes("text/html") ? 2 : 0);
  const method = m === "GET" ? 0 : m === "HEAD" ? 1 : m === "POST" ? 2 : 3;
  const op = call(flags, method, url, 0, 0, "", "", "", "", "", "", true);
  return answer(op, h, -1, false, 0, kx) || proceed(request, env, h, authorization, accept, flags, method, url, op, kx, form, ua);
}

// The rest of a request after its first action: read the body or a secret,
// fetch, relay, until an action ends it. Each action is read right after
// the call that made it, before anything is awaited.
async function proceed(request, env, h, authorization, accept, flags, method, url, op, kx, preread, ua) {
  // The other actions (the local ones are `answer`'s).
  const BODY = 66; // B: read the request body, call again
  const SECRET = 69; // E: read a Worker secret, call again
  const HELD = 72; // H: relay the response a HOLD fetch kept, rewritten
  const RELAY = 82; // R: relay the last upstream response, rewritten
  // (F: fetch.) Its bits:
  const CLIENT_HEADERS = 1; // send the client's allow-listed headers
  const FOLLOW = 2; // the runtime follows redirects
  const RESUME_401 = 4; // call again on a 401,
  const RESUME_3XX = 8; // on a redirect,
  const RESUME_ALL = 16; // on any status,
  const FORM = 32; // (POST the FORM field as an OAuth2 form)
  const RESUME_429 = 64; // on a 429, with its body,
  const RESUME_5XX = 128; // on a 502-504, with its body,
  const RESUME_ERR = 256; // on any status from 400,
  const TOKEN = 512; // (with the token of its JSON answer)
  const ANONYMOUS = 1024; // the client's headers without its Authorization
  const HOLD = 2048; // keep the last response for an H action
  const HEAD = 4096; // HEAD (else GET, or POST with FORM)
  const CREDENTIALS = 8192; // present the secret: Basic, or in the form
  // What every call after the first carries: the last fetch's phase,
  // status, trail and upstream fields, the secret read since that fetch (a
  // secret is given only to the calls before the next fetch: the next one
  // that needs a secret may be another route's) and the request body.
  let phase = 0, status = 0, trail = "", challenge = "", third = "", sent = "", body = "", secret = "";
  // The last response and its body text as read (when it was), and the one
  // a HOLD fetch kept.
  let up, upText, held, heldText;
  // For the log line (LOGS only): the last fetch's status (0: it failed,
  // -1: none), whether the runtime followed a redirect, milliseconds to its
  // headers.
  let upStatus = -1, redirected = false, ms = 0;
  for (;;) {
    const local = answer(op, h, upStatus, redirected, ms, kx);
    if (local !== undefined) return local;
    if (op === BODY || op === SECRET) {
      if (op === BODY) {
        body = preread !== undefined ? preread : await readBody(request, act[2] | act[3] << 8);
        flags |= 4;
      } else {
        const v = env[text(0)];
        secret = typeof v === "string" ? v : "";
        flags = flags & ~24 | (typeof v === "string" ? 24 : 8);
      }
      op = call(flags, method, url, phase, status, trail, challenge, third, secret, sent, body, false);
      continue;
    }
    if (op === RELAY || op === HELD) {
      const r = op === HELD ? held : up;
      if (LOGS) log(text(1), r.status, upStatus, redirected, ms, h, kx, "");
      return relay(r, text(0), act[1], text(2), text(3), text(4), op === HELD ? heldText : upText, kx, h, flags, ua);
    }
    // F: fetch
    const bits = act[2] | act[3] << 8;
    const target = text(0), auth = text(1), about = LOGS ? text(2) : "", form = text(3), source = text(4);
    phase = act[1];
    trail = text(5);
    if (bits & HOLD) {
      held = up;
      heldText = upText;
    } else if (up !== undefined && !up.bodyUsed && up.body !== null) {
      // (bodyUsed first: a body already read needs no stream object made
      // for it here.)
      up.body.cancel();
    }
    const init = {
      method: bits & FORM ? "POST" : bits & HEAD ? "HEAD" : "GET",
      redirect: bits & FOLLOW ? "follow" : "manual",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    };
    if (bits & CLIENT_HEADERS) init.headers = forwarded(h, bits & ANONYMOUS ? null : authorization, accept);
    if (auth !== "" || bits & (FORM | CREDENTIALS)) {
      if (init.headers === undefined) init.headers = new Headers();
      if (auth !== "") init.headers.set("authorization", auth);
      const c = secret.indexOf(":");
      if (bits & FORM) {
        init.headers.set("content-type", "application/x-www-form-urlencoded");
        init.body = bits & CREDENTIALS ? form + "&username=" + encodeURIComponent(secret.slice(0, c)) + "&password=" +
          encodeURIComponent(secret.slice(c + 1)) : form;
      } else if (bits & CREDENTIALS) {
        init.headers.set("authorization", "Basic " + btoa(secret));
      }
    }
    // The secret went into this fetch, or into none: the next call does not get it.
    secret = "";
    flags &= ~24;
    const t0 = LOGS ? Date.now() : 0;
    try {
      up = await fetch(target, init);
    } catch (e) {
      up = upText = undefined;
      if (LOGS) [upStatus, redirected, ms] = [0, false, Date.now() - t0];
      status = 0;
      challenge = sent = "";
      third = String(e);
      op = call(flags, method, url, phase, 0, trail, "", third, "", "", body, false);
      continue;
    }
    const s = up.status;
    upText = undefined;
    if (LOGS) [upStatus, redirected, ms] = [s, up.redirected, Date.now() - t0];
    if (bits & RESUME_ALL || (bits & RESUME_401 && s === 401) || (bits & RESUME_3XX && s >= 300 && s < 400) ||
        (bits & RESUME_429 && s === 429) || (bits & RESUME_5XX && s >= 502 && s <= 504) || (bits & RESUME_ERR && s >= 400)) {
      if ((bits & RESUME_429 && s === 429) || (bits & RESUME_5XX && s >= 502 && s <= 504)) upText = await readBody(up, 4095);
      else if (bits & TOKEN) upText = tokenOf(await readBody(up, 16383), 16383);
      status = s;
      sent = upText === undefined ? "" : upText;
      // The planner reads a challenge only on a 401, a Location only on a
      // redirect, and Docker-Content-Digest only on a success.
      challenge = s === 401 ? up.headers.get("www-authenticate") || "" : "";
      third = (s >= 300 && s < 400 ? up.headers.get("location") : s < 300 ? up.headers.get("docker-content-digest") : "") || "";
      op = call(flags, method, url, phase, s, trail, challenge, third, "", sent, body, sent === "" && !(flags & 4));
      continue;
    }
    if (LOGS) log(about, s, upStatus, redirected, ms, h, kx, "");
    return relay(up, "", 255, "", source, "", undefined, kx, h, flags, ua);
  }
}
