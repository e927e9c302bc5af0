#!/usr/bin/env bash
# Builds kernels/src/neon.rs for aarch64 with Debian's rustc and its arm64 std (the rustup
# toolchain has no aarch64 std here), links it with a minimal stand-in for `crate::layout`
# (main.rs), and runs it under qemu-aarch64 against a scalar sum. Debian/Ubuntu, as root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
need=()
[ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ] || need+=(rustc libstd-rust-dev:arm64)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/main.rs" "$here/../src/neon.rs" "$work/"
/usr/bin/rustc --edition 2021 -O --cap-lints allow --target aarch64-unknown-linux-gnu \
  -C linker=aarch64-linux-gnu-gcc "$work/main.rs" -o "$work/neon_check"
QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 "$work/neon_check"
