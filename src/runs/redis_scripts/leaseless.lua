-- The running deployments without a lease: their instance has not renewed it in time. Returns id, last sign
-- of life (ms) pairs.
-- KEYS[1] P:running
-- ARGV[1] the prefix
local found = {}
local running = redis.call("ZRANGE", KEYS[1], 0, -1, "WITHSCORES")
for i = 1, #running, 2 do
  if redis.call("EXISTS", ARGV[1] .. ":lease:" .. running[i]) == 0 then
    found[#found + 1] = running[i]
    found[#found + 1] = running[i + 1]
  end
end
return found
