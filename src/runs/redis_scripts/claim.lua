-- Takes the first deployment of the cluster's queue for one instance: records it running there, gives the
-- instance its lease and lists it as running, in one step, so that no other instance can take it too. Ids whose
-- record is gone or no longer queued are dropped; an id whose record is not JSON is parked in P:unreadable (a
-- set, for an operator to look at) rather than lost, and the next is taken. The claim's token names what it
-- took (P:claimed:<token> = the id, for a minute), so that a claimer whose answer was lost (a timeout) can ask
-- what it got (claimed.lua); a token given up already (P:claimed:<token> = "") takes nothing. Returns the
-- record's JSON, or false when none waits.
-- KEYS[1] P:queue, KEYS[2] P:running (sorted set: id by the last sign of life, ms), KEYS[3] P:claimed:<token>
-- ARGV[1] the prefix, ARGV[2] the instance, ARGV[3] its lease's value, ARGV[4] the lease's time to live (ms),
-- ARGV[5] now (ISO 8601), ARGV[6] now (ms since epoch), ARGV[7] the command the instance runs, as JSON (the
-- record says what ran, whichever instance created it), ARGV[8] how long the token's answer is kept (ms)
if redis.call("EXISTS", KEYS[3]) == 1 then return false end
while true do
  local id = redis.call("LPOP", KEYS[1])
  if not id then return false end
  local key = ARGV[1] .. ":deployment:" .. id
  local json = redis.call("GET", key)
  if json then
    local decoded, record = pcall(cjson.decode, json)
    if not decoded or type(record) ~= "table" then
      redis.call("SADD", ARGV[1] .. ":unreadable", id)
    elseif record.status == "queued" then
      record.status = "running"
      record.startedAt = ARGV[5]
      record.instance = ARGV[2]
      record.command = cjson.decode(ARGV[7])
      json = cjson.encode(record)
      redis.call("SET", key, json)
      redis.call("SET", ARGV[1] .. ":lease:" .. id, ARGV[3], "PX", ARGV[4])
      redis.call("ZADD", KEYS[2], ARGV[6], id)
      redis.call("SET", KEYS[3], id, "PX", ARGV[8])
      redis.call("PUBLISH", ARGV[1] .. ":changes", '{"change":' .. json .. '}')
      return json
    end
  end
end
