#!/usr/bin/env bash
# Local engine overhead: 100 trivial shell tasks (`true`), one after another and 8 at once,
# against the floor — 100 × `sh -c true` from a shell loop — measured in the same command.
#
#   bench/local.sh [RUNS]
#   SLOTH_BIN=/path/to/sloth-runner bench/local.sh [RUNS]
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
runs=${1:-9}
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
bin="${SLOTH_BIN:-$PWD/target/release/sloth-runner}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cat > "$scratch/tasks.lua" <<'LUA'
local tasks = {}
for i = 1, 100 do
  tasks[i] = { name = "t" .. i, command = "true" }
end
TaskDefinitions = { g = { tasks = tasks } }
LUA

. "$bench_dir/lib.sh"

floor() { for _ in $(seq 100); do sh -c true; done; }
cd "$scratch"
floor_ms=$(median_ms floor)
seq_ms=$(median_ms "$bin" run tasks.lua)
par_ms=$(median_ms "$bin" run tasks.lua --jobs 8)
echo "100 trivial shell tasks, median of $runs runs:"
echo "  floor (100 x sh -c true in a loop): ${floor_ms} ms"
echo "  sloth-runner, --jobs 1:              ${seq_ms} ms  ($(awk "BEGIN { printf \"%.2f\", ($seq_ms - $floor_ms) / 100 }") ms per task above the floor)"
echo "  sloth-runner, --jobs 8:              ${par_ms} ms"
