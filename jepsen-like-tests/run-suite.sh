#!/usr/bin/env bash
# The jepsen-like suite: every workload against every fault, each run on a
# fresh cluster, checked; exits non-zero if any run is invalid.
#
#   run-suite.sh --short   set, sequential, replacing, sharded, register x kill, kill-leader,
#                          pause, partition; 25 s each, one seed (~10 min; CI)
#   run-suite.sh --long    every nemesis, 60 s each, seeds 1-3, plus sharded
#                          on 4 nodes (2 shards x 2 replicas) (~140 min)
#
# Partitions, slow links and full disks need root (network namespaces, tmpfs
# mounts); without root the suite runs the faults that need none and says so. Results: each run's
# directory under jepsen-like-tests/store/, and a summary table.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:---short}"
case "$mode" in
  --short) nemeses="kill kill-leader pause partition"; time=25; seeds="1" ;;
  --long)  nemeses="none kill kill-leader pause partition partition-one-way slow disk-full clock"; time=60; seeds="1 2 3" ;;
  *) echo "usage: $0 [--short|--long]" >&2; exit 2 ;;
esac

# The workspace's feature set, as the test command builds it (building the
# two packages alone would resolve features differently and rebuild half
# the dependency tree).
cargo build --quiet --workspace --tests --bins
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/debug/jepsen-like-tests"
export QH_BIN="$target_dir/debug/quorumhouse"

if [ "$(id -u)" != 0 ]; then
  echo "not root: skipping partition, slow and disk-full (they need network namespaces and mounts)"
  nemeses="$(echo "$nemeses" | tr ' ' '\n' | grep -v -e partition -e slow -e disk-full | tr '\n' ' ')"
fi

summary="$(mktemp)"
failed=0
for seed in $seeds; do
  for workload in set sequential replacing sharded register; do
    for nemesis in $nemeses; do
      echo "=== $workload / $nemesis / seed $seed"
      if "$bin" --workload "$workload" --nemesis "$nemesis" --time "$time" --seed "$seed" | tee -a "$summary"; then
        :
      else
        failed=$((failed + 1))
      fi
    done
  done
  # Shards of two replicas (4 nodes, quorum 2 within each shard).
  if [ "$mode" = --long ]; then
    for nemesis in $nemeses; do
      echo "=== sharded (4 nodes, 2x2) / $nemesis / seed $seed"
      if "$bin" --workload sharded --nodes 4 --nemesis "$nemesis" --time "$time" --seed "$seed" | tee -a "$summary"; then
        :
      else
        failed=$((failed + 1))
      fi
    done
  fi
done
echo
echo "=== suite $mode: $failed invalid run(s)"
grep -E "VALID|INVALID" "$summary" || true
rm -f "$summary"
[ "$failed" = 0 ]
