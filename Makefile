# patchgate — make targets a newcomer guesses.
#   make demo    build, replay demo traffic offline, then (root) a 3-node lab: benign traffic and every exploit, per node and CVE
#   make test    go vet + go test -race ./... (installs the Debian packages the tests need)
#   make build   build the binaries into bin/
#   make bench   engine benchmarks + instructions per packet (bench/engine.sh; README "Performance")
#   make fuzz    run every fuzz target for FUZZTIME each
#   make lint    gofmt, go vet, staticcheck when installed

SHELL       := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO          ?= go
BIN         := bin
FUZZTIME    ?= 10s
TESTFLAGS   ?= -race -timeout 30m
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
# Debian packages the test suite and demo use (installed when root and missing).
DEB_PACKAGES ?= ca-certificates iproute2 iptables tcpreplay

.PHONY: all build test demo bench fuzz lint deps clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (run as root to install)"; fi; \
	fi
	$(GO) mod download

test: deps
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

# The cluster part needs root; DEMO_FLAGS go to `patchgate demo` (e.g. --variant l2).
demo: deps build
	@scripts/demo.sh $(DEMO_FLAGS)

bench:
	bench/engine.sh

fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed; skipped"; fi

clean:
	rm -rf $(BIN)

# gen regenerates api/pb from api/patchgate.proto with Debian's protoc and
# pinned Go plugins (protoc-gen-go matches google.golang.org/protobuf in go.mod).
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
.PHONY: gen
gen:
	command -v protoc >/dev/null || (apt-get update && apt-get install -y protobuf-compiler)
	GOBIN=$(CURDIR)/bin/protoc-plugins go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(CURDIR)/bin/protoc-plugins go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH=$(CURDIR)/bin/protoc-plugins:$$PATH protoc -I api --go_out=api/pb --go_opt=paths=source_relative \
		--go-grpc_out=api/pb --go-grpc_opt=paths=source_relative api/patchgate.proto
