-- Takes the next deployment of the cluster's queue for one instance: the first queued for a target that has
-- none running (one deployment at a time per target, in the cluster; a target is free once its running one's
-- record has ended) and that this instance can run (its target among the instance's commands). Records it
-- running there, with its target's command, gives the instance its lease and lists it as running, in one step,
-- so that no other instance can take it too, nor another deployment of the same target. Ids whose record is gone
-- or no longer queued are dropped; an id whose record is not JSON is parked in P:unreadable (a set, for an
-- operator to look at) rather than lost. The claim's token names what it took (P:claimed:<token> = the id, for a
-- minute), so that a claimer whose answer was lost (a timeout) can ask what it got (claimed.lua); a token given
-- up already (P:claimed:<token> = "") takes nothing. Returns the record's JSON, or false when none can be taken.
-- Nothing is read of the queue when every target the instance runs is busy (one target with one running: the
-- common case); else it is read until the first it can take, at most whole: it is bounded (--max-queued), and
-- those for busy targets stay in their places.
-- KEYS[1] P:queue, KEYS[2] P:running (sorted set: id by the last sign of life, ms), KEYS[3] P:claimed:<token>
-- ARGV[1] the prefix, ARGV[2] the instance, ARGV[3] its lease's value, ARGV[4] the lease's time to live (ms),
-- ARGV[5] now (ISO 8601), ARGV[6] now (ms since epoch), ARGV[7] the command of each target the instance runs,
-- as a JSON object (null: the simulation; the record says what ran, whichever instance created it), ARGV[8] how
-- long the token's answer is kept (ms), ARGV[9] the target of a record that names none (written before targets)
if redis.call("EXISTS", KEYS[3]) == 1 then return false end
local prefix = ARGV[1]
local commands = cjson.decode(ARGV[7])
local function decode(json)
  local decoded, record = pcall(cjson.decode, json or "")
  if json and decoded and type(record) == "table" then return record end
  return nil
end
local function target_of(record)
  return type(record.target) == "string" and record.target or ARGV[9]
end
-- The targets busy: those of the deployments running anywhere in the cluster.
local busy = {}
for _, id in ipairs(redis.call("ZRANGE", KEYS[2], 0, -1)) do
  local record = decode(redis.call("GET", prefix .. ":deployment:" .. id))
  if record and record.status == "running" then busy[target_of(record)] = true end
end
local free = false
for target in pairs(commands) do
  if not busy[target] then free = true end
end
if not free then return false end
for _, id in ipairs(redis.call("LRANGE", KEYS[1], 0, -1)) do
  local key = prefix .. ":deployment:" .. id
  local json = redis.call("GET", key)
  local record = decode(json)
  if not record or record.status ~= "queued" then
    if json and not record then redis.call("SADD", prefix .. ":unreadable", id) end
    redis.call("LREM", KEYS[1], 1, id)
  else
    local target = target_of(record)
    local command = commands[target]
    if command ~= nil and not busy[target] then
      redis.call("LREM", KEYS[1], 1, id)
      record.status = "running"
      record.startedAt = ARGV[5]
      record.instance = ARGV[2]
      record.command = command
      json = cjson.encode(record)
      redis.call("SET", key, json)
      redis.call("SET", prefix .. ":lease:" .. id, ARGV[3], "PX", ARGV[4])
      redis.call("ZADD", KEYS[2], ARGV[6], id)
      redis.call("SET", KEYS[3], id, "PX", ARGV[8])
      redis.call("PUBLISH", prefix .. ":changes", '{"change":' .. json .. '}')
      return json
    end
  end
end
return false
