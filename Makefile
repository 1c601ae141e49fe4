# Turbo Lane. `make run` starts everything on the embedded default;
# `make test` runs the whole suite with real JetStream, MinIO and libvips.
GO       ?= go
BIN      := bin/turbolane
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.PHONY: build run test check bench deps deps-run vet fmt clean

build: deps-run
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/turbolane

run: build
	./$(BIN) serve

deps:
	@bash .ci/deps.sh

deps-run:
	@bash .ci/deps.sh --run

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# The long form of the durability checker (the short form, TestChecker, runs
# in `make test`): CHECK_DURATION of load while processes are killed and paused.
CHECK_DURATION ?= 10m
check: deps
	$(GO) run ./cmd/checker -duration $(CHECK_DURATION)

bench: deps build
	$(GO) run ./bench

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
