#!lua flags=allow-oom
-- What a claim whose answer was lost (it timed out) took: the id its token names and that deployment's record,
-- or false when it took nothing. Then the token is given up ("" for as long as claim.lua keeps a token's
-- answer), so that the claim, if Redis has yet to run it, takes nothing: the answer holds.
-- KEYS[1] P:claimed:<token>
-- ARGV[1] the prefix, ARGV[2] how long a token's answer is kept (ms)
-- Allowed while Redis is out of memory (allow-oom): what it resolves runs already, and needs its lease renewed.
local id = redis.call("GET", KEYS[1])
if not id then
  redis.call("SET", KEYS[1], "", "PX", ARGV[2])
  return false
end
if id == "" then return false end
redis.call("SET", KEYS[1], "", "PX", ARGV[2])
return { id, redis.call("GET", ARGV[1] .. ":deployment:" .. id) or false }
