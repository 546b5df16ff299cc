// The token of a token endpoint's JSON answer, for the planner's fallback
// token requests (the F bit RESUME_TOKEN): the answer's string member
// `token`, or else `access_token` (the OAuth2 name, which the distribution
// token spec accepts as well) when `token` is missing or empty; "" when
// there is none. Read with JSON.parse, so only a whole JSON object counts:
// a value without its closing quote, an answer cut short (the entry reads
// at most 16 KiB of it: `max` here, and a longer one is cut to max + 1
// characters) or a `token` inside a nested object or array is no token.
// Whether the value is one a header can carry the planner judges
// (src/fallback.rs).
export function tokenOf(body, max) {
  if (body.length > max) return "";
  let j;
  try {
    j = JSON.parse(body);
  } catch {
    return "";
  }
  if (j === null || typeof j !== "object" || Array.isArray(j)) return "";
  const t = typeof j.token === "string" ? j.token : "";
  return t !== "" ? t : typeof j.access_token === "string" ? j.access_token : "";
}
