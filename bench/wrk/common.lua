-- Shared by the bench's wrk scripts: a bearer token from $TOKEN, 5xx counted apart,
-- and a summary bench/request_path.py reads ("key: value" lines).
local M = {}
local threads = {}

function M.setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function M.count(status)
  if status >= 500 then fivexx = fivexx + 1 end
end

function M.done(summary, latency, requests)
  local five = 0
  for _, t in ipairs(threads) do five = five + (t:get("fivexx") or 0) end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("requests: %d\n", summary.requests))
  io.write(string.format("per_s: %.1f\n", summary.requests / seconds))
  io.write(string.format("p50_ms: %.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("p99_ms: %.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("non2xx: %d\n", e.status))
  io.write(string.format("fivexx: %d\n", five))
  io.write(string.format("errors: %d\n", e.connect + e.read + e.write + e.timeout))
end

return M
