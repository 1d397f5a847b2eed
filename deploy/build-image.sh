#!/usr/bin/env bash
# Builds the `quorumhouse:latest` image FROM scratch: the release binary and
# the shared libraries `ldd` says it needs. Usage: deploy/build-image.sh
# (BIN=path/to/quorumhouse to use another binary, TAG=name:tag for another tag).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
tag="${TAG:-quorumhouse:latest}"
bin="${BIN:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release -p quorumhouse)
  bin="${CARGO_TARGET_DIR:-$root/target}/release/quorumhouse"
fi
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp"
cp "$bin" "$ctx/rootfs/usr/local/bin/quorumhouse"
# Every library the binary links, at the same path inside the image.
ldd "$bin" | awk '/=> \// {print $3} /^[ \t]*\// {print $1}' | while read -r lib; do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
cp "$here/Dockerfile" "$ctx/Dockerfile"
docker build -q -t "$tag" "$ctx" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"
