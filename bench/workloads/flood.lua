-- flood: one client at 20× its volumetric limit, the cost of a denial.
-- The client is 203.0.113.66 (X-Forwarded-For from the trusted loopback
-- peer), so that its strikes never touch the benign workloads' client; the
-- path is the /flood route, whose volumetric limit run.sh sets at 10/s,
-- burst 10. run.sh runs it from one connection, and delay() spaces the
-- requests 5 ms apart: at most 200 requests a second, 20× the limit (a
-- little less, by the time each answer takes). Its req/s is therefore
-- fixed; what it measures is the target's CPU time per request.
wrk.method = "GET"
wrk.path = "/flood" .. browserPath
wrk.headers = with(browser, {["X-Forwarded-For"] = "203.0.113.66"})

-- delay is wrk's hook: milliseconds to wait before each request.
function delay()
  return 5
end
