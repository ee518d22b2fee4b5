#!/usr/bin/env bash
# The cost of a remote task's workspace round trip, without the disk: workspace and agent work
# dir on tmpfs (/dev/shm), so what is measured is sloth-runner's own work (scan, hash, build,
# changes, apply), not ext4's slow inode creation after deletes (see ../shared/MEASURED.md).
#
#   BASE_BIN=/path/to/other/sloth-runner bench/sync.sh [RUNS]
#   SLOTH_BIN=/path/to/sloth-runner BASE_BIN=… bench/sync.sh [RUNS]   # without building
#
# For 100 and 2,000 small files, a trivial remote task (one Lua function writing one file);
# the median of RUNS whole `sloth-runner run` invocations, for BASE_BIN and for this build,
# alternating, so the ratio holds on a noisy machine.
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
runs=${1:-21}
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
head_bin=$(realpath "${SLOTH_BIN:-$PWD/target/release/sloth-runner}")
base_bin=$(realpath "${BASE_BIN:-$head_bin}")
tmp_root=${SLOTH_BENCH_TMP:-/dev/shm}
# shellcheck source=lib.sh
. "$bench_dir/lib.sh"

# one_build BIN FILES [FIELDS]: the median ms of a trivial remote task over a FILES-file
# workspace; FIELDS go in the task's `workspace` table.
one_build() {
  local bin=$1 files=$2 fields=${3:-} scratch pid address
  scratch=$(mktemp -d "$tmp_root/sloth-bench-XXXX")
  mkdir -p "$scratch/work" "$scratch/ws"
  "$bin" --quiet agent -p 0 --work-dir "$scratch/work" > "$scratch/agent.out" 2>/dev/null &
  pid=$!
  for _ in $(seq 200); do grep -q "^listening on" "$scratch/agent.out" 2>/dev/null && break; sleep 0.01; done
  address=$(sed -n 's/^listening on //p' "$scratch/agent.out")
  for i in $(seq "$files"); do echo "file $i" > "$scratch/ws/f$i.txt"; done
  cat > "$scratch/ws/remote.lua" <<LUA
TaskDefinitions = { g = { agents = { a = { address = "$address" } }, tasks = {
  { name = "t", agent = "a", workspace = { $fields }, command = function() local f = assert(io.open("out.txt", "w")); f:write("x"); f:close(); return true end },
} } }
LUA
  (cd "$scratch/ws" && median_ms "$bin" run remote.lua)
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$scratch"
}

for files in 100 2000; do
  base=$(one_build "$base_bin" "$files")
  head=$(one_build "$head_bin" "$files")
  base2=$(one_build "$base_bin" "$files")
  head2=$(one_build "$head_bin" "$files")
  echo "$files files: base ${base} / ${base2} ms, this build ${head} / ${head2} ms (ratio $(awk "BEGIN { printf \"%.2f\", ($head + $head2) / ($base + $base2) }"))"
done

# What `workspace.same_path` costs (a private mount namespace and a bind mount per task; the
# agent must run as root): this build, without and with it.
if [ "$(id -u)" = 0 ]; then
  plain=$(one_build "$head_bin" 100)
  same=$(one_build "$head_bin" 100 "same_path = true")
  plain2=$(one_build "$head_bin" 100)
  same2=$(one_build "$head_bin" 100 "same_path = true")
  echo "same_path, 100 files: without ${plain} / ${plain2} ms, with ${same} / ${same2} ms (ratio $(awk "BEGIN { printf \"%.2f\", ($same + $same2) / ($plain + $plain2) }"))"
fi
