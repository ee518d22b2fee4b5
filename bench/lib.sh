# shellcheck shell=bash
# Shared by the benchmarks: `median_ms CMD...` prints the median wall time, in milliseconds,
# of $runs runs of CMD (its output discarded).
median_ms() {
  local times=()
  # shellcheck disable=SC2154 # runs: set by the script that sources this file
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    "$@" > /dev/null 2>&1
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] / 1000 }'
}

# median: the median of the numbers on stdin, one a line (the lower middle of an even count).
median() {
  sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'
}

# start_agent BIN OUT [ARGS...]: starts `BIN agent -p 0 ARGS...` in the background, its stdout
# in OUT and its stderr in OUT.err, and sets agent_pid and agent_address (read from the
# agent's first line, `listening on ADDR`; 10 s at most, else a message and status 1).
start_agent() {
  local bin=$1 out=$2
  shift 2
  # Gone first: the child truncates OUT only once it runs, and an old line must not be read.
  rm -f "$out" "$out.err"
  "$bin" agent -p 0 "$@" > "$out" 2> "$out.err" &
  agent_pid=$!
  agent_address=
  for _ in $(seq 1000); do
    agent_address=$(sed -n 's/^listening on //p' "$out" 2>/dev/null)
    [ -n "$agent_address" ] && return 0
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.01
  done
  echo "agent did not start: $(cat "$out.err" 2>/dev/null)" >&2
  return 1
}

# stop_agent PID...: SIGTERM, then waits (10 s at most) for each to go, SIGKILL past that.
stop_agent() {
  local pid
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 1000); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# rss_mib PID [FIELD]: a memory figure of a live process from /proc/PID/status, in MiB
# (FIELD: VmRSS by default; VmHWM is its peak).
rss_mib() {
  awk -v field="${2:-VmRSS}:" '$1 == field { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# trivial_chain N ADDRESS FILE: writes a pipeline of a chain of N remote tasks `command = "true"`
# (each depends on the one before) on the agent at ADDRESS, named `a`, to FILE.
trivial_chain() {
  cat > "$3" <<LUA
local tasks = {}
for i = 1, $1 do
  tasks[i] = { name = "t" .. i, agent = "a", depends_on = i > 1 and ("t" .. (i - 1)) or nil, command = "true" }
end
TaskDefinitions = { g = { agents = { a = { address = "$2" } }, tasks = tasks } }
LUA
}

# alternate ROUNDS HEAD_BIN: ROUNDS rounds of `one_round BIN` (the calling script's) with
# HEAD_BIN and, when BASE_BIN is set, with it too, the builds taking turns round by round; then
# `report LABEL LINES` (the caller's) for each build, LINES one line per round.
alternate() {
  local rounds=$1 head_bin=$2 head_lines="" base_lines=""
  for _ in $(seq "$rounds"); do
    head_lines+="$(one_round "$head_bin")"$'\n'
    if [ -n "${BASE_BIN:-}" ]; then
      base_lines+="$(one_round "$(realpath "$BASE_BIN")")"$'\n'
    fi
  done
  report "this build" "${head_lines%$'\n'}"
  if [ -n "${BASE_BIN:-}" ]; then
    report "base" "${base_lines%$'\n'}"
  fi
}
