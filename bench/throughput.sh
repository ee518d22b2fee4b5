#!/usr/bin/env bash
# Throughput: N independent trivial remote tasks (`command = "true"`, a one-file workspace)
# spread round-robin over 4 agents (each on its default work directory and with its default
# --max-tasks, as users run them), `--jobs 16`; tasks per second over whole `sloth-runner run`
# invocations (process start and summary included), the master's and the agents' CPU per
# task — beside the same N tasks run locally with `--jobs 16`, in the same command. A first
# remote run warms the agents (their trees and caches) and is reported on its own.
#
#   bench/throughput.sh [N] [RUNS]                      (default 2000 tasks, 3 runs)
#   SLOTH_BIN=/path/to/sloth-runner bench/throughput.sh
#   BASE_BIN=/path/to/other/sloth-runner SLOTH_BIN=… bench/throughput.sh   # and a baseline
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
n=${1:-2000}
runs=${2:-3}
agents=4
jobs=16
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=$(realpath "${SLOTH_BIN:-$PWD/target/release/sloth-runner}")
# shellcheck source=lib.sh
. "$bench_dir/lib.sh"

scratch=$(mktemp -d)
pids=()
trap 'stop_agent "${pids[@]}"; rm -rf "$scratch"' EXIT
hz=$(getconf CLK_TCK)
ticks() { local pid sum=0; for pid in "$@"; do sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done; echo "$sum"; }

# timed_run OUT CMD...: runs CMD (10 min at most), its output in OUT; prints "WALL_MS CPU_MS"
# (CPU: user + system of CMD and its children); fails unless all N tasks succeeded.
timed_run() {
  local out=$1 start end
  shift
  start=$(date +%s%N)
  if ! /usr/bin/time -f '%U %S' -o "$out.time" timeout 600 "$@" > "$out" 2>&1; then
    echo "run failed: $*" >&2
    tail -5 "$out" >&2
    return 1
  fi
  end=$(date +%s%N)
  if ! grep -q "^$n task(s): $n succeeded" "$out"; then
    echo "not all $n tasks succeeded: $(grep 'task(s):' "$out")" >&2
    return 1
  fi
  echo "$(( (end - start) / 1000000 )) $(awk '{ printf "%d", ($1 + $2) * 1000 }' "$out.time")"
}

# measure BIN LABEL: starts 4 agents of BIN, runs the remote pipeline (a warm-up, then RUNS
# times) and the local one (RUNS times), prints the results.
measure() {
  local bin=$1 label=$2 ws="$scratch/$2" agent_pids=() agents_lua="" k
  mkdir -p "$ws"
  echo data > "$ws/data.txt"
  for k in $(seq $agents); do
    start_agent "$bin" "$scratch/$label-agent$k.out" --quiet --name "a$k"
    pids+=("$agent_pid")
    agent_pids+=("$agent_pid")
    agents_lua+="a$k = { address = \"$agent_address\" }, "
  done
  cat > "$ws/remote.lua" <<LUA
local tasks = {}
for i = 1, $n do
  tasks[i] = { name = "t" .. i, agent = "a" .. (i % $agents + 1), command = "true" }
end
TaskDefinitions = { g = { agents = { $agents_lua}, tasks = tasks } }
LUA
  cat > "$ws/local.lua" <<LUA
local tasks = {}
for i = 1, $n do
  tasks[i] = { name = "t" .. i, command = "true" }
end
TaskDefinitions = { g = { tasks = tasks } }
LUA
  cd "$ws"
  local first result wall cpu remote_wall=() remote_cpu=() agent_cpu=() local_wall=() before after
  first=$(timed_run "$scratch/run.out" "$bin" --quiet run remote.lua --jobs $jobs)
  for _ in $(seq "$runs"); do
    before=$(ticks "${agent_pids[@]}")
    result=$(timed_run "$scratch/run.out" "$bin" --quiet run remote.lua --jobs $jobs)
    read -r wall cpu <<< "$result"
    after=$(ticks "${agent_pids[@]}")
    remote_wall+=("$wall")
    remote_cpu+=("$cpu")
    agent_cpu+=("$(( (after - before) * 1000 / hz ))")
    result=$(timed_run "$scratch/run.out" "$bin" --quiet run local.lua --jobs $jobs)
    read -r wall _ <<< "$result"
    local_wall+=("$wall")
  done
  cd - > /dev/null
  local rw rc ac lw
  rw=$(printf '%s\n' "${remote_wall[@]}" | median)
  rc=$(printf '%s\n' "${remote_cpu[@]}" | median)
  ac=$(printf '%s\n' "${agent_cpu[@]}" | median)
  lw=$(printf '%s\n' "${local_wall[@]}" | median)
  echo "$label build: $n trivial tasks, --jobs $jobs, median of $runs runs (all: remote ${remote_wall[*]} ms, local ${local_wall[*]} ms):"
  echo "  remote, $agents agents:  $rw ms  $(awk "BEGIN { printf \"%.0f\", $n * 1000 / $rw }") tasks/s  (first, cold run: ${first%% *} ms, $(awk "BEGIN { printf \"%.0f\", $n * 1000 / ${first%% *} }") tasks/s); CPU per task: master $(awk "BEGIN { printf \"%.2f\", $rc / $n }") ms, agents $(awk "BEGIN { printf \"%.2f\", $ac / $n }") ms"
  echo "  local:            $lw ms  $(awk "BEGIN { printf \"%.0f\", $n * 1000 / $lw }") tasks/s"
  stop_agent "${agent_pids[@]}"
  echo "$rw" > "$scratch/$label.remote_ms"
}

measure "$bin" head
if [ -n "${BASE_BIN:-}" ]; then
  measure "$(realpath "$BASE_BIN")" base
  echo "remote tasks/s, this build (head) over base: $(awk "BEGIN { printf \"%.2f\", $(cat "$scratch/base.remote_ms") / $(cat "$scratch/head.remote_ms") }")"
fi
