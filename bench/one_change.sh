#!/usr/bin/env bash
# A trivial remote task whose workspace carries one small change each time: a chain of N
# `command = "true"` tasks on one agent (its default work directory), the run's own output
# written into the workspace (a log growing by a line or two per task, as a pipeline that logs
# into its checkout has it) — so each task ships one changed file up. What a small change costs
# beside bench/trivial.sh, whose workspace does not change. Per task: whole-run wall time, and
# the agent's CPU time.
#
#   bench/one_change.sh [N] [ROUNDS]                   (default 300 tasks, 3 rounds)
#   SLOTH_BIN=… BASE_BIN=/path/to/other/sloth-runner bench/one_change.sh   # and a baseline
#
# With a base, the builds take turns round by round; medians over the rounds.
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
n=${1:-300}
rounds=${2:-3}
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
head_bin=$(realpath "${SLOTH_BIN:-$PWD/target/release/sloth-runner}")
# shellcheck source=lib.sh
. "$bench_dir/lib.sh"
scratch=$(mktemp -d)
pids=()
trap 'stop_agent "${pids[@]}"; rm -rf "$scratch"' EXIT

# one_round BIN: a fresh agent, a warm-up run, then the measured one; prints "WALL AGENT" in
# µs per task.
one_round() {
  local bin=$1 start end a0 a1
  start_agent "$bin" "$scratch/agent.out" --quiet
  pids+=("$agent_pid")
  rm -rf "$scratch/ws"
  mkdir "$scratch/ws"
  echo data > "$scratch/ws/data.txt"
  trivial_chain "$n" "$agent_address" "$scratch/ws/chain.lua"
  (cd "$scratch/ws" && "$bin" run chain.lua > log.txt 2>&1) || { echo "warm-up failed ($bin)" >&2; return 1; }
  a0=$(awk '{ print $14 + $15 }' "/proc/$agent_pid/stat")
  start=$(date +%s%N)
  (cd "$scratch/ws" && "$bin" run chain.lua > log.txt 2>&1) || { echo "chain failed ($bin)" >&2; return 1; }
  end=$(date +%s%N)
  a1=$(awk '{ print $14 + $15 }' "/proc/$agent_pid/stat")
  grep -q "^$n task(s): $n succeeded" "$scratch/ws/log.txt" || { echo "the chain did not succeed ($bin)" >&2; return 1; }
  stop_agent "$agent_pid"
  echo "$(( (end - start) / n / 1000 )) $(( (a1 - a0) * 1000000 / $(getconf CLK_TCK) / n ))"
}

report() {
  local label=$1 lines=$2
  echo "  $label: per task $(awk '{ print $1 }' <<< "$lines" | median) µs (rounds: $(awk '{ print $1 }' <<< "$lines" | tr '\n' ' ')); agent CPU per task $(awk '{ print $2 }' <<< "$lines" | median) µs"
}

echo "a chain of $n trivial remote tasks, one small file changed before each:"
alternate "$rounds" "$head_bin"
