#!/usr/bin/env bash
# Stand-ins for the three base images deploy/*.Dockerfile name in FROM, made from Debian's own
# packages with debootstrap, for machines that cannot pull from a registry (no Docker Hub, no
# gcr.io). Each is tagged with the exact name the Dockerfiles use, so `buildah bud --pull=never`
# resolves FROM to it. Idempotent: an image already in buildah's storage is kept.
#
#   deploy/base-images.sh            make the missing ones
#   deploy/base-images.sh --force    remake all three
#
# How each departs from the published image it stands in for (written down so nobody is surprised):
# - debian:bookworm-slim: `debootstrap --variant=minbase bookworm` (the same package set the
#   official slim image starts from; docs and locales are not stripped, so it is larger).
# - rust:1.95-bookworm: minbase plus the compilers, git, curl and pkg-config of buildpack-deps
#   (not its dozens of -dev libraries), and Rust 1.95.0 from rustup's minimal profile, with the
#   official image's RUSTUP_HOME, CARGO_HOME and PATH.
# - gcr.io/distroless/static-debian12:nonroot: /etc/passwd and /etc/group with root, nobody and
#   nonroot (65532), the CA bundle, tzdata, a 1777 /tmp and /home/nonroot; user 65532. No
#   /var/lib/dpkg/status.d records (scanners read those; nothing here does).
# - All three trust this machine's local CA certificates (/usr/local/share/ca-certificates, or
#   EXTRA_CA_DIR): behind a TLS-inspecting proxy, as on our build machines, apt, pip, rustup and
#   cargo inside a build fail without them. Images built this way are for checking, not shipping.
#
# Needs root, buildah and debootstrap (Debian: apt-get install buildah debootstrap).
set -euo pipefail
force=false
[ "${1:-}" = "--force" ] && force=true

SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
RUST_VERSION=1.95.0
SLIM=docker.io/library/debian:bookworm-slim
RUST=docker.io/library/rust:1.95-bookworm
DISTROLESS=gcr.io/distroless/static-debian12:nonroot
extra_ca=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
cache=${NAS_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nas-operator/images}
bah=(buildah --storage-driver vfs)
log() { echo "base-images: $*" >&2; }

for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { log "$tool is missing (Debian: apt-get install $tool)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, buildah's vfs storage)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache/debs"

have() { "${bah[@]}" inspect --type image "$1" >/dev/null 2>&1; }

rootfs() { # rootfs DIR [PACKAGES]: a minbase Debian in DIR, plus PACKAGES (comma-separated)
  local include=()
  [ -n "${2:-}" ] && include=(--include="$2")
  debootstrap --variant=minbase --cache-dir="$cache/debs" "${include[@]}" "$SUITE" "$1" "$MIRROR" \
    > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*
  # The local CAs: in the bundle now when ca-certificates is installed, else when a build installs it.
  if compgen -G "$extra_ca/*.crt" >/dev/null; then
    mkdir -p "$1/usr/local/share/ca-certificates"
    cp "$extra_ca"/*.crt "$1/usr/local/share/ca-certificates/"
    [ -x "$1/usr/sbin/update-ca-certificates" ] && chroot "$1" update-ca-certificates >/dev/null 2>&1
  fi
  return 0
}

commit() { # commit DIR NAME [buildah config args...]: an image of DIR's files
  local dir=$1 name=$2 ctr mnt
  shift 2
  ctr=$("${bah[@]}" from scratch)
  mnt=$("${bah[@]}" mount "$ctr")
  cp -a "$dir"/. "$mnt"/
  "${bah[@]}" umount "$ctr" >/dev/null
  "${bah[@]}" config --os linux --arch amd64 "$@" "$ctr"
  "${bah[@]}" commit --quiet --rm "$ctr" "$name" >/dev/null
  log "made $name"
}

if $force || ! have "$SLIM"; then
  log "debootstrap $SUITE (minbase) for $SLIM"
  rootfs "$work/slim"
  commit "$work/slim" "$SLIM" --cmd bash
fi

if $force || ! have "$RUST"; then
  log "debootstrap $SUITE plus compilers, and Rust $RUST_VERSION, for $RUST"
  rootfs "$work/rust" ca-certificates,curl,git,gcc,g++,libc6-dev,make,pkg-config,xz-utils,procps
  curl -sSfL -o "$work/rustup-init" \
    https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init
  chmod +x "$work/rustup-init"
  # rustup only writes below RUSTUP_HOME and CARGO_HOME; the image sets the same paths.
  RUSTUP_HOME="$work/rust/usr/local/rustup" CARGO_HOME="$work/rust/usr/local/cargo" \
    "$work/rustup-init" -y -q --no-modify-path --profile minimal --default-toolchain "$RUST_VERSION" \
    > "$work/rustup.log" 2>&1 || { tail -20 "$work/rustup.log" >&2; exit 1; }
  chmod -R a+w "$work/rust/usr/local/rustup" "$work/rust/usr/local/cargo"
  commit "$work/rust" "$RUST" --cmd bash \
    --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env RUST_VERSION="$RUST_VERSION"
fi

if $force || ! have "$DISTROLESS"; then
  log "files of a distroless static image for $DISTROLESS"
  rootfs "$work/src" ca-certificates,tzdata
  d="$work/distroless"
  mkdir -p "$d/etc/ssl/certs" "$d/usr/share" "$d/tmp" "$d/home/nonroot" "$d/root"
  cp "$work/src/etc/ssl/certs/ca-certificates.crt" "$d/etc/ssl/certs/"
  cp -a "$work/src/usr/share/zoneinfo" "$d/usr/share/"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$d/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' > "$d/etc/group"
  chmod 1777 "$d/tmp"
  chown 65532:65532 "$d/home/nonroot"
  chmod 700 "$d/root"
  commit "$d" "$DISTROLESS" --user 65532:65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
fi
"${bah[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E 'debian|rust|distroless' >&2 || true
