-- flood: one client far above its volumetric limit, the cost of a denial.
-- The client is 203.0.113.66 (X-Forwarded-For from the trusted loopback
-- peer), so that its strikes and ban never touch the benign workloads'
-- client; the path is the /flood route, whose volumetric limit run.sh sets
-- at 100/s, far below what any target answers.
wrk.method = "GET"
wrk.path = "/flood" .. browserPath
wrk.headers = with(browser, {["X-Forwarded-For"] = "203.0.113.66"})
