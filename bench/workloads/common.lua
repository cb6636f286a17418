-- Shared by every workload: run.sh puts this file in front of the
-- workload's own script (wrk takes one script).
--
-- done prints one machine-readable line that run.sh collects:
--   RESULT <req/s> <p50 µs> <p99 µs> <failed> <requests>
-- "failed" counts responses with status >= 400 and socket errors
-- (connect, read, write, timeout): a target that answers the benign
-- workload with errors must show it, not look fast.

-- browser is a current desktop Chrome's navigation headers.
browser = {
  ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
  ["Accept-Language"] = "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7",
  ["Accept-Encoding"] = "gzip, deflate, br, zstd",
  ["Referer"] = "http://shop.example/collections/running",
  ["Sec-Ch-Ua"] = '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
  ["Sec-Ch-Ua-Mobile"] = "?0",
  ["Sec-Ch-Ua-Platform"] = '"Linux"',
  ["Sec-Fetch-Dest"] = "document",
  ["Sec-Fetch-Mode"] = "navigate",
  ["Sec-Fetch-Site"] = "same-origin",
  ["Sec-Fetch-User"] = "?1",
  ["Upgrade-Insecure-Requests"] = "1",
  ["Cookie"] = "session=4f9c2b7e1a8d4e0c9b3f6a2d5e7c1b08; cart=3; theme=dark; _ga=GA1.1.1840362911.1732800000",
}

-- browserPath is the page the benign GET asks for.
browserPath = "/products/4711-trail-running-shoe?color=blue&size=42&ref=collection"

-- api is what a browser's fetch() of a JSON API sends.
api = {
  ["User-Agent"] = browser["User-Agent"],
  ["Accept"] = "application/json",
  ["Accept-Language"] = browser["Accept-Language"],
  ["Accept-Encoding"] = browser["Accept-Encoding"],
  ["Content-Type"] = "application/json",
  ["Origin"] = "http://shop.example",
  ["Referer"] = "http://shop.example/checkout",
  ["Sec-Fetch-Dest"] = "empty",
  ["Sec-Fetch-Mode"] = "cors",
  ["Sec-Fetch-Site"] = "same-origin",
  ["Cookie"] = browser["Cookie"],
}

-- apiPath is where the benign JSON POST goes.
apiPath = "/api/v1/orders"

-- readFile returns a file's whole content; run.sh passes the workloads
-- directory as the script's first argument.
function readFile(name)
  local f = assert(io.open(name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- with returns a copy of headers with the given ones added.
function with(headers, extra)
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  for k, v in pairs(extra) do h[k] = v end
  return h
end

function done(summary, latency, requests)
  local e = summary.errors
  local failed = e.status + e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT\t%.1f\t%d\t%d\t%d\t%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    failed, summary.requests))
end

-- With BENCH_CHECK set, run.sh probes a target before measuring it: the
-- thread counts statuses, and done prints
--   CHECK <first status> <last status> <2xx count> <other count> <socket errors>
if os.getenv("BENCH_CHECK") then
  local threads = {}

  function setup(thread)
    table.insert(threads, thread)
  end

  function response(status, headers, body)
    first = first or status
    last = status
    if status >= 200 and status < 300 then
      nok = (nok or 0) + 1
    else
      nbad = (nbad or 0) + 1
    end
  end

  function done(summary, latency, requests)
    local t = threads[1]
    local e = summary.errors
    io.write(string.format("CHECK\t%s\t%s\t%d\t%d\t%d\n", tostring(t:get("first")),
      tostring(t:get("last")), t:get("nok") or 0, t:get("nbad") or 0,
      e.connect + e.read + e.write + e.timeout))
  end
end
