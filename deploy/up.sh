#!/usr/bin/env bash
# Starts a single-node meso cluster on this machine: installs the container runtime from
# Debian's packages (containerd, runc, CNI plugins), builds meso and its small images (pause,
# busybox), and runs `meso server` (API server, scheduler and a local agent with its own
# containerd) in the foreground. Extra arguments go to `meso server`.
# Usage: sudo bash deploy/up.sh [--data-dir DIR] [--secure-port PORT] ...
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "meso runs containers through containerd and needs root: sudo bash deploy/up.sh" >&2
    exit 1
fi

missing=()
for pkg in containerd runc containernetworking-plugins nftables iproute2 gcc libc6-dev \
    busybox-static protobuf-compiler; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

cargo build --release -p meso
bash deploy/images/build.sh

data_dir=/var/lib/meso
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --data-dir) data_dir="${args[$((i + 1))]}" ;;
        --data-dir=*) data_dir="${args[$i]#--data-dir=}" ;;
    esac
done
# The agent imports these archives into its containerd when it starts.
mkdir -p "$data_dir/agent/images"
cp deploy/images/out/*.tar "$data_dir/agent/images/"

exec ./target/release/meso server --data-dir "$data_dir" "$@"
