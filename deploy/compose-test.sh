#!/usr/bin/env bash
# The three-node compose cluster under insert_quorum, end to end:
# compose up → quorum=3 insert → `docker stop` a node → quorum=3 fails with
# 285 and quorum=2 works → `docker start` it → it catches up → `docker network
# disconnect` a node → the other two keep taking quorum=2 inserts → reconnect
# → all three converge. Every wait is a bounded poll.
#
# Usage: deploy/compose-test.sh   (BIN=path/to/quorumhouse to skip the
# release build; the image is rebuilt from it). Exits 0 with a printed reason
# when no Docker engine answers.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
if ! docker info >/dev/null 2>&1; then
  echo "compose-test: skipped (no Docker engine answers)"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "compose-test: skipped (neither 'docker compose' nor docker-compose is installed)"
  exit 0
fi
bin="${BIN:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release -p quorumhouse)
  bin="${CARGO_TARGET_DIR:-$root/target}/release/quorumhouse"
fi
project="qhtest$$"
# Its own tag, so a test run never replaces the image a user built.
export QH_IMAGE="${QH_IMAGE:-quorumhouse:compose-test}"
export QH_CLUSTER_SECRET="${QH_CLUSTER_SECRET:-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')}"
TAG="$QH_IMAGE" BIN="$bin" "$here/build-image.sh"
dc() { "${compose[@]}" -p "$project" -f "$here/docker-compose.yml" "$@"; }
cleanup() {
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  docker image rm "$QH_IMAGE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

q() { # q NODE SQL...: runs SQL on node N through the host port 900N
  local node="$1"; shift
  "$bin" client --host 127.0.0.1 --port "900$node" --query "$*"
}
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local limit="$1" what="$2"; shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$end" ]; then echo "compose-test: timed out waiting for $what" >&2; exit 1; fi
    sleep 0.5
  done
}
expect_code() { # expect_code CODE NODE SQL: the query fails with Code: CODE
  local code="$1" node="$2"; shift 2
  local out
  if out=$(q "$node" "$@" 2>&1); then echo "compose-test: expected code $code, succeeded: $*" >&2; exit 1; fi
  case "$out" in *"Code: $code."*) ;; *) echo "compose-test: expected code $code, got: $out" >&2; exit 1;; esac
}
insert_retrying() { # insert_retrying NODE SQL: an insert answered 319 (status unknown) is sent
  # again as it is (it carries an insert_deduplication_token), as a client should; bounded
  local node="$1"; shift
  local out attempt
  for attempt in 1 2 3 4 5; do
    if out=$(q "$node" "$@" 2>&1); then return 0; fi
    case "$out" in
      *"Code: 319."*) echo "compose-test: attempt $attempt unknown (319), sending it again: $*" ;;
      *) echo "compose-test: insert failed: $out" >&2; exit 1 ;;
    esac
  done
  echo "compose-test: insert still unknown after 5 attempts: $out" >&2; exit 1
}
count_is() { [ "$(q "$1" "SELECT count() FROM events")" = "$2" ]; }
active_is() { [ "$(q "$1" "SELECT active_replicas FROM system.replicas WHERE table = 'events'")" = "$2" ]; }

dc up -d
for n in 1 2 3; do wait_until 60 "node$n answers" q "$n" "SELECT 1"; done
q 1 "CREATE TABLE events ON CLUSTER default (id UInt64, v String) ENGINE = ReplicatedMergeTree('/tables/events', '{replica}') ORDER BY id"
wait_until 60 "every replica active" active_is 1 3
insert_retrying 1 "INSERT INTO events SETTINGS insert_quorum = 3, insert_deduplication_token = 't1' VALUES (1, 'a'), (2, 'b')"
for n in 1 2 3; do count_is "$n" 2 || { echo "node$n lacks the quorum=3 rows at the ack" >&2; exit 1; }; done
echo "compose-test: quorum=3 insert visible on all three at the ack"

node3="$(dc ps -q node3)"
docker stop "$node3" >/dev/null
start=$SECONDS
expect_code 285 1 "INSERT INTO events SETTINGS insert_quorum = 3 VALUES (3, 'c')"
echo "compose-test: node3 stopped -> quorum=3 refused with 285 in $((SECONDS - start)) s"
insert_retrying 1 "INSERT INTO events SETTINGS insert_quorum = 2, insert_deduplication_token = 't4' VALUES (4, 'd')"
count_is 2 3
docker start "$node3" >/dev/null
wait_until 60 "node3 answers" q 3 "SELECT 1"
wait_until 60 "node3 catches up" count_is 3 3
echo "compose-test: node3 restarted and caught up"

network="$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$node3")"
docker network disconnect "$network" "$node3"
for i in 5 6 7; do
  wait_until 30 "quorum=2 insert $i with node3 cut off" q 1 "INSERT INTO events SETTINGS insert_quorum = 2, insert_deduplication_token = 't$i' VALUES ($i, 'e')"
done
count_is 2 6
echo "compose-test: node3 cut off -> nodes 1 and 2 keep taking quorum=2 inserts"
docker network connect "$network" "$node3"
for n in 1 2 3; do wait_until 90 "node$n converges" count_is "$n" 6; done
echo "compose-test: reconnected -> all three converge (6 rows)"
echo "compose-test: ok"
