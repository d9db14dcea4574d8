-- Appends lines to a deployment's log, numbered on from its last line, in one atomic call: the lines of two
-- appenders never interleave, and the count beside the stream always matches it. The log of a deployment that
-- has ended takes nothing more, whoever writes (an instance cut off past its lease, whose deployment a survivor
-- recorded interrupted, sending what it kept meanwhile): viewers were told `done` after its last line.
-- KEYS[1] the stream (P:log:<id>), KEYS[2] its info hash (P:log:<id>:info), KEYS[3] the record
-- (P:deployment:<id>).
-- ARGV[1] the appender's token, ARGV[2] this call's sequence number for it, ARGV[3..] the lines.
-- Returns the number of the first line, or the record's JSON (a string) when it has ended: nothing written. The
-- same call again (a retry of one whose answer was lost, Redis restarting under it) writes nothing and returns
-- what the first one did, ended or not: its lines went in before the end.
local FINAL = { succeeded = true, failed = true, cancelled = true, interrupted = true }
local stream, info = KEYS[1], KEYS[2]
local field = 'a:' .. ARGV[1]
local seen = redis.call('HGET', info, field)
if seen then
  local sequence, first = string.match(seen, '^(%d+) (%d+)$')
  if sequence == ARGV[2] then return tonumber(first) end
end
-- The status without decoding the record on every call: in JSON as JSON.stringify and cjson write it (no
-- spaces), `"status":"` can only be that key, since a quote inside a string is escaped. A missing record (Redis
-- lost its data, and its owner has not written it again yet) is not an end.
local record = redis.call('GET', KEYS[3])
if record and FINAL[string.match(record, '"status":"(%a+)"')] then return record end
local last = tonumber(redis.call('HGET', info, 'lines'))
if not last then
  -- No count: a new log, or one whose hash was deleted by hand. The stream's last id says where it ends.
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  last = top[1] and tonumber(string.match(top[1][1], '^(%d+)')) or 0
end
local count = #ARGV - 2
if count == 0 then return last + 1 end
local bytes = 0
for i = 1, count do
  local line = ARGV[i + 2]
  redis.call('XADD', stream, string.format('%d-0', last + i), 'l', line)
  bytes = bytes + #line + 1
end
local time = redis.call('TIME')
local writtenAt = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
redis.call('HSET', info, 'lines', last + count, 'writtenAt', writtenAt, field, ARGV[2] .. ' ' .. (last + 1))
redis.call('HINCRBY', info, 'bytes', bytes)
return last + 1
