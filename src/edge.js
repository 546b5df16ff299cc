// The worker's entry: carries out what the wasm planner decides.
//
// Rust decides, the runtime does the I/O. For each request this module hands
// the planner the request's facts in one synchronous call and gets one action
// back (src/wire.rs has the format): answer locally, read the body, fetch, or
// relay the upstream's response. After a fetch it calls again only when the
// action asked for the status it got; otherwise the response goes to the
// client as the runtime gave it, body streaming through, re-wrapped only when
// it carries a header that must not reach clients. A request the planner
// answers locally is answered without a promise. Actions for inputs that
// repeat are remembered (the memo below), so a repeated request skips the
// wasm call; the planner is pure, so that changes no answer. Nothing here looks at a
// path, a host, a scope or a challenge; it holds data only: the request
// headers passed upstream, the response headers dropped, and the table of
// error messages (generated from src/messages.rs), from which it writes the
// OCI error bodies the planner names by number.
import module from "./index_bg.wasm";
import { initSync, step, io, client_address, logs, __wbg_reset_state } from "glue";
import PAGE from "page";
import MESSAGES from "messages";

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
// The planner is a pure function of its input text: the same request facts
// (and upstream answer) always give the same action. So actions of inputs
// that repeat are kept and reused, and a repeated request (every pull's /v2/
// ping, a popular tag, a layer many clients fetch, the upstream's challenge
// for it) costs a lookup instead of a call into wasm and a copy out.
// A request seen once must cost nothing more than without the memo, and most
// are seen once: so an input is kept only the second time it comes. The
// entry hashes each input while it copies it into wasm memory; SEEN
// remembers the hashes of recent inputs (a fixed array of numbers: nothing
// to allocate, nothing for the garbage collector to keep alive), and only an
// input whose hash is already there is looked up in the memo (a Map lookup
// hashes the whole string and adds it to V8's string table) or goes into it.
// Only inputs without secrets or bodies are kept (no credential and no
// password stays in the memo), each input and action at most MEMO_KEY
// characters, MEMO_BYTES characters in all (one byte each: the planner's
// text is ASCII); the memo is emptied when full. MEMO is false only in
// builds that must run the planner on every request (the soak's, which
// samples linear memory; scripts/build-worker.sh, EDGE_MEMO=0).
const SEEN_SLOTS = 4096;
const SEEN = new Int32Array(SEEN_SLOTS);
const memo = new Map();
let memoBytes = 0;

let wasm = initSync({ module });
const enc = new TextEncoder();
const dec = new TextDecoder();
let at = io();
// Whether the table logs requests, and client addresses (read once: it is
// compiled in). Only then are times and addresses read per request: the
// planner says what a request was about (route, kind, repository), and the
// entry adds what it saw and writes the line.
const LOGS = logs();
const CLIENT = client_address();
let view = new Uint8Array(wasm.memory.buffer, at, CAP);

// One synchronous step: input text in, action text out, through the buffer
// (or from the memo when `keep` says the input may be kept).
function call(input, keep) {
  // Constants inside the functions that use them: esbuild inlines those,
  // not a bundle's top-level ones.
  const MEMO_KEY = 2048;
  const MEMO_BYTES = 256 * 1024;
  keep = MEMO && keep && input.length <= MEMO_KEY;
  if (view.length === 0) view = new Uint8Array(wasm.memory.buffer, at, CAP);
  // The input into wasm memory: ASCII (nearly every input) byte by byte,
  // without an API call, hashing it on the way (FNV-1a, for the memo);
  // anything else through the encoder.
  const len = input.length;
  let i = 0, hash = -2128831035, n = len;
  if (len <= CAP) {
    for (; i < len; i++) {
      const c = input.charCodeAt(i);
      if (c > 127) break;
      view[i] = c;
      hash = Math.imul(hash ^ c, 16777619);
    }
  }
  if (i < len) {
    if (keep) for (let j = i; j < len; j++) hash = Math.imul(hash ^ input.charCodeAt(j), 16777619);
    const { read, written } = enc.encodeInto(input, view);
    n = read < len ? CAP + 1 : written;
  }
  // Only an input seen before can be in the memo: a first-seen one costs
  // one array read here, and no string is hashed into a Map.
  const slot = hash & (SEEN_SLOTS - 1);
  const seen = keep && SEEN[slot] === hash;
  if (seen) {
    const out = memo.get(input);
    if (out !== undefined) return out;
  }
  try {
    n = step(n);
  } catch (e) {
    // A trap leaves nothing in flight (each call is complete in itself):
    // start a fresh instance for the next request.
    __wbg_reset_state();
    wasm = initSync({ module });
    at = io();
    view = new Uint8Array(wasm.memory.buffer, at, CAP);
    throw e;
  }
  if (view.length === 0) view = new Uint8Array(wasm.memory.buffer, at, CAP);
  const out = dec.decode(view.subarray(0, n));
  if (keep && out.length <= MEMO_KEY) {
    if (!seen) {
      SEEN[slot] = hash;
    } else {
      const size = input.length + out.length;
      if (memoBytes + size > MEMO_BYTES) {
        memo.clear();
        memoBytes = 0;
      }
      memo.set(input, out);
      memoBytes += size;
    }
  }
  return out;
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

// At most max + 1 bytes of the body (the planner judges the length): all of
// it at once when its declared length is within max, else chunk by chunk
// until more than max has arrived.
async function readBody(request, max) {
  if (request.body === null) return "";
  const length = request.headers.get("content-length");
  if (length !== null && +length <= max) return request.text();
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
  const t = theirs.trim();
  return t.startsWith('{"errors":[') && t.endsWith("}") ? head + "null}," + t.slice(11) : head + JSON.stringify(t) + "}]}";
}

// The upstream's response for the client. `location`, `error` (the
// mirror's error, "MSG SUBJECT", in front of the upstream's errors from
// `theirs`, its body as read) and `challenges` (one per line) replace the
// upstream's when given; `source` names the fallback that answered.
function relay(r, location, error, source, challenges, theirs) {
  let dirty = location !== "" || error !== "" || source !== "" || challenges !== undefined;
  if (!dirty) {
    for (const name of DROPPED) {
      if (r.headers.has(name)) {
        dirty = true;
        break;
      }
    }
    if (!dirty) return r;
  }
  const i = error.indexOf(" ");
  const json = error !== "" ? oci(+error.slice(0, i), error.slice(i + 1), theirs) : "";
  const out = new Response(json !== "" ? json : r.body, r);
  const h = out.headers;
  for (const name of DROPPED) h.delete(name);
  if (json !== "") {
    h.delete("content-length");
    h.delete("content-encoding");
    h.set("content-type", "application/json");
  }
  if (location !== "") h.set("location", location);
  if (source !== "") h.set("x-mirror-source", source);
  if (challenges !== undefined) {
    // The first replaces the upstream's; any others follow it.
    for (let i = 0; i < challenges.length; i++) h[i ? "append" : "set"]("www-authenticate", challenges[i]);
    h.set("docker-distribution-api-version", "registry/2.0");
  }
  return out;
}

// A secret for the wire: "=" and the value, or "-" when it is not set.
function secret(env, name) {
  const v = env[name];
  return typeof v === "string" ? "=" + encodeURIComponent(v) : "-";
}

// One JSON line for the Workers log: what the planner said the request was
// about (`about`: the route's name, the kind of request, the fallback that
// answered or "", and the repository, tab-separated), the status the client
// gets, the last upstream exchange (its status, 0 when the fetch failed, or
// none), and the client's address when the table asks for it.
function log(about, status, upStatus, redirected, ms, h) {
  const f = about.split("\t");
  let line = '{"route":' + JSON.stringify(f[0]) + ',"kind":"' + f[1] + '","repository":' + JSON.stringify(f[3]) +
    (f[2] !== "" ? ',"source":"' + f[2] + '"' : "") + ',"status":' + status + (upStatus < 0 ? ',"upstream":null'
    : ',"upstream":' + upStatus + ',"redirected":' + redirected + ',"ms":' + ms);
  if (CLIENT) line += ',"client":' + JSON.stringify(h.get("cf-connecting-ip") || "");
  console.log(line + "}");
}

// At most `max` characters of an upstream body (a 429's, or a token
// answer), for the planner (percent-encoded) and for the error body.
async function upstreamBody(r, max) {
  const text = await r.text();
  return text.length > max ? text.slice(0, max) : text;
}

// A local answer (the planner's A or P action) as a Response; undefined for
// any other action. The log line, when the table logs, with the last
// upstream exchange (`upStatus` -1: none).
function answer(a, h, upStatus, redirected, ms) {
  // The actions (src/wire.rs): the first character of the planner's answer.
  const ANSWER = 65; // A: a local answer
  const PAGE_ANSWER = 80; // P: the browser page
  const op = a.charCodeAt(0);
  if (op === ANSWER) {
    const p = a.split("\n");
    const m = +p[0].slice(1);
    const headers = { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0" };
    if (p[1] !== "") headers["www-authenticate"] = p[1];
    if (p[2] !== "") headers["allow"] = p[2];
    if (p[3] !== "") headers["x-wasm-memory-pages"] = p[3];
    const status = MESSAGES[m][0];
    if (LOGS) log(p[4], status, upStatus, redirected, ms, h);
    return new Response(oci(m, p[5], undefined), { status, headers });
  }
  if (op === PAGE_ANSWER) {
    if (LOGS) log(a.slice(1), 200, upStatus, redirected, ms, h);
    return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
  }
  return undefined;
}

export default {
  // Not async: a request the planner answers locally (the ping's 401, an
  // error) gets its Response at once, without a promise; the others go on
  // in `proceed`.
  fetch(request, env) {
    const h = request.headers;
    const authorization = h.get("authorization");
    const accept = h.get("accept");
    const facts = ((authorization !== null ? 1 : 0) | (accept !== null && accept.includes("text/html") ? 2 : 0)) +
      "\n" + request.method + "\n" + request.url + "\n";
    const a = call(facts + "\n\n\n\n", true);
    return answer(a, h, -1, false, 0) || proceed(request, env, h, authorization, accept, facts, a);
  },
};

// The rest of a request after its first action: read the body or a secret,
// fetch, relay, until an action ends it.
async function proceed(request, env, h, authorization, accept, facts, a) {
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
  const READ_BODY = 512; // (with up to 16 KiB of the body)
  const ANONYMOUS = 1024; // the client's headers without its Authorization
  const HOLD = 2048; // keep the last response for an H action
  // What every call after the first carries: the last fetch's STATE,
  // WWW-AUTHENTICATE and LOCATION fields, the secret read since that fetch
  // (a secret is given only to the calls before the next fetch: the next
  // one that needs a secret may be another route's), the upstream body read
  // (percent-encoded) and the request body.
  let state = "\n\n\n", known = "\n", sent = "", body = "";
  // The last response and its body text as read (when it was), and the one
  // a HOLD fetch kept.
  let up, text, held, heldText;
  // For the log line (LOGS only): the last fetch's status (0: it failed,
  // -1: none), whether the runtime followed a redirect, milliseconds to its
  // headers.
  let upStatus = -1, redirected = false, ms = 0;
  for (;;) {
    const local = answer(a, h, upStatus, redirected, ms);
    if (local !== undefined) return local;
    const op = a.charCodeAt(0);
    if (op === BODY || op === SECRET) {
      if (op === BODY) body = "\n" + await readBody(request, +a.slice(1));
      else known = secret(env, a.slice(1)) + "\n";
      a = call(facts + state + known + sent + body, false);
      continue;
    }
    if (op === RELAY || op === HELD) {
      const p = a.split("\n");
      const r = op === HELD ? held : up;
      if (LOGS) log(p[1], r.status, upStatus, redirected, ms, h);
      return relay(r, p[0].slice(1), p[2], p[3], p.length > 4 ? p.slice(4) : undefined, op === HELD ? heldText : text);
    }
    // F: fetch
    const p = a.split("\n");
    const bits = +p[0].slice(1);
    if (bits & HOLD) {
      held = up;
      heldText = text;
    } else if (up !== undefined && up.body !== null && !up.bodyUsed) {
      up.body.cancel();
    }
    known = "\n";
    const init = { method: p[2], redirect: bits & FOLLOW ? "follow" : "manual", signal: AbortSignal.timeout(TIMEOUT_MS) };
    if (bits & CLIENT_HEADERS) init.headers = forwarded(h, bits & ANONYMOUS ? null : authorization, accept);
    if (p[4] !== "" || bits & FORM) {
      if (init.headers === undefined) init.headers = new Headers();
      if (p[4] !== "") init.headers.set("authorization", p[4]);
      if (bits & FORM) {
        init.headers.set("content-type", "application/x-www-form-urlencoded");
        init.body = p[6];
      }
    }
    const t0 = LOGS ? Date.now() : 0;
    try {
      up = await fetch(p[3], init);
    } catch (e) {
      up = text = undefined;
      if (LOGS) [upStatus, redirected, ms] = [0, false, Date.now() - t0];
      state = p[1] + "0\n\n" + encodeURIComponent(String(e)) + "\n";
      sent = "";
      a = call(facts + state + known + sent + body, false);
      continue;
    }
    const s = up.status;
    text = undefined;
    if (LOGS) [upStatus, redirected, ms] = [s, up.redirected, Date.now() - t0];
    if (bits & RESUME_ALL || (bits & RESUME_401 && s === 401) || (bits & RESUME_3XX && s >= 300 && s < 400) ||
        (bits & RESUME_429 && s === 429) || (bits & RESUME_5XX && s >= 502 && s <= 504) || (bits & RESUME_ERR && s >= 400)) {
      if ((bits & RESUME_429 && s === 429) || (bits & RESUME_5XX && s >= 502 && s <= 504)) text = await upstreamBody(up, 4096);
      else if (bits & READ_BODY) text = await upstreamBody(up, 16384);
      sent = text === undefined ? "" : encodeURIComponent(text);
      // The planner reads a challenge only on a 401, a Location only on a
      // redirect, and Docker-Content-Digest only on a success.
      const challenge = s === 401 ? up.headers.get("www-authenticate") || "" : "";
      const third = s >= 300 && s < 400 ? up.headers.get("location") : s < 300 ? up.headers.get("docker-content-digest") : "";
      state = p[1] + s + "\n" + challenge + "\n" + (third || "") + "\n";
      a = call(facts + state + known + sent + body, known === "\n" && sent === "" && body === "");
      continue;
    }
    if (LOGS) log(p[5], s, upStatus, redirected, ms, h);
    return relay(up, "", "", p[7], undefined, undefined);
  }
}
