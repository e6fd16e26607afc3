-- sagaflow: the commands of these outbox entries were published: forget them.
-- KEYS[1] outbox stream; ARGV[1] consumer group; ARGV[2..] stream ids.
-- Returns the number of entries deleted.
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
