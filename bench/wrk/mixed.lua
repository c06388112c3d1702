-- The soak: locate 50%, a case read 30%, a new report 20%; $TOKEN reads, $REPORTER reports.
package.path = os.getenv("WRK_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
local reader = "Bearer " .. os.getenv("TOKEN")
local reporter = "Bearer " .. os.getenv("REPORTER")
local lon, lat, case = os.getenv("LON"), os.getenv("LAT"), os.getenv("CASE")
local locate = string.format("/api/v1/grid/locate?lon=%s&lat=%s", lon, lat)
local read = "/api/v1/cases/" .. case
local body = string.format(
  '{"lon": %s, "lat": %s, "category": "neighbours", "severity": 1, "description": "压测"}', lon, lat)
local run = string.format("%08x", (os.time() + 1) % 0xffffffff)
setup = common.setup
function init(args) fivexx = 0; sent = 0 end
function request()
  sent = sent + 1
  local r = sent % 10
  if r < 5 then
    return wrk.format("GET", locate, {Authorization = reader})
  elseif r < 8 then
    return wrk.format("GET", read, {Authorization = reader})
  end
  return wrk.format("POST", "/api/v1/reports", {Authorization = reporter, ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%s-%04x-4000-8000-%012x", run, tid, sent)}, body)
end
function response(status, headers, body) common.count(status) end
done = common.done
