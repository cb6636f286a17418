-- GCRA over every key of one request, in one round trip.
--
-- KEYS[i]: the state of one (policy, client); all share a hash tag.
-- ARGV[1]: the decision time in microseconds, or 0 to use the server's
--          clock (production always sends 0, so edge nodes' clocks do not
--          matter; tests send fixed instants).
-- ARGV[2+4(i-1) ..]: per key: interval (µs), burst, cost, shadow (0/1).
--
-- Every key is decided first; the new theoretical arrival times (TAT) are
-- written only when no enforced key denies, and then only for keys that
-- allowed. A denied request writes nothing. Only the TAT is stored, with a
-- TTL of the time until it is in the past: an expired key and a fresh key
-- are the same state.
--
-- Reply: {allowed, then per key: allowed, remaining, retry_after_us,
-- reset_after_us}. The arithmetic is decide() in gcra.go, step for step;
-- every value stays an integer below 2^53, exact in Lua's doubles.

local now = tonumber(ARGV[1])
if now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local out = {1}
local nexts = {}
for i = 1, #KEYS do
  local a = 2 + (i - 1) * 4
  local iv = tonumber(ARGV[a])
  local burst = tonumber(ARGV[a + 1])
  local cost = tonumber(ARGV[a + 2])
  local shadow = ARGV[a + 3] == '1'
  local tau = iv * burst

  local tat = tonumber(redis.call('GET', KEYS[i]) or 0) or 0
  if tat < now then
    tat = now
  end
  local nxt = tat + iv * cost
  if nxt - now <= tau then
    nexts[i] = nxt
    out[#out + 1] = 1
    out[#out + 1] = math.floor((now + tau - nxt) / iv)
    out[#out + 1] = 0
    out[#out + 1] = nxt - now
  else
    nexts[i] = false
    if not shadow then
      out[1] = 0
    end
    local rem = math.floor((now + tau - tat) / iv)
    if rem < 0 then
      rem = 0
    end
    out[#out + 1] = 0
    out[#out + 1] = rem
    out[#out + 1] = nxt - tau - now
    out[#out + 1] = tat - now
  end
end

if out[1] == 1 then
  for i = 1, #KEYS do
    if nexts[i] then
      local ttl_ms = math.ceil((nexts[i] - now) / 1000)
      redis.call('SET', KEYS[i], string.format('%d', nexts[i]), 'PX', ttl_ms)
    end
  end
end
return out
