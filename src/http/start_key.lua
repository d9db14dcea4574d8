-- Ends a start made under an Idempotency-Key (see redis_start_guard.ts), if the key is still held by it: a start
-- slower than the window may have lost the key to another, which is then not touched.
-- KEYS[1]: the key's entry. ARGV[1]: the value it was taken with ("pending <token>"). ARGV[2]: "settle", to leave
-- ARGV[3] (the deployment's record, JSON) there for the rest of its time; "release", to free it (the start failed).
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == "settle" then
  redis.call("SET", KEYS[1], ARGV[3], "KEEPTTL")
else
  redis.call("DEL", KEYS[1])
end
return 1
