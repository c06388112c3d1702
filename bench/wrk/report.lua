-- POST a report with a new Idempotency-Key each time (as a new report from a phone).
package.path = os.getenv("WRK_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"lon": %s, "lat": %s, "category": "neighbours", "severity": 1, "description": "压测"}',
  os.getenv("LON"), os.getenv("LAT"))
local run = string.format("%08x", os.time() % 0xffffffff)
setup = common.setup
function init(args) fivexx = 0; sent = 0 end
function request()
  sent = sent + 1
  wrk.headers["Idempotency-Key"] = string.format("%s-%04x-4000-8000-%012x", run, tid, sent)
  return wrk.format()
end
function response(status, headers, body) common.count(status) end
done = common.done
