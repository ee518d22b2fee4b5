#!/usr/bin/env bash
# The local scheduler: N trivial Lua function tasks as a chain (each depends on the one
# before) and as a wide fan (one root, N-1 dependents), whole `sloth-runner run` invocations
# (process start, loading, reporting included); `--dry-run` planning alone beside them.
#
#   bench/scheduler.sh [RUNS] [SIZES...]         (default: 3 runs; 1000 10000 100000)
#   SLOTH_BIN=/path/to/sloth-runner bench/scheduler.sh
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
runs=${1:-3}
shift || true
sizes=("${@:-1000 10000 100000}")
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=$(realpath "${SLOTH_BIN:-$PWD/target/release/sloth-runner}")
. "$bench_dir/lib.sh"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
for n in ${sizes[*]}; do
  cat > chain.lua <<LUA
local tasks = {}
for i = 1, $n do
  tasks[i] = { name = "t" .. i, depends_on = i > 1 and ("t" .. (i - 1)) or nil, command = function() return true end }
end
TaskDefinitions = { g = { tasks = tasks } }
LUA
  cat > fan.lua <<LUA
local tasks = { { name = "root", command = function() return true end } }
for i = 2, $n do
  tasks[i] = { name = "t" .. i, depends_on = "root", command = function() return true end }
end
TaskDefinitions = { g = { tasks = tasks } }
LUA
  chain=$(median_ms "$bin" --quiet run chain.lua)
  fan=$(median_ms "$bin" --quiet run fan.lua)
  plan=$(median_ms "$bin" --quiet run --dry-run chain.lua)
  echo "$n tasks: chain ${chain} ms ($(awk "BEGIN { printf \"%.1f\", $chain * 1000 / $n }") us/task), fan ${fan} ms, dry-run (chain) ${plan} ms"
done
