-- wrk script: POST /api/v1/violations with a fresh client UUID per request.
-- THOR_TOKEN must hold a bearer token.
local token = os.getenv("THOR_TOKEN")
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  ts = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 60)
end
local function uuid()
  local t = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
  return (string.gsub(t, "[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.format("%x", v)
  end))
end
request = function()
  local body = string.format(
    '{"id":"%s","category":"afval","feitcode":"H004","observed_at":"%s",' ..
    '"location":{"lat":52.4599,"lon":4.6218,"accuracy_m":6.5,"source":"gps"},' ..
    '"description":"bijgeplaatste zakken","outcome":"warning"}', uuid(), ts)
  return wrk.format("POST", "/api/v1/violations",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
