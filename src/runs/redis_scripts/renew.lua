#!lua flags=allow-oom
-- Renews the leases of the deployments one instance runs, and notes its sign of life. A lease is renewed only
-- when it is this instance's own (same value: a restarted instance of the same name has another token), or
-- when it has expired while the record still says the deployment runs on this instance (Redis was away for
-- longer than its time to live: the owner asserts it again). Returns id, outcome, detail triples for the leases
-- not renewed: "lost" (another holds it, or the record says the deployment ended or runs elsewhere), "missing"
-- (no record: Redis lost its data, or a record that is not JSON: the owner writes it again), and "cancelled" for
-- a lease renewed whose deployment a cancel asks to stop (P:cancelling:<id>), its detail who cancels (the mark:
-- a name or null, as JSON); the detail of the others is "". Allowed while Redis is out of memory (allow-oom): a
-- lease that cannot be renewed lapses, and a healthy deployment is reaped.
-- KEYS[1] P:running
-- ARGV[1] the prefix, ARGV[2] the instance, ARGV[3] its lease's value, ARGV[4] the time to live (ms),
-- ARGV[5] now (ms since epoch), ARGV[6...] the ids
local lost = {}
for i = 6, #ARGV do
  local id = ARGV[i]
  local lease = ARGV[1] .. ":lease:" .. id
  local held = redis.call("GET", lease)
  local outcome = held == ARGV[3] and "mine" or "lost"
  if not held then
    local json = redis.call("GET", ARGV[1] .. ":deployment:" .. id)
    local decoded, record = pcall(cjson.decode, json or "")
    if json and decoded and type(record) == "table" then
      if record.status == "running" and record.instance == ARGV[2] then outcome = "mine" end
    else
      outcome = "missing"
    end
  end
  if outcome == "mine" then
    redis.call("SET", lease, ARGV[3], "PX", ARGV[4])
    redis.call("ZADD", KEYS[1], ARGV[5], id)
    local by = redis.call("GET", ARGV[1] .. ":cancelling:" .. id)
    if by then
      lost[#lost + 1] = id
      lost[#lost + 1] = "cancelled"
      lost[#lost + 1] = by
    end
  else
    lost[#lost + 1] = id
    lost[#lost + 1] = outcome
    lost[#lost + 1] = ""
  end
end
return lost
