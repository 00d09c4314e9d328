-- wrk script: POSTs the AdmissionReview files of a directory in turn.
--   wrk ... -s bench/wrk_reviews.lua URL -- DIR
local bodies = {}
local i = 0

function init(args)
  local dir = args[1]
  local list = io.popen('ls "' .. dir .. '"')
  for name in list:lines() do
    local f = io.open(dir .. "/" .. name, "rb")
    bodies[#bodies + 1] = f:read("*a")
    f:close()
  end
  list:close()
  -- Threads start at different offsets so they do not send the same body in step.
  i = math.random(#bodies)
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, bodies[i])
end
