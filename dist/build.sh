#!/usr/bin/env bash
# The release builds, one home for their command lines (dist/dist.sh packs what they make):
#
#   bash dist/build.sh [windows] [musl] [legacy]     # all three when none is named
#
#   windows  the x64 exe (Windows 10 / Server 2016 and newer): target/x86_64-pc-windows-gnu/release
#   musl     the static Linux binary, in a target dir of its own (target/musl), so it never waits
#            on the lock of target/ while another build runs there (CI builds it beside the tests)
#   legacy   the Windows 7 SP1 exes, x64 and x86 (dist/legacy-build.sh: pinned nightly, target/legacy)
#
# Needs what dist/dist.sh names (mingw-w64, musl-tools, rustup).
set -euo pipefail
cd "$(dirname "$0")/.."

(($# > 0)) || set -- windows musl legacy
for what in "$@"; do
  start=$SECONDS
  case $what in
    windows)
      cargo build --release --target x86_64-pc-windows-gnu
      ;;
    musl)
      rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
      # ring's C code needs a musl C compiler for the static build.
      CARGO_TARGET_DIR=target/musl CC_x86_64_unknown_linux_musl=musl-gcc \
        cargo build --release --target x86_64-unknown-linux-musl
      ;;
    legacy)
      bash dist/legacy-build.sh
      ;;
    *)
      echo "dist/build.sh: unknown build '$what' (windows, musl or legacy)" >&2
      exit 2
      ;;
  esac
  echo "dist/build.sh: $what built in $((SECONDS - start)) s"
done
