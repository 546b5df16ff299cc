-- wrk script for the benchmark and the soak: one request kind per run, taken
-- from the environment (METHOD, TARGET, HEADERS as "Name: value|Name: value",
-- BODY, STATUS expected). Each thread stops sending after LIMIT responses, so a run
-- is bounded in count as well as by wrk's -d duration; responses with another
-- status are counted and reported. With FRESH set to a number, every request's
-- URL is new: a query parameter counting up from FRESH (the first-seen shape,
-- which no memo of earlier requests can answer). With ALT_TARGET and
-- ALT_STATUS set, every other request is that one instead (a mixed kind:
-- either status is expected).
local method = os.getenv("METHOD") or "GET"
local target = os.getenv("TARGET") or "/"
local expect = tonumber(os.getenv("STATUS") or "200")
local alt_target = os.getenv("ALT_TARGET") or ""
if alt_target == "" then alt_target = nil end
local alt_expect = tonumber(os.getenv("ALT_STATUS") or "") or expect
local limit = tonumber(os.getenv("LIMIT") or "100000")
local headers = {}
for pair in string.gmatch(os.getenv("HEADERS") or "", "[^|]+") do
  local k, v = string.match(pair, "^([^:]+):%s*(.*)$")
  if k then headers[k] = v end
end
local body = os.getenv("BODY")
if body == "" then body = nil end
local req = wrk.format(method, target, headers, body)
local alt_req = alt_target and wrk.format(method, alt_target, headers, body)
-- A global: each thread's own copy starts at its own offset (setup below).
fresh = tonumber(os.getenv("FRESH") or "")
local function with_seq(t, n)
  return t .. (string.find(t, "?", 1, true) and "&" or "?") .. "seq=" .. n
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  if fresh then thread:set("fresh", fresh + #threads * 100000000) end
end

function init(args)
  finished = 0
  bad = 0
  sent = 0
end

function request()
  sent = sent + 1
  local t, r = target, req
  if alt_target and sent % 2 == 0 then t, r = alt_target, alt_req end
  if fresh then
    fresh = fresh + 1
    return wrk.format(method, with_seq(t, fresh), headers, body)
  end
  return r
end

-- With EXIT_AT_LIMIT set (one thread only), the run ends the moment the
-- thread has its LIMIT responses: wrk itself would wait out -d, and the
-- benchmark's slices are a count of requests, not a time.
local exit_at_limit = os.getenv("EXIT_AT_LIMIT") == "1"

function response(status, hdrs, body)
  if status ~= expect and status ~= alt_expect then bad = bad + 1 end
  finished = finished + 1
  if finished >= limit then
    if exit_at_limit then
      io.write(string.format("RESULT requests=%d unexpected=%d errors=0\n", finished, bad))
      io.flush()
      os.exit(0)
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total, unexpected = 0, 0
  for _, t in ipairs(threads) do
    total = total + t:get("finished")
    unexpected = unexpected + t:get("bad")
  end
  io.write(string.format("RESULT requests=%d unexpected=%d errors=%d\n", total, unexpected,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
