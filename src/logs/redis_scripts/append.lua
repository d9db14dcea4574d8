-- Appends lines to a deployment's log, numbered on from its last line, in one atomic call: the lines of two
-- appenders never interleave, and the count beside the stream always matches it. The log of a deployment that
-- has ended takes nothing more, whoever writes (an instance cut off past its lease, whose deployment a survivor
-- recorded interrupted, sending what it kept meanwhile): viewers were told `done` after its last line.
-- KEYS[1] the stream (P:log:<id>), KEYS[2] its info hash (P:log:<id>:info), KEYS[3] the record
-- (P:deployment:<id>).
-- ARGV[1] the appender's token, ARGV[2] this call's sequence number for it, ARGV[3] the time each line was first
-- seen (epoch ms, comma-separated), ARGV[4] a "1" for each line of stderr, else "0", ARGV[5..] the lines.
-- Returns the number of the first line, or the record's JSON (a string) when it has ended: nothing written. The
-- same call again (a retry of one whose answer was lost, Redis restarting under it) writes nothing and returns
-- what the first one did, ended or not: its lines went in before the end. Loaded after log_lines.lua.
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
local lines = {}
for i = 5, #ARGV do lines[#lines + 1] = ARGV[i] end
local times = {}
for time in string.gmatch(ARGV[3], '%d+') do times[#times + 1] = time end
local first = append_log_lines(stream, info, lines, times, ARGV[4])
if #lines > 0 then redis.call('HSET', info, field, ARGV[2] .. ' ' .. first) end
return first
