#!/usr/bin/env bash
# make demo: generate benign traffic plus every shipped patch's test traffic
# (exploits and benign look-alikes), replay it through the engine and show
# what was blocked.
set -euo pipefail
cd "$(dirname "$0")/.."
out=demo-out
mkdir -p "$out"
echo "== patches shipped"
bin/patchgate patches list patches
echo
echo "== proving every patch against its own test traffic"
bin/patchgate patches test patches | tail -1
echo
echo "== writing demo capture"
bin/patchgate gen demo --patches patches --out "$out/demo.pcap"
echo
echo "== replaying $out/demo.pcap (alerts in $out/eve.json)"
bin/patchgate replay --patches patches --eve "$out/eve.json" "$out/demo.pcap"
echo
echo "== first alerts (EVE JSON)"
head -n 3 "$out/eve.json"
