-- GET the URL given to wrk, as the user whose token is in $TOKEN.
package.path = os.getenv("WRK_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
setup = common.setup
function init(args) fivexx = 0 end
function response(status, headers, body) common.count(status) end
done = common.done
