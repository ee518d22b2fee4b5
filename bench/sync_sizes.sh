#!/usr/bin/env bash
# A remote task's workspace round trip by workspace shape: 2,000 × 4 KiB files, 20,000 × 200 B
# files, 20 × 10 MiB files, all of incompressible data (/dev/urandom). Workspace, agent work dir
# and the tar baseline's target on one filesystem: tmpfs (/dev/shm) unless SLOTH_BENCH_TMP says
# otherwise (see ../shared/MEASURED.md on ext4 after deletes).
#
#   bench/sync_sizes.sh [ROUNDS] [WARM]                 (default 3 rounds, 5 warm tasks each)
#   SLOTH_BIN=/path/to/sloth-runner bench/sync_sizes.sh
#   SLOTH_BIN=… BASE_BIN=/path/to/other/sloth-runner bench/sync_sizes.sh   # and a baseline
#   SLOTH_BENCH_SHAPES="20 10485760" bench/sync_sizes.sh                    # some shapes only
#
# For each shape, ROUNDS times: a fresh agent (`--work-dir` a new directory) and a fresh master
# stat cache (XDG_CACHE_HOME), a cold task — everything goes up — then WARM tasks on the same
# agent, each after this script rewrote one workspace file (new random content, same size: one
# file goes up) and whose command rewrites another (one file comes back). Whole
# `sloth-runner run` invocations, the builds taking turns round by round; medians of the cold
# and of the warm times. Beside them:
# `tar czf - . | tar xzf -` and `tar cf - . | tar xf -` of the same tree into a fresh directory
# (the baseline a cold task should match).
#
# Bytes each way: sloth-runner reports no byte counts (the agent's `Info` has files_written and
# trees_reused; its log has, per task, the manifest's entries and how many contents it asked
# for). So one more round runs through count_proxy.py (python3), a loopback TCP proxy between
# master and agent that counts the bytes of the streams (gRPC with HTTP/2 framing; no TCP/IP
# headers). Those runs are not timed.
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
rounds=${1:-3}
warm=${2:-5}
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
head_bin=$(realpath "${SLOTH_BIN:-$PWD/target/release/sloth-runner}")
tmp_root=${SLOTH_BENCH_TMP:-/dev/shm}
# shellcheck source=lib.sh
. "$bench_dir/lib.sh"

scratch=$(mktemp -d "$tmp_root/sloth-bench-sizes-XXXX")
pids=()
trap 'stop_agent "${pids[@]}"; rm -rf "$scratch"' EXIT
has_python=$(command -v python3 > /dev/null && echo yes || echo no)

# now_ms: a clock in milliseconds.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# run_ms BIN: one run of the workspace's pipeline (10 min at most); prints its wall time in ms.
run_ms() {
  local start end
  start=$(now_ms)
  if ! (cd "$scratch/ws" && timeout 600 "$1" run -v "$scratch/values.yaml" remote.lua > "$scratch/run.out" 2>&1); then
    echo "run failed ($1):" >&2
    tail -5 "$scratch/run.out" >&2
    return 1
  fi
  end=$(now_ms)
  grep -q "^1 task(s): 1 succeeded" "$scratch/run.out" || { echo "task did not succeed ($1)" >&2; return 1; }
  echo $((end - start))
}

# agent_info BIN ADDRESS: "FILES_WRITTEN TREES_REUSED" from the agent's Info.
agent_info() {
  cat > "$scratch/info/info.lua" <<LUA
TaskDefinitions = { g = { tasks = { { name = "info", command = function()
  local i = agent.connect("$2"):info()
  print("INFO " .. tostring(i.files_written) .. " " .. tostring(i.trees_reused))
  return true
end } } } }
LUA
  # A build whose Info has no such fields prints nil: "?" then.
  (cd "$scratch/info" && "$1" run info.lua 2>&1 | sed -n 's/.*INFO \([0-9a-z]*\) \([0-9a-z]*\).*/\1 \2/p' | sed 's/nil/?/g' | head -1)
}

# fresh_agent BIN: a new agent on a new work dir, a new master stat cache, values.yaml naming it.
fresh_agent() {
  XDG_CACHE_HOME=$(mktemp -d "$scratch/xdg-XXXX")
  export XDG_CACHE_HOME
  start_agent "$1" "$scratch/agent.out" --work-dir "$(mktemp -d "$scratch/work-XXXX")"
  pids+=("$agent_pid")
  printf 'address: "%s"\n' "$agent_address" > "$scratch/values.yaml"
}

# done_agent: stops the agent and removes its work dir and the master's stat cache.
done_agent() {
  stop_agent "$agent_pid"
  rm -rf "$scratch"/work-* "$scratch"/xdg-*
}

# proxy_bytes: "UP DOWN" counted by the proxy so far, once no connection is open (10 s at most).
proxy_bytes() {
  local up down open
  for _ in $(seq 1000); do
    read -r up down open < "$scratch/proxy.stats"
    [ "$open" = 0 ] && break
    sleep 0.01
  done
  echo "$up $down"
}

# sync_lines: the agent log's `incremental sync` lines, as "entries=… missing=… warm=…".
sync_lines() { sed -n 's/.*incremental sync \(.*\)$/\1/p' "$scratch/agent.out.err"; }

# human BYTES
human() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.1f MiB", b / 1048576; else if (b >= 1024) printf "%.1f KiB", b / 1024; else printf "%d B", b }'; }

# one_round BIN SIZE COLDS WARMS: one round for one build (a fresh agent, a cold task, the warm
# tasks); appends its times to the arrays named COLDS and WARMS, and sets what the agent said
# (cold_sync, warm_sync, cold_written, warm_written).
one_round() {
  local bin=$1 size=$2 w t written
  local -n round_colds=$3 round_warms=$4
  fresh_agent "$bin"
  round_colds+=("$(run_ms "$bin")")
  read -r written _ <<< "$(agent_info "$bin" "$agent_address")"
  cold_written=$written
  for w in $(seq "$warm"); do
    head -c "$size" /dev/urandom > "$scratch/ws/f00000"
    t=$(run_ms "$bin")
    round_warms+=("$t")
  done
  read -r written _ <<< "$(agent_info "$bin" "$agent_address")"
  warm_written=$(awk -v a="$written" -v b="$cold_written" -v n="$warm" 'BEGIN { if (a !~ /^[0-9]+$/ || b !~ /^[0-9]+$/) print "?"; else printf "%.1f", (a - b) / n }')
  cold_sync=$(sync_lines | head -1)
  warm_sync=$(sync_lines | tail -1)
  done_agent
  : "$w"
}

# bytes_of BIN SIZE: "; bytes up/down: …" of one cold and one warm task, counted by the proxy
# (nothing without python3).
bytes_of() {
  local bin=$1 size=$2
  [ "$has_python" = yes ] || return 0
  local cold_up cold_down warm_up warm_down proxy_pid
  fresh_agent "$bin"
  python3 "$bench_dir/count_proxy.py" "$agent_address" "$scratch/proxy.stats" > "$scratch/proxy.out" 2> "$scratch/proxy.err" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  for _ in $(seq 1000); do grep -q "^listening on" "$scratch/proxy.out" 2>/dev/null && break; sleep 0.01; done
  printf 'address: "%s"\n' "$(sed -n 's/^listening on //p' "$scratch/proxy.out")" > "$scratch/values.yaml"
  run_ms "$bin" > /dev/null
  read -r cold_up cold_down <<< "$(proxy_bytes)"
  head -c "$size" /dev/urandom > "$scratch/ws/f00000"
  run_ms "$bin" > /dev/null
  read -r warm_up warm_down <<< "$(proxy_bytes)"
  warm_up=$((warm_up - cold_up))
  warm_down=$((warm_down - cold_down))
  stop_agent "$proxy_pid"
  done_agent
  echo "; bytes up/down: cold $(human "$cold_up") / $(human "$cold_down"), warm $(human "$warm_up") / $(human "$warm_down")"
}

# report LABEL COLDS WARMS BYTES: a build's line; sets cold_ms and warm_ms.
report() {
  local label=$1 bytes=$4
  local -n report_colds=$2 report_warms=$3
  cold_ms=$(printf '%s\n' "${report_colds[@]}" | median)
  warm_ms=$(printf '%s\n' "${report_warms[@]}" | median)
  echo "  $label: cold ${cold_ms} ms (${report_colds[*]}), warm ${warm_ms} ms (median of ${#report_warms[@]}: min $(printf '%s\n' "${report_warms[@]}" | sort -n | head -1), max $(printf '%s\n' "${report_warms[@]}" | sort -n | tail -1))$bytes"
  echo "    agent log: cold ${cold_sync:-?}; last warm ${warm_sync:-?}; files written (Info): cold ${cold_written:-?}, warm ${warm_written} per task"
}

# tar_ms FLAGS: the median of 3 `tar cFLAGS - . | tar xFLAGS - -C fresh_dir` of the workspace.
tar_ms() {
  local times=() dst start end
  for _ in 1 2 3; do
    dst=$(mktemp -d "$scratch/tar-XXXX")
    start=$(now_ms)
    (cd "$scratch/ws" && tar "c$1" - .) | tar "x$1" - -C "$dst"
    end=$(now_ms)
    times+=($((end - start)))
    rm -rf "$dst"
  done
  printf '%s\n' "${times[@]}" | median
}

mkdir -p "$scratch/info"
IFS=';' read -r -a shapes <<< "${SLOTH_BENCH_SHAPES:-2000 4096;20000 200;20 10485760}"
for shape in "${shapes[@]}"; do
  read -r count size <<< "$shape"
  rm -rf "$scratch/ws"
  mkdir -p "$scratch/ws"
  (cd "$scratch/ws" && head -c $((count * size)) /dev/urandom | split -b "$size" -a 5 -d - f)
  cat > "$scratch/ws/remote.lua" <<LUA
TaskDefinitions = { g = { agents = { a = { address = values.address } }, tasks = {
  { name = "t", agent = "a", command = "head -c $size /dev/urandom > f00001" },
} } }
LUA
  echo "$count files x $size B ($(human $((count * size))) of random data), $tmp_root:"
  echo "  tar czf | tar xzf: $(tar_ms zf) ms; tar cf | tar xf: $(tar_ms f) ms (median of 3)"
  # With a base, the builds take turns round by round: a machine whose load changes during
  # the run weighs on both alike.
  head_colds=() head_warms=() base_colds=() base_warms=()
  for round in $(seq "$rounds"); do
    one_round "$head_bin" "$size" head_colds head_warms
    head_info=("$cold_sync" "$warm_sync" "$cold_written" "$warm_written")
    if [ -n "${BASE_BIN:-}" ]; then
      one_round "$(realpath "$BASE_BIN")" "$size" base_colds base_warms
      base_info=("$cold_sync" "$warm_sync" "$cold_written" "$warm_written")
    fi
    : "$round"
  done
  # (The agent log and counters shown are each build's last round's.)
  if [ -n "${BASE_BIN:-}" ]; then
    cold_sync=${base_info[0]} warm_sync=${base_info[1]} cold_written=${base_info[2]} warm_written=${base_info[3]}
    base_line=$(report "base" base_colds base_warms "$(bytes_of "$(realpath "$BASE_BIN")" "$size")")
  fi
  cold_sync=${head_info[0]} warm_sync=${head_info[1]} cold_written=${head_info[2]} warm_written=${head_info[3]}
  report "this build" head_colds head_warms "$(bytes_of "$head_bin" "$size")"
  if [ -n "${BASE_BIN:-}" ]; then
    head_cold=$cold_ms
    head_warm=$warm_ms
    echo "$base_line"
    base_cold=$(printf '%s\n' "${base_colds[@]}" | median)
    base_warm=$(printf '%s\n' "${base_warms[@]}" | median)
    echo "  this build / base: cold $(awk "BEGIN { printf \"%.2f\", $head_cold / $base_cold }"), warm $(awk "BEGIN { printf \"%.2f\", $head_warm / $base_warm }")"
  fi
done
