-- Creates a queued deployment and puts it at the end of the cluster's queue, in one step, unless as many as
-- may wait are waiting already, or its id was refused (P:refused:<id>: the Start that made the id gave it up,
-- its answer lost, and may have been told so; see src/http/redis_scripts/start_key.lua). Returns 1 when queued, 0 when
-- refused.
-- KEYS[1] the record (P:deployment:<id>), KEYS[2] P:deployments, KEYS[3] P:queue
-- ARGV[1] the record's JSON, ARGV[2] its id, ARGV[3] its score (creation, ms since epoch),
-- ARGV[4] how many may wait, ARGV[5] the changes channel (P:changes, which gives the prefix)
local prefix = string.sub(ARGV[5], 1, -#":changes" - 1)
if redis.call("EXISTS", prefix .. ":refused:" .. ARGV[2]) == 1 then return 0 end
if redis.call("LLEN", KEYS[3]) >= tonumber(ARGV[4]) then return 0 end
redis.call("SET", KEYS[1], ARGV[1])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[2])
redis.call("RPUSH", KEYS[3], ARGV[2])
redis.call("PUBLISH", ARGV[5], '{"change":' .. ARGV[1] .. '}')
return 1
