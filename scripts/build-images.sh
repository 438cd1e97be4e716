#!/usr/bin/env bash
# Builds the operator image and the CPU runner image from deploy/ with buildah (no Docker engine
# needed), runs each the way a cluster would, and records the result in deploy/images.built.
#
#   scripts/build-images.sh                build, run, record
#   scripts/build-images.sh --inputs-hash  print the hash of what the images are built from
#
# The record holds a hash of the build inputs (deploy/, the Cargo manifests and lock file, the
# libtorch bootstrap); scripts/check-packaging.sh (in CI) fails when they changed without this
# script being run again, and parses every Dockerfile variant, the CUDA one included, with
# BuildKit's parser. The builds themselves need root, buildah, runc and debootstrap (Debian:
# apt-get install buildah runc debootstrap) and 10 to 40 minutes on 2 cores, so CI does not run
# them. Base images come from deploy/base-images.sh (Debian packages, no registry).
#
# What "run" means here:
# - operator: `nas-operator --version` through buildah's OCI runtime (runc), as the image's user;
# - runner: `nas-runner --help` and a tiny `score` on generated data, as the image's user (65532),
#   on a read-only root file system with a fresh tmpfs at /tmp, the image's environment only.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
record=deploy/images.built
OPERATOR=localhost/nas-operator:dev
RUNNER=localhost/nas-runner:dev
bah=(buildah --storage-driver "${STORAGE_DRIVER:-vfs}")
log() { echo "build-images: $*" >&2; }

# One list of the inputs, used to write the record and by check-packaging.sh to compare.
inputs_hash() {
  git ls-files --cached --others --exclude-standard -- deploy Cargo.lock ':(glob)**/Cargo.toml' \
      .cargo/config.toml scripts/bootstrap-libtorch.sh scripts/build-images.sh \
    | grep -v -e "^$record\$" -e '^deploy/dockerfile-check/' | LC_ALL=C sort -u \
    | while read -r f; do [ -f "$f" ] && sha256sum "$f"; done | sha256sum | cut -d' ' -f1
}
if [ "${1:-}" = "--inputs-hash" ]; then inputs_hash; exit 0; fi

for tool in buildah runc debootstrap; do
  command -v "$tool" >/dev/null || { log "$tool is missing (Debian: apt-get install $tool)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { log "run as root (vfs storage and chroot isolation need it)"; exit 1; }

deploy/base-images.sh

build() { # build IMAGE DOCKERFILE [ARGS...]: prints the seconds it took
  local image=$1 file=$2 start
  shift 2
  start=$(date +%s)
  # No --layers: with vfs every cached layer is a full copy of the root file system (the runner
  # took 25 GB at its peak). Cargo's registry and target caches are cache mounts, which persist
  # anyway, so a rebuild recompiles only our crates.
  "${bah[@]}" bud --isolation chroot --pull=never \
    --ignorefile "$file.dockerignore" -f "$file" -t "$image" "$@" . >&2
  echo $(($(date +%s) - start))
}
size_mb() {
  "${bah[@]}" images --format '{{.Size}}' "$1" | head -1; }
config() { "${bah[@]}" inspect --type image --format "$2" "$1"; }

# run_locked_down IMAGE CMD...: the image's user and environment, read-only root, tmpfs /tmp.
run_locked_down() {
  local image=$1 ctr mnt user env
  shift
  user=$(config "$image" '{{.OCIv1.Config.User}}')
  env=$(config "$image" '{{range .OCIv1.Config.Env}}{{.}}{{"\n"}}{{end}}')
  ctr=$("${bah[@]}" from --pull-never "$image")
  mnt=$("${bah[@]}" mount "$ctr")
  local rc=0
  unshare --mount --fork -- bash -euo pipefail -c '
    mnt=$1 user=$2 env=$3; shift 3
    r=$(mktemp -d)
    mount --bind "$mnt" "$r" && mount -o remount,bind,ro "$r"
    mount -t tmpfs -o mode=1777,size=256m tmpfs "$r/tmp"
    mount --rbind /proc "$r/proc" && mount --rbind /sys "$r/sys" && mount --rbind /dev "$r/dev"
    mapfile -t vars <<<"$env"
    exec env -i "${vars[@]}" chroot --userspec="$user" "$r" "$@"
  ' run "$mnt" "$user" "$env" "$@" || rc=$?
  "${bah[@]}" umount "$ctr" >/dev/null
  "${bah[@]}" rm "$ctr" >/dev/null
  return "$rc"
}

log "building $OPERATOR"
op_s=$(build "$OPERATOR" deploy/operator.Dockerfile)
log "building $RUNNER (CPU)"
# buildah 1.28 does not resolve a stage name in `FROM runner-${TORCH}`; BuildKit does. The
# target names the same stage the default TORCH=cpu build ends in.
run_s=$(build "$RUNNER" deploy/runner.Dockerfile --build-arg TORCH=cpu --target runner-cpu)

[ "$(config "$OPERATOR" '{{.OCIv1.Config.User}}')" = 65532:65532 ] || { log "$OPERATOR does not run as 65532"; exit 1; }
[ "$(config "$RUNNER" '{{.OCIv1.Config.User}}')" = 65532:65532 ] || { log "$RUNNER does not run as 65532"; exit 1; }

ctr=$("${bah[@]}" from --pull-never "$OPERATOR")
op_version=$("${bah[@]}" run "$ctr" -- /usr/local/bin/nas-operator --version)
"${bah[@]}" rm "$ctr" >/dev/null
log "operator image runs: $op_version"

run_locked_down "$RUNNER" nas-runner --help >/dev/null
# Nothing but /tmp is writable (access(2) reports the read-only mount, even for /var/tmp).
writable=$(run_locked_down "$RUNNER" sh -c 'find / \( -path /proc -o -path /sys -o -path /dev \
  -o -path /tmp \) -prune -o -writable -print 2>/dev/null; true')
[ -z "$writable" ] || { log "writable outside /tmp in $RUNNER: $writable"; exit 1; }
# A tiny score on generated data: three NB201 cells, every kind of metric, output under /tmp only.
out=$(run_locked_down "$RUNNER" sh -euc '
  printf "%s\n" "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|" \
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|" \
    "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|" > /tmp/archs.txt
  nas-runner score --space nb201 --archs /tmp/archs.txt --metrics params,synflow,angle_loss --batch-size 10 --option iterations=5 \
    --data random --out /tmp/scores.jsonl >&2
  cat /tmp/scores.jsonl')
n=$(printf '%s\n' "$out" | grep -c '"angle_loss"' || true)
[ "$n" = 3 ] || { log "the runner image scored $n of 3 architectures:"; printf '%s\n' "$out" >&2; exit 1; }
log "runner image scores as 65532 with a read-only root: $n records"

op_mb=$(size_mb "$OPERATOR")
run_mb=$(size_mb "$RUNNER")
cat > "$record" <<EOF
# Written by scripts/build-images.sh; scripts/check-packaging.sh fails when the inputs change
# without it being run again. Sizes are buildah's (uncompressed); seconds include layer-cache hits.
inputs-sha256 $(inputs_hash)
built $(date -u +%Y-%m-%d) with $(buildah --version | cut -d' ' -f1-3) on $(nproc) cores
$OPERATOR size $op_mb build ${op_s}s runs "$op_version" as 65532
$RUNNER size $run_mb build ${run_s}s runs --help and score (3 NB201 cells) as 65532, read-only root
EOF
cat "$record"
