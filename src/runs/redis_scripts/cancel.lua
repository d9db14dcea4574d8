#!lua flags=allow-oom
-- Cancels a deployment wherever it is: a queued one leaves the queue, gets the notice line in its log (before
-- its end: the log of an ended deployment takes nothing more) and is recorded cancelled by whoever cancels, in
-- one step; for a running one, the instance running it is asked to stop it (on the cancel channel, and by a
-- mark its next renewal finds, P:cancelling:<id> = who cancels, as JSON, for a minute), and records the same.
-- Returns {"cancelled", json} or {"stopping", json}, or false when it has ended, is unknown, or its record is
-- not JSON (left as it is: nothing can be said of it). Allowed while Redis is out of memory (allow-oom): a
-- cancel records an end, which frees what the deployment would use. Loaded after log_lines.lua.
-- KEYS[1] P:queue
-- ARGV[1] the prefix, ARGV[2] the id, ARGV[3] now (ISO 8601), ARGV[4] who cancels, as JSON (a name, or null),
-- ARGV[5] the notice line for the log of a queued one
local key = ARGV[1] .. ":deployment:" .. ARGV[2]
local json = redis.call("GET", key)
if not json then return false end
local decoded, record = pcall(cjson.decode, json)
if not decoded or type(record) ~= "table" then return false end
if record.status == "queued" then
  redis.call("LREM", KEYS[1], 1, ARGV[2])
  local log = ARGV[1] .. ":log:" .. ARGV[2]
  append_log_lines(log, log .. ":info", { ARGV[5] })
  record.status = "cancelled"
  record.finishedAt = ARGV[3]
  record.cancelledBy = cjson.decode(ARGV[4])
  json = cjson.encode(record)
  redis.call("SET", key, json)
  redis.call("PUBLISH", ARGV[1] .. ":changes", '{"change":' .. json .. '}')
  return { "cancelled", json }
elseif record.status == "running" then
  -- Also a mark the owner's renewals find: a message on the channel is lost if its pub/sub connection is.
  redis.call("SET", ARGV[1] .. ":cancelling:" .. ARGV[2], ARGV[4], "PX", 60000)
  redis.call("PUBLISH", ARGV[1] .. ":cancel", cjson.encode({ id = ARGV[2], by = cjson.decode(ARGV[4]) }))
  return { "stopping", json }
end
return false
