-- Appends lines to a deployment's log: the stream (P:log:<id>, entry id `<line>-0`, fields `l` the text, `t`
-- when shiplog first saw it in epoch ms, `e` 1 for a line of stderr, else 0) and its info hash (P:log:<id>:info:
-- `lines`, `bytes`, `writtenAt`), numbered on from its last line. Not a script of its own: it is put in front of
-- those that write a log (RedisScript.load's `include`): append.lua, and the scripts that end a deployment with
-- a notice line in the same step (src/runs/redis_scripts: cancel.lua, reap.lua). `times` (the time of each
-- line, as text) and `stderr` (a "0"/"1" per line) may be nil: the lines were seen now (Redis's clock), on stdout.
-- Returns the number of the first line written (with none, the number the next line will have).
local function append_log_lines(stream, info, lines, times, stderr)
  local last = tonumber(redis.call('HGET', info, 'lines'))
  if not last then
    -- No count: a new log, or one whose hash was deleted by hand. The stream's last id says where it ends.
    local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
    last = top[1] and tonumber(string.match(top[1][1], '^(%d+)')) or 0
  end
  if #lines == 0 then return last + 1 end
  local time = redis.call('TIME')
  local writtenAt = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
  local bytes = 0
  for i, line in ipairs(lines) do
    local seen = times and times[i] or writtenAt
    local fromStderr = stderr and string.sub(stderr, i, i) == '1' and '1' or '0'
    redis.call('XADD', stream, string.format('%d-0', last + i), 'l', line, 't', seen, 'e', fromStderr)
    bytes = bytes + #line + 1
  end
  redis.call('HSET', info, 'lines', last + #lines, 'writtenAt', writtenAt)
  redis.call('HINCRBY', info, 'bytes', bytes)
  return last + 1
end
