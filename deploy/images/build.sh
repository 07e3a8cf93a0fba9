#!/usr/bin/env bash
# Builds meso's small images as OCI archives, with no registry and no container tooling:
#   pause.tar    meso.local/pause:3.10             (pause.c, gcc -static)
#   busybox.tar  docker.io/library/busybox:stable  (Debian's busybox-static: sh, httpd, wget, nc…)
# Usage: deploy/images/build.sh [OUT_DIR]   (default: deploy/images/out)
# Needs: gcc, libc6-dev (static libc), busybox-static, tar, gzip, sha256sum.
# Import with `meso-kubelet image import OUT_DIR/*.tar`, or drop the archives into
# DATA_DIR/images/ where the kubelet imports them at start.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
busybox="${BUSYBOX:-/bin/busybox}"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# oci_archive REF ROOTFS CONFIG_JSON OUT: one-layer OCI image layout, tarred.
oci_archive() {
    local ref="$1" rootfs="$2" config="$3" dest="$4" dir="$work/oci-$RANDOM"
    mkdir -p "$dir/blobs/sha256"
    tar -C "$rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$dir/layer.tar" .
    local diff_id; diff_id="$(sha "$dir/layer.tar")"
    gzip -n -9 "$dir/layer.tar"
    local layer; layer="$(sha "$dir/layer.tar.gz")"
    local layer_size; layer_size="$(size "$dir/layer.tar.gz")"
    mv "$dir/layer.tar.gz" "$dir/blobs/sha256/$layer"

    printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"meso deploy/images/build.sh"}]}' \
        "$arch" "$config" "$diff_id" >"$dir/config.json"
    local cfg; cfg="$(sha "$dir/config.json")"
    local cfg_size; cfg_size="$(size "$dir/config.json")"
    mv "$dir/config.json" "$dir/blobs/sha256/$cfg"

    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
        "$cfg" "$cfg_size" "$layer" "$layer_size" >"$dir/manifest.json"
    local man; man="$(sha "$dir/manifest.json")"
    local man_size; man_size="$(size "$dir/manifest.json")"
    mv "$dir/manifest.json" "$dir/blobs/sha256/$man"

    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
        "$man" "$man_size" "$arch" "$ref" "${ref##*:}" >"$dir/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    tar -C "$dir" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$dest" oci-layout index.json blobs
    echo "built $dest ($ref)"
}

base_files() {
    local root="$1"
    mkdir -p "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/root"
    chmod 1777 "$root/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

path_env='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'

# pause
gcc -static -Os -s -o "$work/pause" "$here/pause.c"
mkdir -p "$work/pause-root"
base_files "$work/pause-root"
install -m 0755 "$work/pause" "$work/pause-root/pause"
oci_archive "meso.local/pause:3.10" "$work/pause-root" "{$path_env,\"Entrypoint\":[\"/pause\"]}" "$out/pause.tar"

# busybox
[[ -x "$busybox" ]] || { echo "no $busybox: apt-get install busybox-static" >&2; exit 1; }
if [[ "$(LC_ALL=C ldd "$busybox" 2>&1 || true)" != *"not a dynamic executable"* ]]; then
    echo "$busybox is not statically linked: apt-get install busybox-static" >&2
    exit 1
fi
root="$work/busybox-root"
mkdir -p "$root/bin" "$root/var/www"
base_files "$root"
install -m 0755 "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
oci_archive "docker.io/library/busybox:stable" "$root" "{$path_env,\"Cmd\":[\"sh\"]}" "$out/busybox.tar"
