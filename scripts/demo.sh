#!/usr/bin/env bash
# make demo: first the offline part (every shipped patch proves itself
# against its own test traffic; a generated capture is replayed through the
# engine), then, as root, the cluster: `patchgate demo` brings up a 3-node
# ECMP lab in network namespaces whose patchgate nodes form one cluster (Raft,
# flow sharing over NATS, a route controller), pushes a signed patch set with
# patchctl, sends benign traffic and every shipped patch's exploits through
# it, prints what passed and what was blocked per node and per CVE, kills a
# node mid-traffic (its sessions go on), restarts it, rolls out a new patch
# set with patchctl under traffic and tears the lab down. Extra arguments go to `patchgate demo`
# (make demo DEMO_FLAGS="--variant l2").
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/patchgate
out=demo-out
mkdir -p "$out"

echo "== offline: every patch proves itself against its own test traffic"
"$bin" patches test patches | tail -1
echo
echo "== offline: a generated capture (benign mix and every patch test) replayed through the engine"
"$bin" gen demo --patches patches --out "$out/demo.pcap"
"$bin" replay --patches patches --eve "$out/eve.json" "$out/demo.pcap" 2>&1 | tail -n 3
echo "   alerts in $out/eve.json"
echo

if [ "$(id -u)" != 0 ]; then
	echo "the cluster demo needs root (network namespaces, iptables, AF_PACKET): sudo make demo" >&2
	exit 1
fi

# A prefix no lab uses, so that the trap below can only ever remove this
# demo's lab: whatever happens to the demo process, its lab goes.
prefix=""
for _ in 1 2 3 4 5 6 7 8; do
	p="pg$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
	if ! ip netns list | grep -q "^$p-" && [ ! -e "/run/patchgate-lab/$p" ]; then
		prefix=$p
		break
	fi
done
if [ -z "$prefix" ]; then
	echo "no free lab prefix found" >&2
	exit 1
fi
trap '"$bin" lab down --prefix "$prefix" >/dev/null 2>&1 || true' EXIT
"$bin" demo --prefix "$prefix" "$@"
