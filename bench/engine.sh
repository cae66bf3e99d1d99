#!/usr/bin/env bash
# bench/engine.sh — measure the offline inspection engine.
#
#   1. Go benchmarks from one run: the engine with the whole shipped catalog, the
#      engine with no patches, and the decode-only floor (same frames), so the
#      ratios can be read from a single, equally noisy run.
#   2. Instructions per packet with callgrind, which counts instructions rather
#      than time and so does not depend on what else the machine is doing:
#      (replay of a seeded capture − replay of an empty capture) / packets.
#
# Writes bench/results/<date>/engine.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
BENCHTIME=${BENCHTIME:-5x}
SESSIONS=${SESSIONS:-100}
out=bench/results/$(date -u +%Y-%m-%d)
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== go benchmarks (benchtime $BENCHTIME)" >&2
go test -run '^$' -bench 'Benchmark(Engine|EngineNoPatches|DecodeFloor)$' -benchmem \
  -benchtime "$BENCHTIME" ./dataplane/engine/ | tee "$tmp/bench.txt" >&2

ipp="not measured (valgrind not installed)"
if command -v valgrind >/dev/null; then
  echo "== callgrind instruction counts" >&2
  go build -o "$tmp/patchgate" ./cmd/patchgate
  "$tmp/patchgate" gen demo --patches patches --out "$tmp/mix.pcap" --sessions "$SESSIONS" --seed 7 >&2
  head -c 24 "$tmp/mix.pcap" > "$tmp/empty.pcap"
  count() { # instructions for replaying $1
    GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 GOGC=off valgrind --tool=callgrind \
      --callgrind-out-file="$tmp/cg.out" "$tmp/patchgate" replay -q --patches patches --eve /dev/null "$1" 2>&1 |
      sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
  }
  base=$(count "$tmp/empty.pcap")
  full=$(count "$tmp/mix.pcap")
  frames=$("$tmp/patchgate" replay --patches patches --eve /dev/null "$tmp/mix.pcap" 2>&1 | sed -n 's/^packets \([0-9]*\).*/\1/p')
  ipp=$(( (full - base) / frames ))
  echo "instructions: empty capture $base, mix $full, packets $frames => $ipp per packet" >&2
fi

{
  echo "# Engine benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
  echo
  echo "Command: \`bench/engine.sh\` (BENCHTIME=$BENCHTIME SESSIONS=$SESSIONS)"
  echo
  echo '```'
  grep -E '^Benchmark' "$tmp/bench.txt"
  echo '```'
  echo
  echo "Instructions per packet (callgrind, whole shipped catalog, seeded demo mix of $SESSIONS HTTP sessions plus every patch's test traffic): **$ipp**"
} > "$out/engine.md"
cat "$out/engine.md"
