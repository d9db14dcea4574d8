-- Lets go of a lock (P:prune) if it is still held with this value: taken by another since it expired, it stays.
-- KEYS[1] the lock, ARGV[1] its value
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
