#!/usr/bin/env bash
# An arm64 Debian root for cpu_portability.py: debootstrap from Debian's packages, qemu-user-static inside,
# Python with the runtime's wheels from PyPI (onnxruntime's aarch64 wheel), this checkout bind-mounted at
# /koner. Run as root on an x86-64 Debian host: bash benchmarks/arm64_root.sh [ROOT] (default /srv/arm64).
# /proc is mounted; sysfs is not (onnxruntime's cpuinfo crashes under qemu when it can read /sys).
set -euo pipefail
ROOT=${1:-/srv/arm64}
HERE=$(cd "$(dirname "$0")/.." && pwd)
command -v debootstrap >/dev/null && command -v qemu-aarch64-static >/dev/null || \
  apt-get install -y -q debootstrap qemu-user-static binfmt-support
# arm64 binaries started inside the root (the second stage, pip) need the kernel to hand them to qemu
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
if [ ! -e "$ROOT/etc/debian_version" ]; then
  debootstrap --arch=arm64 --foreign --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$ROOT" http://deb.debian.org/debian
fi
cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/"
if [ -d "$ROOT/debootstrap" ]; then  # removed when the second stage completes
  chroot "$ROOT" /usr/bin/qemu-aarch64-static /bin/sh /debootstrap/debootstrap --second-stage
fi
cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mkdir -p "$ROOT/koner"
mountpoint -q "$ROOT/koner" || mount --bind "$HERE" "$ROOT/koner"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# the host's CA bundle and pip settings: a network behind a TLS-inspecting proxy needs them inside too
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
[ ! -f /etc/pip.conf ] || cp /etc/pip.conf "$ROOT/etc/pip.conf"
[ -x "$ROOT/opt/venv/bin/python" ] || chroot "$ROOT" /usr/bin/qemu-aarch64-static /usr/bin/python3 -m venv /opt/venv
if ! chroot "$ROOT" /usr/bin/qemu-aarch64-static /opt/venv/bin/python -c "import onnxruntime, tokenizers, numpy" 2>/dev/null; then
  chroot "$ROOT" /usr/bin/qemu-aarch64-static /opt/venv/bin/python -m pip install -q \
    "onnxruntime>=1.17" "tokenizers>=0.15" "numpy>=1.24"
fi
ln -sf /opt/venv/bin/python "$ROOT/usr/local/bin/koner-python"
echo "arm64 root ready: $ROOT (python: /opt/venv/bin/python, checkout at /koner)"
