#!/usr/bin/env bash
# Warm remote tasks inside one run: what a task costs once the process has started, its
# pipeline is read and its workspace's tree is on the agent — the cost a pipeline of many
# remote tasks pays per task. A workspace of COUNT files of SIZE bytes (random data); a fresh
# agent (`--work-dir` a new directory) and a fresh master stat cache; one run of a single task
# (the cold one, not measured); then one run of a chain of TASKS tasks, each of which rewrites
# one file (one file comes back, and the next task's manifest carries it). Per task: wall time
# of the chain run divided by TASKS, the master's CPU (user + system) and the agent's.
#
#   bench/warm_chain.sh [ROUNDS] [TASKS]          (default 3 rounds, 30 tasks)
#   SLOTH_BENCH_SHAPES="2000 4096;20000 200" bench/warm_chain.sh   (the default shapes)
#   SLOTH_BIN=… BASE_BIN=/path/to/other/sloth-runner bench/warm_chain.sh   # and a baseline
#
# With a base, the builds take turns round by round; medians over the rounds.
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
rounds=${1:-3}
tasks=${2:-30}
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
head_bin=$(realpath "${SLOTH_BIN:-$PWD/target/release/sloth-runner}")
tmp_root=${SLOTH_BENCH_TMP:-/dev/shm}
# shellcheck source=lib.sh
. "$bench_dir/lib.sh"

scratch=$(mktemp -d "$tmp_root/sloth-bench-chain-XXXX")
pids=()
trap 'stop_agent "${pids[@]}"; rm -rf "$scratch"' EXIT

# cpu_ticks PID: user + system time of a live process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

# one_round BIN: a fresh agent, the cold run, then the chain; prints "WALL MASTER AGENT" in
# ms per task.
one_round() {
  local bin=$1 start end a0 a1 master
  XDG_CACHE_HOME=$(mktemp -d "$scratch/xdg-XXXX")
  export XDG_CACHE_HOME
  start_agent "$bin" "$scratch/agent.out" --work-dir "$(mktemp -d "$scratch/work-XXXX")"
  pids+=("$agent_pid")
  printf 'address: "%s"\nn: 1\n' "$agent_address" > "$scratch/values.yaml"
  (cd "$scratch/ws" && timeout 600 "$bin" run -v "$scratch/values.yaml" chain.lua > "$scratch/run.out" 2>&1) \
    || { echo "cold run failed ($bin):" >&2; tail -5 "$scratch/run.out" >&2; return 1; }
  printf 'address: "%s"\nn: %s\n' "$agent_address" "$tasks" > "$scratch/values.yaml"
  a0=$(cpu_ticks "$agent_pid")
  start=$(date +%s%N)
  (cd "$scratch/ws" && timeout 600 /usr/bin/time -o "$scratch/time.out" -f "%U %S" \
    "$bin" run -v "$scratch/values.yaml" chain.lua > "$scratch/run.out" 2>&1) \
    || { echo "chain failed ($bin):" >&2; tail -5 "$scratch/run.out" >&2; return 1; }
  end=$(date +%s%N)
  a1=$(cpu_ticks "$agent_pid")
  grep -q "^$tasks task(s): $tasks succeeded" "$scratch/run.out" || { echo "the chain did not succeed ($bin)" >&2; return 1; }
  stop_agent "$agent_pid"
  rm -rf "$scratch"/work-* "$scratch"/xdg-*
  master=$(awk -v n="$tasks" '{ printf "%.1f", ($1 + $2) * 1000 / n }' "$scratch/time.out")
  awk -v wall=$(( (end - start) / 1000 )) -v n="$tasks" -v m="$master" -v a=$((a1 - a0)) -v hz="$ticks_per_second" \
    'BEGIN { printf "%.1f %s %.1f\n", wall / 1000 / n, m, a * 1000 / hz / n }'
}

# report LABEL LINES: the medians of the rounds' "WALL MASTER AGENT" lines.
report() {
  local label=$1 lines=$2
  local wall master agent
  wall=$(awk '{ print $1 }' <<< "$lines" | median)
  master=$(awk '{ print $2 }' <<< "$lines" | median)
  agent=$(awk '{ print $3 }' <<< "$lines" | median)
  echo "  $label: per task ${wall} ms (rounds: $(awk '{ print $1 }' <<< "$lines" | tr '\n' ' ')); CPU per task: master ${master} ms, agent ${agent} ms"
}

IFS=';' read -r -a shapes <<< "${SLOTH_BENCH_SHAPES:-2000 4096;20000 200}"
for shape in "${shapes[@]}"; do
  read -r count size <<< "$shape"
  rm -rf "$scratch/ws"
  mkdir -p "$scratch/ws"
  (cd "$scratch/ws" && head -c $((count * size)) /dev/urandom | split -b "$size" -a 5 -d - f)
  cat > "$scratch/ws/chain.lua" <<LUA
local tasks = {}
for i = 1, tonumber(values.n) do
  tasks[i] = { name = "t" .. i, agent = "a", command = string.format("head -c $size /dev/urandom > f%05d", i % 50),
    depends_on = i > 1 and { "t" .. (i - 1) } or nil }
end
TaskDefinitions = { g = { agents = { a = { address = values.address } }, tasks = tasks } }
LUA
  echo "$count files x $size B, a chain of $tasks warm tasks, $tmp_root:"
  alternate "$rounds" "$head_bin"
done
