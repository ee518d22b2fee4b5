#!/usr/bin/env bash
# Every benchmark, one after the other, each under its own heading: trivial.sh (a chain of
# trivial remote tasks), one_change.sh (the same with one small file changed each time),
# throughput.sh (independent remote tasks over 4 agents), sync.sh,
# sync_sizes.sh and warm_chain.sh (workspace round trips), scheduler.sh (the local scheduler)
# memory.sh and agent_rss.sh (an agent's memory over chains and after idle) — with their default sizes. SLOTH_BIN and BASE_BIN are passed on: the scripts that compare
# measure BASE_BIN in the same command (and trivial.sh runs once more with it). Without
# SLOTH_BIN the release build is made once, here. A script that fails is reported and the
# rest still run; the exit status says whether any failed. About 20–25 minutes with BASE_BIN on
# a 2-core machine.
#
#   bench/all.sh
#   SLOTH_BIN=/path/to/sloth-runner BASE_BIN=/path/to/other/sloth-runner bench/all.sh
set -uo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.." || exit 1
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet || exit 1
  SLOTH_BIN="$PWD/target/release/sloth-runner"
fi
SLOTH_BIN=$(realpath "$SLOTH_BIN")
export SLOTH_BIN
if [ -n "${BASE_BIN:-}" ]; then
  BASE_BIN=$(realpath "$BASE_BIN")
  export BASE_BIN
fi

failed=()
# section TITLE CMD...: runs one benchmark under a heading, with its wall time.
section() {
  local title=$1 start end
  shift
  echo
  echo "== $title"
  start=$(date +%s)
  if ! "$@"; then
    failed+=("$title")
    echo "!! $title failed"
  fi
  end=$(date +%s)
  echo "   ($((end - start)) s)"
}

echo "this build: $SLOTH_BIN${BASE_BIN:+; base: $BASE_BIN}"
section "trivial.sh (this build)" "$bench_dir/trivial.sh"
if [ -n "${BASE_BIN:-}" ]; then
  section "trivial.sh (base)" env SLOTH_BIN="$BASE_BIN" "$bench_dir/trivial.sh"
fi
section "one_change.sh" "$bench_dir/one_change.sh"
section "throughput.sh" "$bench_dir/throughput.sh"
section "sync.sh" "$bench_dir/sync.sh"
section "sync_sizes.sh" "$bench_dir/sync_sizes.sh"
section "warm_chain.sh" "$bench_dir/warm_chain.sh"
section "scheduler.sh (this build)" "$bench_dir/scheduler.sh"
section "memory.sh" "$bench_dir/memory.sh"
section "agent_rss.sh (this build)" "$bench_dir/agent_rss.sh"
if [ -n "${BASE_BIN:-}" ]; then
  section "agent_rss.sh (base)" env SLOTH_BIN="$BASE_BIN" "$bench_dir/agent_rss.sh"
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
echo "all benchmarks ran"
