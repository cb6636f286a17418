-- get: a benign browser navigation, as Chrome sends it.
wrk.method = "GET"
wrk.path = browserPath
wrk.headers = browser
