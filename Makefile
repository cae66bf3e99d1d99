# patchgate — make targets a newcomer guesses.
#   make demo    build, replay demo traffic offline, then (root) a 3-node cluster: exploits blocked, a node killed, a rollout
#   make test    go vet + go test -race ./... (installs the Debian packages the tests need)
#   make build   build the binaries into bin/
#   make bench   engine benchmarks + the replay benchmark through the lab (as root; make bench-quick: a few minutes)
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
# (nginx, ModSecurity, the CRS and wrk: bench/waf's side-by-side test.)
DEB_PACKAGES ?= ca-certificates iproute2 iptables tcpreplay nginx libnginx-mod-http-modsecurity modsecurity-crs wrk

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
	$(GO) -C bench/coraza vet ./...
	$(GO) -C bench/coraza test $(TESTFLAGS) ./...
	$(GO) -C bench/plot vet ./...

# The cluster part needs root; DEMO_FLAGS go to `patchgate demo` (e.g. --variant l2).
demo: deps build
	@scripts/demo.sh $(DEMO_FLAGS)

# bench: engine benchmarks (bench/engine.sh), then the replay benchmark through the
# lab (bench/runner: L3+L2, N=1..3, tcpreplay ramps) and the peers in the same run
# (bench/coraza: Coraza vs patchgate; bench/waf: kernel vs patchgate vs
# nginx+ModSecurity+CRS with wrk, latency per packet and per request): report.md,
# results.json, PNGs into bench/results/<date>/; as root, ~25 min. bench-quick:
# L3+L2, N=3 only, 3 rates and top speed, a small capture, short wrk runs (a few
# minutes). BENCH_FLAGS go to `pgbench run` (see bench/README.md).
BENCH_FLAGS ?=
BENCH_DEBS  := $(DEB_PACKAGES) valgrind
.PHONY: bench-quick

bench: build
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BENCH_DEBS)"
	bench/engine.sh
	$(GO) run ./bench/cmd/pgbench run --binary $(BIN)/patchgate $(BENCH_FLAGS)

bench-quick: build
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BENCH_DEBS)"
	$(GO) run ./bench/cmd/pgbench run --quick --binary $(BIN)/patchgate $(BENCH_FLAGS)

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
