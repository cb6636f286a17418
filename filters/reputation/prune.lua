-- Delete a ban from the fleet's hash only if it still holds the value the
-- caller found expired: another node may have renewed it since.
-- KEYS[1] the hash, ARGV[1] the field, ARGV[2] the value read.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
