// The entry's admission (src/admission.js), table-driven: agents, client
// addresses and ranges, keys in every place a client puts one, and the
// mirror's own URLs given the key back. Run by scripts/test.sh
// (node --test tests/entry/).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  address, agentPattern, allowedClient, crawler, deniedAgent, holdsKey, ranges, keysOf, policyOf, pulls, rateKey, unkeyParams, unlock, unlockAnywhere, whichKey,
  withKey,
} from "../../src/admission.js";

const K1 = "k1-AAAAAAAAAAAAAAAAAAAA";
const K2 = "k2_BBBBBBBBBBBBBBBBBBBB";
const KEYS = [K1, K2];
const H = "https://m.example";

test("agents: case-insensitive substrings", () => {
  const agents = agentPattern(["netcraft", "censysinspect", "my scanner/1", "a.b(c)*"]);
  for (const [ua, want] of [
    ["Mozilla/5.0 (compatible; NetcraftSurveyAgent/1.0; +info@netcraft.com)", true],
    ["Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)", true],
    ["My Scanner/1.2", true],
    ["x A.B(C)*y", true],
    // Substrings, not patterns: '.' and '*' are themselves.
    ["aXb(c)", false],
    ["docker/20.10.24 go/go1.19.8 git-commit/5d6db84 kernel/6.1 os/linux arch/amd64", false],
    ["containerd/v1.6.20", false],
    ["skopeo/1.13.3", false],
    ["", false],
    [null, false],
  ]) {
    assert.equal(deniedAgent(agents, ua), want, String(ua));
  }
  assert.equal(agentPattern([]), null);
  assert.equal(deniedAgent(null, "NetcraftSurveyAgent"), false);
});

test("browsers and crawlers, which X-Robots-Tag is for", () => {
  for (const [html, ua, want] of [
    [true, "docker/27.0", true],
    [false, "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", true],
    [false, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", true],
    [false, "Sogou web spider/4.0", true],
    [false, "SomeCrawler/1.0", true],
    [false, "docker/27.0 go/go1.22 git-commit/x kernel/6 os/linux arch/amd64 UpstreamClient(Docker-Client/27.0)", false],
    [false, "containerd/v1.7.0", false],
    [false, "containers/5.29 (github.com/containers/image)", false],
    [false, "Helm/3.16", false],
    [false, "Go-http-client/1.1", false],
    [false, null, false],
  ]) {
    assert.equal(crawler(html, ua), want, String(ua));
  }
});

test("client addresses, by hand", () => {
  const v4n = (a, b, c, d) => ((a * 256 + b) * 256 + c) * 256 + d;
  for (const [ip, want] of [
    ["203.0.113.9", v4n(203, 0, 113, 9)],
    ["0.0.0.0", 0],
    ["255.255.255.255", 4294967295],
    ["::ffff:203.0.113.9", v4n(203, 0, 113, 9)],
    ["::ffff:cb00:7109", v4n(203, 0, 113, 9)],
    ["2001:db8::1", [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]],
    ["::", [0, 0, 0, 0, 0, 0, 0, 0]],
    ["::1", [0, 0, 0, 0, 0, 0, 0, 1]],
    ["1::", [1, 0, 0, 0, 0, 0, 0, 0]],
    ["2001:DB8:0:0:0:0:0:1", [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]],
    ["64:ff9b::203.0.113.9", [0x64, 0xff9b, 0, 0, 0, 0, 0xcb00, 0x7109]],
    // Not addresses.
    ["", null],
    [null, null],
    ["203.0.113", null],
    ["203.0.113.256", null],
    ["203.0.113.09", null],
    ["203.0.113.9.1", null],
    ["203.0.113.", null],
    [".203.0.113", null],
    ["1234.0.0.1", null],
    ["2001:db8::1::2", null],
    ["2001:db8:0:0:0:0:0:0:1", null],
    ["1:2:3:4:5:6:7::8", null],
    ["12345::", null],
    ["fe80::1%eth0", null],
    ["[2001:db8::1]", null],
    [":1::", null],
    ["::ffff:1.2.3", null],
    ["x".repeat(50), null],
  ]) {
    assert.deepEqual(address(ip), want, String(ip));
  }
});

test("clients: in and out by IPv4, IPv6 and country", () => {
  // What the compiler writes for ["203.0.113.0/24", "2001:db8::/32",
  // "country:CN"] (tests/route_table.rs checks that side).
  const r = ranges(["4:110010110000000001110001", "6:00100000000000010000110110111000"]);
  let asked = 0;
  const country = (c) => () => {
    asked++;
    return c;
  };
  for (const [ip, c, want] of [
    ["203.0.113.1", "DE", true],
    ["203.0.113.255", undefined, true],
    ["203.0.114.1", "DE", false],
    ["203.0.112.255", "DE", false],
    ["::ffff:203.0.113.7", "DE", true],
    ["2001:db8:1::5", "DE", true],
    ["2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "DE", true],
    ["2001:db9::5", "DE", false],
    ["2001:db7:ffff::5", "DE", false],
    ["198.51.100.1", "CN", true],
    ["198.51.100.1", "cn", true],
    [null, "CN", true],
    [null, "DE", false],
    ["not an address", undefined, false],
    ["", "", false],
  ]) {
    assert.equal(allowedClient(r, ["CN"], ip, country(c)), want, `${ip} ${c}`);
  }
  // The country is read only for an address in no range.
  asked = 0;
  allowedClient(r, ["CN"], "203.0.113.1", country("DE"));
  assert.equal(asked, 0);
  // Prefix lengths that do not fall on a group or an octet.
  const odd = ranges(["4:110010110000000001110", "6:0010000000000001000011011011100000"]);
  assert.equal(allowedClient(odd, [], "203.0.119.200", country()), true);
  assert.equal(allowedClient(odd, [], "203.0.120.1", country()), false);
  assert.equal(allowedClient(odd, [], "2001:db8:3fff::1", country()), true);
  assert.equal(allowedClient(odd, [], "2001:db8:4000::1", country()), false);
  // /0: every address of the family, none of the other.
  const all4 = ranges(["4:"]);
  assert.equal(allowedClient(all4, [], "1.2.3.4", country()), true);
  assert.equal(allowedClient(all4, [], "255.255.255.255", country()), true);
  assert.equal(allowedClient(all4, [], "::1", country()), false);
  const one = ranges(["4:" + "1".repeat(32)]);
  assert.equal(allowedClient(one, [], "255.255.255.255", country()), true);
  assert.equal(allowedClient(one, [], "255.255.255.254", country()), false);
});

test("rate limit keys: an address, an IPv6 client by its /64", () => {
  assert.equal(rateKey("203.0.113.9"), rateKey("::ffff:203.0.113.9"));
  assert.notEqual(rateKey("203.0.113.9"), rateKey("203.0.113.10"));
  assert.equal(rateKey("2001:db8:1:2:aaaa::1"), rateKey("2001:db8:1:2:bbbb::2"));
  assert.notEqual(rateKey("2001:db8:1:2::1"), rateKey("2001:db8:1:3::1"));
  assert.equal(rateKey(null), "");
  assert.equal(rateKey("junk"), "");
});

test("keys: the secret's value", () => {
  for (const [v, want] of [
    [K1, [K1]],
    [`${K1},${K2}`, [K1, K2]],
    [` ${K1} , ${K2} `, [K1, K2]],
    ["short-key", null],
    [`${K1},`, null],
    [`${K1},has space in it!!`, null],
    [`${K1};${K2}`, null],
    ["", null],
    [undefined, null],
    [{}, null],
  ]) {
    assert.deepEqual(keysOf(v), want, String(v));
  }
  assert.equal(whichKey(KEYS, K1), 1);
  assert.equal(whichKey(KEYS, K2), 2);
  assert.equal(whichKey(KEYS, K1.slice(0, -1)), 0);
  assert.equal(whichKey(KEYS, K1 + "A"), 0);
  assert.equal(whichKey(KEYS, K1.toUpperCase()), 0);
  assert.equal(whichKey(KEYS, ""), 0);
});

test("keys: every place a client carries one, cut out", () => {
  const q = (s) => encodeURIComponent(s);
  for (const [url, want, n] of [
    // The first path segment: hosts.toml, registry-mirrors, k3s, the page.
    [`${H}/${K1}/v2/`, `${H}/v2/`, 1],
    [`${H}/${K2}/v2/library/busybox/manifests/latest?ns=docker.io`, `${H}/v2/library/busybox/manifests/latest?ns=docker.io`, 2],
    [`${H}/${K1}/`, `${H}/`, 1],
    [`${H}/${K1}`, `${H}/`, 1],
    [`${H}/${K1}?ns=docker.io&x=/y`, `${H}/?ns=docker.io&x=/y`, 1],
    [`${H}/${K2}/v2/a/b/tags/list?n=1/2`, `${H}/v2/a/b/tags/list?n=1/2`, 2],
    [`${H}/${K1}/token/docker.io?scope=repository:busybox:pull`, `${H}/token/docker.io?scope=repository:busybox:pull`, 1],
    // The first component of the name: a reference, registries.conf.
    [`${H}/v2/${K1}/busybox/manifests/latest`, `${H}/v2/busybox/manifests/latest`, 1],
    [`${H}/v2/${K1}/ghcr.io/owner/app/blobs/sha256:ab`, `${H}/v2/ghcr.io/owner/app/blobs/sha256:ab`, 1],
    // Token scopes, as the ping's realm (no key) leads a client to ask.
    [`${H}/token?scope=repository%3A${K1}%2Fbusybox%3Apull&service=x`, `${H}/token?scope=${q("repository:busybox:pull")}&service=x`, 1],
    [`${H}/token?scope=repository:${K2}/a:pull&scope=repository:${K2}/b:pull`, `${H}/token?scope=${q("repository:a:pull")}&scope=${q("repository:b:pull")}`, 2],
    [`${H}/token?scope=repository:${K1}/a:pull+repository:${K1}/b:pull,push`, `${H}/token?scope=${q("repository:a:pull repository:b:pull,push")}`, 1],
    [`${H}/token?scope=repository(plugin):${K1}/a:pull`, `${H}/token?scope=${q("repository(plugin):a:pull")}`, 1],
    // Both at once (a realm with the key and a name with it): both cut.
    [`${H}/${K1}/token?scope=repository:${K1}/busybox:pull`, `${H}/token?scope=${q("repository:busybox:pull")}`, 1],
    [`${H}/${K1}/v2/${K1}/busybox/manifests/1`, `${H}/v2/busybox/manifests/1`, 1],
    // docker search HOST/KEY/term.
    [`${H}/v1/search?q=${K1}%2Fbusybox&n=25`, `${H}/v1/search?q=busybox&n=25`, 1],
  ]) {
    assert.deepEqual(unlock(KEYS, url), { url: want, n, key: n === 1 ? K1 : K2, origin: url.slice(0, url.indexOf("/", 8)) }, url);
  }
});

test("keys: no key, a wrong one, or one left over is refused", () => {
  for (const url of [
    `${H}/`,
    `${H}/v2/`,
    `${H}/v2/library/busybox/manifests/latest`,
    `${H}/token?scope=repository:busybox:pull`,
    `${H}/token?account=alice&service=x`,
    `${H}/robots.txt`,
    // Wrong: one character off, a prefix, another case.
    `${H}/${K1.slice(0, -1)}B/v2/`,
    `${H}/${K1.slice(0, -1)}/v2/`,
    `${H}/${K1.toLowerCase()}/v2/`,
    `${H}/v2/${K1}x/busybox/manifests/1`,
    // A key where no client puts one stays a key: never passed on.
    `${H}/${K1}/v2/busybox/manifests/1?x=${K1}`,
    `${H}/v2/busybox/${K1}/manifests/1`,
    `${H}/${K1}/v2/library/${K2}/manifests/1`,
    `${H}/${K1}/token?scope=repository:library/${K1}:pull`,
    // A key as a whole name, not a component in front of one.
    `${H}/token?scope=repository:${K1}:pull`,
  ]) {
    const u = unlock(KEYS, url);
    assert.equal(u, null, `${url} -> ${JSON.stringify(u)}`);
  }
});

test("keys: the short way finds what the long way finds", () => {
  // Every URL of up to three path pieces and a query, with the keys alone
  // and with one key the start of another (K1 inside K1 + "x"): unlock's
  // cut of a key where clients put it gives the same answer as taking the
  // URL apart, including null for any key left elsewhere.
  const KX = K1 + "x_tail";
  const pieces = ["", "/", `/${K1}`, `/${K2}`, `/${KX}`, "/v2", "/v2/", `/${K1.slice(0, -1)}`, "/token", "/v1/search", "/busybox",
    "/manifests/latest", `/x${K1}`];
  const queries = ["", "?", `?q=${K1}%2Fbusybox`, `?scope=repository:${K2}/a:pull`, `?x=${K1}`, "?a=b/c", `?n=1/${K1}`];
  let short = 0;
  for (const keys of [KEYS, [K1, KX], [KX, K1]]) {
    for (const x of pieces) for (const y of pieces) for (const z of pieces) for (const query of queries) {
      const url = H + x + y + z + query;
      const p = url.indexOf("/", 8);
      if (p < 0) continue;
      const got = unlock(keys, url);
      assert.deepEqual(got, unlockAnywhere(keys, url, p, url.indexOf("?", p)), url);
      if (got !== null) short++;
    }
  }
  // Not vacuous: many of them carry a key that is cut.
  assert.ok(short > 1000, `${short} unlocked`);
});

test("keys: forms and leftovers", () => {
  const got = { n: 0, key: "" };
  const form = unkeyParams(KEYS, `grant_type=refresh_token&refresh_token=r&service=s&scope=repository%3A${K2}%2Fa%3Apull`, got);
  assert.equal(form, `grant_type=refresh_token&refresh_token=r&service=s&scope=${encodeURIComponent("repository:a:pull")}`);
  assert.deepEqual(got, { n: 2, key: K2 });
  assert.equal(holdsKey(KEYS, form), false);
  assert.equal(holdsKey(KEYS, `password=${K1}`), true);
  // Malformed percent-encoding is left for the planner to refuse.
  assert.equal(unkeyParams(KEYS, "scope=%zz", { n: 0, key: "" }), "scope=%zz");
});

test("the mirror's own URLs get the key back; others do not", () => {
  assert.equal(withKey(`Bearer realm="${H}/token/docker.io",service="x",scope="repository:busybox:pull"`, H, K1),
    `Bearer realm="${H}/${K1}/token/docker.io",service="x",scope="repository:busybox:pull"`);
  assert.equal(withKey(`${H}/v2/busybox/blobs/sha256:ab`, H, K1), `${H}/${K1}/v2/busybox/blobs/sha256:ab`);
  assert.equal(withKey("https://cdn.example/blob?sig=1", H, K1), "https://cdn.example/blob?sig=1");
  assert.equal(withKey(`${H}.evil.example/x`, H, K1), `${H}.evil.example/x`);
  assert.equal(withKey("", H, K1), "");
});

test("manifests and blobs are what a rate limit counts", () => {
  for (const [path, want] of [
    ["/v2/library/busybox/manifests/latest", true],
    ["/v2/library/busybox/manifests/sha256:ab?ns=docker.io", true],
    ["/v2/a/b/blobs/sha256:ab", true],
    ["/v2/", false],
    ["/v2/busybox/tags/list", false],
    ["/token?scope=repository:x/manifests/y:pull", false],
    ["/", false],
  ]) {
    assert.equal(pulls(H + path), want, path);
  }
});

test("the policy after the table's pool", () => {
  const json = '{"access":"K","agents":["netcraft"]}';
  const pool = "https://a.example";
  const head = new Uint8Array(20);
  const at = 20 + pool.length;
  head[18] = at & 255;
  head[19] = at >> 8;
  const bytes = new Uint8Array([...head, ...new TextEncoder().encode(pool + json)]);
  assert.deepEqual(policyOf(bytes), { access: "K", agents: ["netcraft"] });
  assert.equal(policyOf(bytes.subarray(0, at)), null);
  assert.equal(policyOf(new Uint8Array(4)), null);
});
