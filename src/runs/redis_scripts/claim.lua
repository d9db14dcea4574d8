-- Takes the first deployment of the cluster's queue for one instance: records it running there, gives the
-- instance its lease and lists it as running, in one step, so that no other instance can take it too. Ids whose
-- record is gone or no longer queued are dropped. Returns the record's JSON, or false when none waits.
-- KEYS[1] P:queue, KEYS[2] P:running (sorted set: id by the last sign of life, ms)
-- ARGV[1] the prefix, ARGV[2] the instance, ARGV[3] its lease's value, ARGV[4] the lease's time to live (ms),
-- ARGV[5] now (ISO 8601), ARGV[6] now (ms since epoch), ARGV[7] the command the instance runs, as JSON (the
-- record says what ran, whichever instance created it)
while true do
  local id = redis.call("LPOP", KEYS[1])
  if not id then return false end
  local key = ARGV[1] .. ":deployment:" .. id
  local json = redis.call("GET", key)
  if json then
    local record = cjson.decode(json)
    if record.status == "queued" then
      record.status = "running"
      record.startedAt = ARGV[5]
      record.instance = ARGV[2]
      record.command = cjson.decode(ARGV[7])
      json = cjson.encode(record)
      redis.call("SET", key, json)
      redis.call("SET", ARGV[1] .. ":lease:" .. id, ARGV[3], "PX", ARGV[4])
      redis.call("ZADD", KEYS[2], ARGV[6], id)
      redis.call("PUBLISH", ARGV[1] .. ":changes", '{"change":' .. json .. '}')
      return json
    end
  end
end
