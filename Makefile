# Gatehouse build entry points. `make run` and `make test` are all a new user needs.
SHELL := /bin/bash
export GOTOOLCHAIN := local

GO        ?= go
BIN       := bin
DATA_DIR  ?= .data
PROTO_DIRS := proto/gatehouse/admin/v1 proto/gatehouse/authz/v1
# google/api/*.proto come from Debian's golang-github-gogo-googleapis-dev; validate.proto from the
# pinned protoc-gen-validate module.
GOOGLEAPIS ?= /usr/share/gocode/src/github.com/gogo/googleapis

.PHONY: all build run test bench lint proto proto-check

all: build

build:
	$(GO) build -o $(BIN)/ ./authz/cmd/... ./controlplane/cmd/... ./deploy/example-runtime

run: build
	BIN=$(BIN) DATA_DIR=$(DATA_DIR) scripts/run.sh

test: lint proto-check
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

proto:
	scripts/genproto.sh

# proto-check regenerates into a temporary tree and fails when the committed code differs.
proto-check:
	scripts/genproto.sh --check
