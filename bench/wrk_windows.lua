-- wrk script for bench/run.sh (figure "connection rate"): counts responses
-- per wall-clock second and prints, after wrk's own report, one line
--   WINDOWS {"counts":[n1,n2,...],"requests":R,"errors":{...}}
-- counts: responses in each whole second of the run, in order (a second
-- with none is 0; the partial first and last seconds are dropped by the
-- caller, which asks for one second more than the windows it wants).
-- With "Connection: close" every response is one connection.
-- os.time() has one-second resolution, which is what the windows need.

counts = {}  -- a global: done() reads it with thread:get

function response(status, headers, body)
  local t = os.time()
  counts[t] = (counts[t] or 0) + 1
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local merged, lo, hi = {}, nil, nil
  for _, thread in ipairs(threads) do
    for t, n in pairs(thread:get("counts")) do
      merged[t] = (merged[t] or 0) + n
      if lo == nil or t < lo then lo = t end
      if hi == nil or t > hi then hi = t end
    end
  end
  local list = {}
  if lo ~= nil then
    for t = lo, hi do table.insert(list, tostring(merged[t] or 0)) end
  end
  local e = summary.errors
  io.write(string.format(
    'WINDOWS {"counts":[%s],"requests":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    table.concat(list, ","), summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
end
