-- Ends a start made under an Idempotency-Key (see redis_start_guard.ts), if the key is still held by it: a start
-- slower than the window may have lost the key to another, which is then not touched.
-- KEYS[1]: the key's entry. ARGV[1]: the value it was taken with ("pending <id>"). ARGV[2]: "settle", to leave
-- ARGV[3] (the deployment's record, JSON) there for the rest of its time; "resolve", after a start that failed,
-- maybe only on its way back (a timeout): with KEYS[2] the record (P:deployment:<id>) and KEYS[3]
-- P:refused:<id>, ARGV[3] the window (ms). A record made after all is left under the key and returned; else
-- the id is refused (enqueue.lua will not create it, should Redis have yet to run that creation), the key is
-- freed, and false returned.
if ARGV[2] == "resolve" then
  local record = redis.call("GET", KEYS[2])
  if record then
    if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("SET", KEYS[1], record, "KEEPTTL") end
    return record
  end
  redis.call("SET", KEYS[3], "1", "PX", ARGV[3])
  if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) end
  return false
end
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call("SET", KEYS[1], ARGV[3], "KEEPTTL")
return 1
