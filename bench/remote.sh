#!/usr/bin/env bash
# Remote-task overhead and workspace throughput, on this machine, over loopback.
#
#   bench/remote.sh [RUNS]
#   SLOTH_BIN=/path/to/sloth-runner bench/remote.sh [RUNS]   # measure another build
#
# Builds the release binary, starts one agent, then times whole `sloth-runner run` invocations
# (process start, Lua VM, pipeline load, and for remote tasks: pack, gRPC, agent VM, changes,
# apply) and prints medians. The baseline is the same pipeline with the task run locally, in the
# same command, so the ratio holds on a noisy machine.
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
runs=${1:-21}
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
bin="${SLOTH_BIN:-$PWD/target/release/sloth-runner}"

scratch=$(mktemp -d)
agent_out="$scratch/agent.out"
"$bin" --quiet agent -p 0 --name bench > "$agent_out" &
agent_pid=$!
trap 'kill $agent_pid 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 200); do
  grep -q "^listening on" "$agent_out" 2>/dev/null && break
  sleep 0.01
done
address=$(sed -n 's/^listening on //p' "$agent_out")

mkdir -p "$scratch/ws"
for i in $(seq 100); do echo "file $i" > "$scratch/ws/f$i.txt"; done
cat > "$scratch/ws/local.lua" <<LUA
TaskDefinitions = { g = { tasks = {
  { name = "t", command = function() local f = assert(io.open("out.txt", "w")); f:write("x"); f:close(); return true end },
} } }
LUA
cat > "$scratch/ws/remote.lua" <<LUA
TaskDefinitions = { g = { agents = { a = { address = "$address" } }, tasks = {
  { name = "t", agent = "a", command = function() local f = assert(io.open("out.txt", "w")); f:write("x"); f:close(); return true end },
} } }
LUA

. "$bench_dir/lib.sh"

cd "$scratch/ws"
local_ms=$(median_ms "$bin" run local.lua)
remote_ms=$(median_ms "$bin" run remote.lua)
echo "trivial task, 100-file workspace, median of $runs runs:"
echo "  local  run: ${local_ms} ms"
echo "  remote run: ${remote_ms} ms  (ratio $(awk "BEGIN { printf \"%.2f\", $remote_ms / $local_ms }"), overhead $(awk "BEGIN { printf \"%.2f\", $remote_ms - $local_ms }") ms)"

# 64 MiB of incompressible data shipped, copied on the agent, and the copy brought back.
mkdir -p "$scratch/big"
head -c $((64 * 1024 * 1024)) /dev/urandom > "$scratch/big/big.bin"
cat > "$scratch/big/tasks.lua" <<LUA
TaskDefinitions = { g = { agents = { a = { address = "$address" } }, tasks = {
  { name = "copy", agent = "a", command = "cp big.bin copy.bin" },
} } }
LUA
cd "$scratch/big"
big_runs=5
times=()
for _ in $(seq $big_runs); do
  rm -f copy.bin
  start=$(date +%s%N)
  "$bin" run tasks.lua > /dev/null 2>&1
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
done
big_ms=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "64 MiB up + 64 MiB back (gzip level 1, incompressible), median of $big_runs runs: ${big_ms} ms ($(awk "BEGIN { printf \"%.0f\", 128 / ($big_ms / 1000) }") MiB/s)"
