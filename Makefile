# The test command of the README. Tests that need Redis start their own
# redis-server on free loopback ports; install it first (apt-get install
# redis-server) or they are skipped outside CI.
GO ?= go

.PHONY: test build bench fuzz
test:
	$(GO) test -race -timeout 30m ./...

build:
	$(GO) build -o bin/edgeguard ./cmd/edgeguard

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
