-- Keeps an instance's name for the process that holds it: the time to live starts again if the name is still
-- this process's, or the name is taken again if it lapsed (Redis was away, or restarted). Held by another
-- process, it is left alone. Returns 1 when the name is this process's, 0 when another holds it.
-- KEYS[1] P:instance:<name>, ARGV[1] this process's token, ARGV[2] the time to live (ms)
local holder = redis.call("GET", KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return 1
