-- flood: one client far over its volumetric limit, the cost of a denial.
-- The client is 203.0.113.66 (X-Forwarded-For from the trusted loopback
-- peer), so that its strikes never touch the benign workloads' client; the
-- path is the /flood route, whose volumetric limit run.sh sets at 1,000/s,
-- burst 100: sent as fast as the target answers, from as many connections
-- as the GET, the client is at about 20x its limit at the rates edgeguard
-- answers here (the report's req/s ÷ 1,000 says by how much), so almost
-- every answer is a 429 and the process is as busy as under the GET. What
-- the goal compares is the target's CPU time per request.
wrk.method = "GET"
wrk.path = "/flood" .. browserPath
wrk.headers = with(browser, {["X-Forwarded-For"] = "203.0.113.66"})
