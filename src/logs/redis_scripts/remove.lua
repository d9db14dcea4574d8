-- Deletes a deployment: its record, its place in the index, its log and the log's info, and tells every
-- instance, in one atomic call. Nothing of it is left behind.
-- KEYS[1] the record, KEYS[2] the index, KEYS[3] the log stream, KEYS[4] the log's info hash.
-- ARGV[1] the id, ARGV[2] the changes channel.
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({ remove = ARGV[1] }))
return 1
