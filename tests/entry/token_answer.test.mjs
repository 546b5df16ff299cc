// The token reader of the entry (src/token_answer.js), table-driven: what it
// takes from a token endpoint's answer, and what it does not. Run by
// scripts/test.sh (node --test tests/entry/).
import { test } from "node:test";
import assert from "node:assert/strict";
import { tokenOf } from "../../src/token_answer.js";

const MAX = 16383;

test("the token of a token answer", () => {
  for (const [body, want] of [
    ['{"token":"a.b-c_d"}', "a.b-c_d"],
    ['{"access_token":"x","token":"y"}', "y"],
    ['{"access_token":"x"}', "x"],
    ['{"type":"token","token":"z"}', "z"],
    ['{"expires_in":300,"issued_at":"x","token":"t"}', "t"],
    ['{"a":true,"b":null,"c":[1,{"d":[]}],"token":"t"}', "t"],
    // Escapes are JSON's: the planner then judges the value (a quote or a
    // space is no token there).
    ['{"token":"esc\\"aped"}', 'esc"aped'],
    ['{"token":"with space"}', "with space"],
    // Not a string, or nothing: no token.
    ['{"token":12}', ""],
    ['{"token":null,"access_token":"a"}', "a"],
    ["<html>token</html>", ""],
    ["", ""],
    ["null", ""],
    ['"token"', ""],
    ['["token","x"]', ""],
    // Unterminated: a value counts only with its closing quote, an object
    // only with its closing brace.
    ['{"token":"abc', ""],
    ['{"token":"abc"', ""],
    ['{"access_token":"x","token":"abc', ""],
    ['{"token":"abc"}', "abc"],
    // Nested: a token inside a nested value is not the answer's.
    ['{"data":{"token":"nested"},"token":"top"}', "top"],
    ['{"data":{"token":"nested"}}', ""],
    ['{"list":["token","x"],"access_token":"a"}', "a"],
    ['{"s":"a,\\"token\\":\\"fake","token":"real"}', "real"],
    // Key tails: a key, not the tail of another key, nor a value.
    ['{"refresh_token":"r","id_token":"i"}', ""],
    ['{"note":"token","x":"token"}', ""],
    ['{"xtoken":"r","access_tokens":"i"}', ""],
    // JSON's whitespace around ':' and ',', tabs and line breaks included.
    ['{ "token" :\t"w" }', "w"],
    ['{\n  "issued_at": "2026-12-06",\r\n  "token"\n:\n"nl"\n}', "nl"],
    // An empty first value: access_token, when there is one.
    ['{"token":"","access_token":"acc"}', "acc"],
    ['{"token":""}', ""],
  ]) {
    assert.equal(tokenOf(body, MAX), want, body);
  }
});

test("an answer longer than the cap holds no token, wherever the token is", () => {
  const late = `{"pad":"${"x".repeat(20000)}","token":"late"}`;
  const early = `{"token":"early","pad":"${"x".repeat(20000)}"}`;
  // What the entry's readBody hands over: max + 1 characters at most.
  assert.equal(tokenOf(late.slice(0, MAX + 1), MAX), "");
  assert.equal(tokenOf(early.slice(0, MAX + 1), MAX), "");
  // Within the cap it is read, padding and all.
  const fits = `{"pad":"${"x".repeat(MAX - 40)}","token":"late"}`;
  assert.ok(fits.length <= MAX);
  assert.equal(tokenOf(fits, MAX), "late");
});
