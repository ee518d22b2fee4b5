#!/usr/bin/env bash
# A trivial remote task (`command = "true"`, a one-file workspace), as a user's pipeline sees
# it: a chain of N such tasks on one agent (its default work directory), whole-run mean and
# the per-task p50/p99 of the summary's durations, the agent's CPU time per task — beside the
# floors measured in the same run: `sh -c true` and a gRPC `Info` round trip.
#
#   bench/trivial.sh [N]                 (default 500)
#   SLOTH_BIN=/path/to/sloth-runner bench/trivial.sh
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
n=${1:-500}
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=$(realpath "${SLOTH_BIN:-$PWD/target/release/sloth-runner}")
# shellcheck source=lib.sh
. "$bench_dir/lib.sh"
scratch=$(mktemp -d)
"$bin" --quiet agent -p 0 > "$scratch/agent.out" 2>/dev/null &
agent_pid=$!
trap 'kill $agent_pid 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 200); do grep -q "^listening on" "$scratch/agent.out" 2>/dev/null && break; sleep 0.01; done
address=$(sed -n 's/^listening on //p' "$scratch/agent.out")
mkdir "$scratch/ws"
echo data > "$scratch/ws/data.txt"
trivial_chain "$n" "$address" "$scratch/ws/chain.lua"
cat > "$scratch/ws/rtt.lua" <<LUA
TaskDefinitions = { g = { tasks = { { name = "rtt", command = function()
  local core = require("sloth.core")
  local client = agent.connect("$address")
  local times = {}
  for i = 1, 500 do
    local started = core.now()
    client:info()
    times[i] = core.now() - started
  end
  table.sort(times)
  print(string.format("RTT %.3f", times[250] * 1000))
  return true
end } } } }
LUA
cd "$scratch/ws"
ticks() { awk '{ print $14 + $15 }' "/proc/$agent_pid/stat"; }
# Context switches of the agent's threads (those alive at both readings): a count, which the
# host's load moves far less than times.
switches() { cat /proc/"$agent_pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'; }
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$agent_pid/status"; }
idle_rss=$(rss)
"$bin" --quiet run chain.lua > /dev/null 2>&1 # warm: the agent's cache and tree
before=$(ticks)
switches_before=$(switches)
start=$(date +%s%N)
# (The run's output goes outside the workspace: a file there growing by a line per task would
# be a change each task carries.)
"$bin" run -o json chain.lua > "$scratch/run.json" 2>/dev/null
end=$(date +%s%N)
after=$(ticks)
switches_after=$(switches)
hz=$(getconf CLK_TCK)
# Each task's duration as the master measured it (the `task_finished` events, in seconds; the
# summary table rounds to whole milliseconds), in milliseconds.
durations=$(grep '"type":"task_finished"' "$scratch/run.json" | grep '"status":"succeeded"' \
  | sed -n 's/.*"duration":\([0-9.e-]*\).*/\1/p' | awk '{ printf "%.2f\n", $1 * 1000 }' | sort -n)
count=$(echo "$durations" | wc -l)
p50=$(echo "$durations" | awk -v n="$count" 'NR == int((n + 1) / 2) { print }')
p99=$(echo "$durations" | awk -v n="$count" 'NR == int(n * 0.99) { print }')
floor_start=$(date +%s%N)
for _ in $(seq 200); do sh -c true; done
floor_end=$(date +%s%N)
rtt=$("$bin" run rtt.lua 2>&1 | sed -n 's/.*RTT //p')
echo "trivial remote task, chain of $n ($count succeeded): mean $(awk "BEGIN { printf \"%.2f\", ($end - $start) / 1e6 / $n }") ms per task (whole run), p50 ${p50} ms, p99 ${p99} ms; agent CPU $(awk "BEGIN { printf \"%.2f\", ($after - $before) * 1000 / $hz / $n }") ms per task, $(( (switches_after - switches_before) / n )) context switches per task"
echo "agent RSS: idle ${idle_rss} MiB, after $((2 * n)) tasks $(rss) MiB"
echo "floors: sh -c true $(awk "BEGIN { printf \"%.2f\", ($floor_end - $floor_start) / 1e6 / 200 }") ms, gRPC Info round trip ${rtt} ms (median of 500)"
