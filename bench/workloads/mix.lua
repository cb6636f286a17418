-- mix: 90 % benign browser GETs, 10 % attacks: every tenth request is the
-- next of attacks.lua's CRS regression inputs (one per paranoia-level-1
-- rule). Each attack comes from a new client address (X-Forwarded-For from
-- the trusted loopback peer, counting up through 100.64.0.0/10), as from a
-- botnet: no attacker stays long enough to be banned, so every target
-- inspects every attack, and the benign client is never struck.
local benign, n, k

function init(args)
  dofile(args[1] .. "/attacks.lua")
  benign = wrk.format("GET", browserPath, browser)
  n, k = 0, 0
end

function request()
  n = n + 1
  if n % 10 ~= 0 then
    return benign
  end
  k = k + 1
  local a = attacks[(k - 1) % #attacks + 1]
  local ip = string.format("100.%d.%d.%d", 64 + math.floor(k / 65536) % 64, math.floor(k / 256) % 256, k % 256)
  return wrk.format(a[1], a[2], with(a[3], {["X-Forwarded-For"] = ip}), a[4])
end
