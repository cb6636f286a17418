-- Announce one node of a fleet and count the live ones.
-- KEYS[1]: the fleet's sorted set; members are nodes, scores their expiry
--          in microseconds on this server's clock.
-- ARGV[1]: this node; ARGV[2]: its time to live in microseconds.
-- Returns the number of live nodes, this one included.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000))
return redis.call('ZCARD', KEYS[1])
