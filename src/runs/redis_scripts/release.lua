#!lua flags=allow-oom
-- Lets go of the lease of a deployment that ended, if it is still this instance's, and of its place among the
-- running ones. Allowed while Redis is out of memory (allow-oom): it only frees.
-- KEYS[1] P:lease:<id>, KEYS[2] P:running
-- ARGV[1] the lease's value, ARGV[2] the id
local held = redis.call("GET", KEYS[1])
if held == ARGV[1] then redis.call("DEL", KEYS[1]) end
if held == ARGV[1] or not held then redis.call("ZREM", KEYS[2], ARGV[2]) end
return 1
