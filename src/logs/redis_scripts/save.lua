-- Writes a deployment's record, adds it to the index, and tells every instance, in one atomic call: no change
-- is ever missed between the write and its announcement. A record that has ended is never written over: an
-- ended deployment never changes again, whichever instance tries.
-- KEYS[1] the record (P:deployment:<id>), KEYS[2] the index (P:deployments).
-- ARGV[1] the record's JSON, ARGV[2] its id, ARGV[3] its score (createdAt in ms), ARGV[4] the changes channel.
-- Returns 1 when written (or the same record was there already), else the stored record's JSON.
local FINAL = { succeeded = true, failed = true, cancelled = true, interrupted = true }

-- The same record, whichever wrote it (JSON.stringify or cjson: another order of fields, a missing field for
-- null): no change, so no refusal. Tables (the parameters) are compared by what they hold.
local function same(a, b)
  for key, value in pairs(a) do
    local other = b[key]
    if type(value) == 'table' and type(other) == 'table' then
      if not same(value, other) then return false end
    elseif other ~= value and not (value == cjson.null and other == nil) then
      return false
    end
  end
  for key, value in pairs(b) do
    if a[key] == nil and value ~= cjson.null then return false end
  end
  return true
end

local stored = redis.call('GET', KEYS[1])
if stored == ARGV[1] then return 1 end
if stored then
  local ok, record = pcall(cjson.decode, stored)
  if ok and type(record) == 'table' and FINAL[record.status] then
    if same(record, cjson.decode(ARGV[1])) then return 1 end
    return stored
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('PUBLISH', ARGV[4], '{"change":' .. ARGV[1] .. '}')
return 1
