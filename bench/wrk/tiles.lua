-- GET a TILES×TILES block of tiles of one zoom, starting at the tile in the URL, at random.
package.path = os.getenv("WRK_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
local n = tonumber(os.getenv("TILES"))
local z, x0, y0 = string.match(wrk.path, "/(%d+)/(%d+)/(%d+)%.mvt$")
local prefix = string.match(wrk.path, "^(.*)/%d+/%d+/%d+%.mvt$")
setup = common.setup
function init(args) fivexx = 0; math.randomseed(os.time() + (tid or 0)) end
function request()
  local x, y = tonumber(x0) + math.random(0, n - 1), tonumber(y0) + math.random(0, n - 1)
  return wrk.format("GET", string.format("%s/%s/%d/%d.mvt", prefix, z, x, y))
end
function response(status, headers, body) common.count(status) end
done = common.done
