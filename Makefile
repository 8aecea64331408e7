# cairn — see README.md.
.PHONY: run build test fuzz bench

run:
	go run ./cmd/cairn server

build:
	go build -o bin/cairn ./cmd/cairn
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/cairn-guest-init ./cmd/cairn-guest-init

# The whole test suite, starting what it needs.
test:
	./scripts/test

fuzz:
	FUZZTIME=$${FUZZTIME:-30s} ./scripts/fuzz

bench:
	go run ./bench static
