#!/usr/bin/env bash
# An agent's memory as it serves chains of trivial remote tasks and then idles: RSS (and its
# anonymous and file-backed parts) at its start, after each of ROUNDS runs of a chain of N
# `command = "true"` tasks, and WAIT seconds after the last (the VMs held for a pipeline's next
# task go after 30 s, and idle threads give their freed memory back).
#
#   bench/agent_rss.sh [N] [ROUNDS] [WAIT]            (default 500 tasks, 2 rounds, 36 s)
#   SLOTH_BIN=/path/to/sloth-runner bench/agent_rss.sh
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
cd "$bench_dir/.."
n=${1:-500}
rounds=${2:-2}
wait_s=${3:-36}
if [ -z "${SLOTH_BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=$(realpath "${SLOTH_BIN:-$PWD/target/release/sloth-runner}")
# shellcheck source=lib.sh
. "$bench_dir/lib.sh"
scratch=$(mktemp -d)
agent_pid=
trap 'stop_agent $agent_pid; rm -rf "$scratch"' EXIT
start_agent "$bin" "$scratch/agent.out" --quiet
mkdir "$scratch/ws"
echo data > "$scratch/ws/data.txt"
trivial_chain "$n" "$agent_address" "$scratch/ws/chain.lua"
memory() {
  awk '/^VmRSS:/ { rss = $2 } /^RssAnon:/ { anon = $2 } /^RssFile:/ { file = $2 } /^RssShmem:/ { shmem = $2 }
    END { printf "RSS %.1f MiB (anon %.1f, file %.1f, shmem %.1f)", rss / 1024, anon / 1024, file / 1024, shmem / 1024 }' \
    "/proc/$agent_pid/status"
}
echo "idle: $(memory)"
for round in $(seq "$rounds"); do
  (cd "$scratch/ws" && "$bin" --quiet run chain.lua > /dev/null 2>&1) || { echo "the chain failed" >&2; exit 1; }
  echo "after $((round * n)) tasks: $(memory)"
done
sleep "$wait_s"
echo "${wait_s} s later: $(memory)"
