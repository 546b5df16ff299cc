// What the runtime charges for the pieces of a local answer, measured in
// workerd itself (scripts/response_cost.py): each request builds `n`
// Responses (or reads a header `n` times) the way variant `v` says, and
// the script divides the process's CPU time by `n`. The variants are the
// ways src/edge.js could build the mirror's own 401.
const CHALLENGE = 'Bearer realm="https://docker.bench.test/token",service="docker.bench.test"';
const BODY = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}';
const FOUR = { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0", "x-robots-tag": "noindex, nofollow",
  "www-authenticate": CHALLENGE };
let kept = null;

const VARIANTS = {
  // An empty answer: the Response object alone.
  "no-body": () => new Response(null, { status: 401 }),
  // The OCI error body as a string, no headers.
  "body": () => new Response(BODY, { status: 401 }),
  // What the entry built before X-Robots-Tag: three headers from a plain object.
  "3-plain": () => new Response(BODY, { status: 401, headers: { "content-type": "application/json",
    "docker-distribution-api-version": "registry/2.0", "www-authenticate": CHALLENGE } }),
  // With X-Robots-Tag: four from a plain object.
  "4-plain": () => new Response(BODY, { status: 401, headers: { "content-type": "application/json",
    "docker-distribution-api-version": "registry/2.0", "x-robots-tag": "noindex, nofollow", "www-authenticate": CHALLENGE } }),
  // The four as a Headers object built for each answer.
  "4-headers-new": () => new Response(BODY, { status: 401, headers: new Headers(FOUR) }),
  // The four as one Headers object kept and reused (workerd copies it).
  "4-headers-kept": () => new Response(BODY, { status: 401, headers: kept || (kept = new Headers(FOUR)) }),
  // The four as [name, value] pairs.
  "4-pairs": () => new Response(BODY, { status: 401, headers: Object.entries(FOUR) }),
};

export default {
  fetch(request) {
    const q = new URL(request.url).searchParams;
    const n = Number(q.get("n")), v = q.get("v");
    let sum = 0;
    if (v === "get-user-agent") {
      for (let i = 0; i < n; i++) sum += request.headers.get("user-agent").length;
    } else if (v === "get-absent") {
      for (let i = 0; i < n; i++) sum += request.headers.get("authorization") === null ? 1 : 0;
    } else if (v === "loop") {
      for (let i = 0; i < n; i++) sum += i & 1;
    } else {
      const make = VARIANTS[v];
      if (make === undefined) return new Response("unknown variant " + v, { status: 400 });
      for (let i = 0; i < n; i++) sum += make().status;
    }
    return new Response(String(sum));
  },
};
