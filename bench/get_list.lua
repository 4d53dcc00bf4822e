-- wrk script: GET a page of 50 of the demo day's violations. THOR_TOKEN and THOR_DATE must be set.
local token = os.getenv("THOR_TOKEN")
local date = os.getenv("THOR_DATE")
request = function()
  return wrk.format("GET", "/api/v1/violations?date=" .. date .. "&limit=50",
    { ["Authorization"] = "Bearer " .. token })
end
