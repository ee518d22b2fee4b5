#!/usr/bin/env bash
# Memory, in MiB:
# - an agent's RSS idle, and after 1,000 trivial remote tasks (a chain of 500 `command = "true"`
#   tasks run twice, a one-file workspace; the agent on its default work directory, as users
#   run it), with its peak (VmHWM);
# - the PEAK RSS of the master (`/usr/bin/time -v`, else /proc/PID/status sampled every 10 ms)
#   and of the agent (VmHWM, reset between tasks through /proc/PID/clear_refs) for one remote
#   task over a 1 GiB workspace — 16 × 64 MiB files from /dev/urandom — that changes one small
#   file: cold (a fresh agent and master stat cache: everything goes up) and warm (the same task
#   again). Workspace and agent work dir (`--work-dir`) on one filesystem: tmpfs (/dev/shm) when
#   it and the memory have room for ~4 GiB, else SLOTH_BENCH_TMP or the system temp dir.
#
#   bench/memory.sh
#   SLOTH_BIN=/path/to/sloth-runner bench/memory.sh
#   SLOTH_BIN=… BASE_BIN=/path/to/other/sloth-runner bench/memory.sh   # and a baseline
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
head_bin=$(realpath "${SLOTH_BIN:-$PWD/target/release/sloth-runner}")
# shellcheck source=lib.sh
. "$bench_dir/lib.sh"

# Room for the workspace, the agent's cache and its tree: ~4 GiB.
need_mib=4096
avail_mib() { df -Pm "$1" | awk 'NR == 2 { print $4 }'; }
mem_mib=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
if [ -n "${SLOTH_BENCH_TMP:-}" ]; then
  tmp_root=$SLOTH_BENCH_TMP
elif [ -d /dev/shm ] && [ "$(avail_mib /dev/shm)" -gt $need_mib ] && [ "$mem_mib" -gt $((need_mib + 2048)) ]; then
  tmp_root=/dev/shm
else
  tmp_root=${TMPDIR:-/tmp}
fi
if [ "$(avail_mib "$tmp_root")" -lt $need_mib ]; then
  echo "memory.sh: $tmp_root has less than $need_mib MiB free" >&2
  exit 1
fi

scratch=$(mktemp -d "$tmp_root/sloth-bench-mem-XXXX")
pids=()
trap 'stop_agent "${pids[@]}"; rm -rf "$scratch"' EXIT

# peak_run OUT CMD...: runs CMD (10 min at most, output in OUT) and prints "PEAK_MIB WALL_MS",
# its peak RSS; fails unless the run's task(s) all succeeded.
peak_run() {
  local out=$1 start end peak pid hwm
  shift
  start=$(date +%s%N)
  if [ -x /usr/bin/time ]; then
    if ! /usr/bin/time -v -o "$out.time" timeout 600 "$@" > "$out" 2>&1; then
      echo "run failed: $*" >&2; tail -5 "$out" >&2; return 1
    fi
    peak=$(awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$out.time")
  else
    "$@" > "$out" 2>&1 &
    pid=$!
    peak=0
    for _ in $(seq 60000); do
      hwm=$(rss_mib "$pid" VmHWM 2>/dev/null) || break
      [ -n "$hwm" ] && peak=$hwm
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.01
    done
    wait "$pid" || { echo "run failed: $*" >&2; tail -5 "$out" >&2; return 1; }
  fi
  end=$(date +%s%N)
  grep -Eq "^([0-9]+) task\(s\): \1 succeeded" "$out" || { echo "not all tasks succeeded: $*" >&2; tail -3 "$out" >&2; return 1; }
  echo "$peak $(( (end - start) / 1000000 ))"
}

# reset_peak PID: VmHWM back to the current RSS (Linux: `5` into clear_refs).
reset_peak() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || echo "  (could not reset the agent's VmHWM: the warm peak is the peak since start)"; }

echo "making the 1 GiB workspace (16 x 64 MiB from /dev/urandom) in $tmp_root"
mkdir -p "$scratch/big"
for i in $(seq -w 1 16); do head -c $((64 * 1024 * 1024)) /dev/urandom > "$scratch/big/part$i.bin"; done
cat > "$scratch/big/big.lua" <<'LUA'
TaskDefinitions = { g = { agents = { a = { address = values.address } }, tasks = {
  { name = "t", agent = "a", command = "date +%s%N > small.txt" },
} } }
LUA

# measure BIN LABEL
measure() {
  local bin=$1 label=$2 idle after after_peak result
  echo "$label:"
  # Idle, and after 1,000 trivial tasks.
  mkdir -p "$scratch/chain"
  echo data > "$scratch/chain/data.txt"
  start_agent "$bin" "$scratch/agent.out" --quiet
  pids+=("$agent_pid")
  sleep 0.5
  idle=$(rss_mib "$agent_pid")
  trivial_chain 500 "$agent_address" "$scratch/chain/chain.lua"
  for _ in 1 2; do
    (cd "$scratch/chain" && peak_run "$scratch/run.out" "$bin" --quiet run chain.lua > /dev/null)
  done
  after=$(rss_mib "$agent_pid")
  after_peak=$(rss_mib "$agent_pid" VmHWM)
  stop_agent "$agent_pid"
  echo "  agent RSS: idle $idle MiB; after 1,000 trivial tasks $after MiB (peak $after_peak MiB)"

  # The 1 GiB workspace: cold, then warm.
  XDG_CACHE_HOME=$(mktemp -d "$scratch/xdg-XXXX")
  export XDG_CACHE_HOME
  mkdir -p "$scratch/work"
  start_agent "$bin" "$scratch/agent.out" --work-dir "$scratch/work"
  pids+=("$agent_pid")
  printf 'address: "%s"\n' "$agent_address" > "$scratch/values.yaml"
  sleep 0.3
  local phase master wall agent_peak agent_rss
  for phase in cold warm; do
    reset_peak "$agent_pid"
    result=$(cd "$scratch/big" && peak_run "$scratch/run.out" "$bin" run -v "$scratch/values.yaml" big.lua)
    read -r master wall <<< "$result"
    agent_peak=$(rss_mib "$agent_pid" VmHWM)
    agent_rss=$(rss_mib "$agent_pid")
    echo "  1 GiB workspace, $phase task: ${wall} ms; peak RSS master ${master} MiB, agent ${agent_peak} MiB (agent RSS after: ${agent_rss} MiB) [agent: $(sed -n 's/.*incremental sync \(.*\)$/\1/p' "$scratch/agent.out.err" | tail -1)]"
  done
  stop_agent "$agent_pid"
  rm -rf "$scratch/work" "$XDG_CACHE_HOME" "$scratch/big/small.txt"
}

measure "$head_bin" "this build"
if [ -n "${BASE_BIN:-}" ]; then
  measure "$(realpath "$BASE_BIN")" "base"
fi
