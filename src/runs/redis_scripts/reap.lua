#!lua flags=allow-oom
-- Records interrupted the running deployments whose lease is (still) missing, naming the instance that lost
-- it; one whose lease is back (its instance renewed it meanwhile) is left alone, and one that ended anyway is
-- only taken off the running ones, as is one whose record is not JSON (left as it is). Returns the JSON of each
-- record written. Each gets the notice line in its log first, in the same step (the log of an ended deployment
-- takes nothing more). Allowed while Redis is out of memory (allow-oom): it records ends. Loaded after
-- log_lines.lua.
-- KEYS[1] P:running
-- ARGV[1] the prefix, then pairs: an id, when it finished (ISO 8601: its last sign of life)
local reaped = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call("EXISTS", ARGV[1] .. ":lease:" .. id) == 0 then
    local key = ARGV[1] .. ":deployment:" .. id
    local json = redis.call("GET", key)
    local decoded, record = pcall(cjson.decode, json or "")
    if json and decoded and type(record) == "table" and record.status == "running" then
      local instance = type(record.instance) == "string" and record.instance or "unknown"
      record.status = "interrupted"
      record.finishedAt = ARGV[i + 1]
      record.reason = "instance " .. instance .. " stopped answering (its lease expired)"
      -- The notice of log_notice.ts's interruptedNotice, in the log before the end.
      local log = ARGV[1] .. ":log:" .. id
      append_log_lines(log, log .. ":info", { "shiplog: interrupted: " .. record.reason })
      json = cjson.encode(record)
      redis.call("SET", key, json)
      redis.call("PUBLISH", ARGV[1] .. ":changes", '{"change":' .. json .. '}')
      reaped[#reaped + 1] = json
    end
    redis.call("ZREM", KEYS[1], id)
  end
end
return reaped
