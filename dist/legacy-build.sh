#!/usr/bin/env bash
# The legacy exes, for Windows 7 SP1 / Server 2008 R2 SP1 and newer (64-bit) and 32-bit Windows 7
# SP1 and newer: Rust's tier-3 targets x86_64-win7-windows-gnu and i686-win7-windows-gnu, with
# std built from source by the nightly pinned in dist/legacy-toolchain.
#
#   bash dist/legacy-build.sh      # -> target/legacy/{x86_64,i686}-win7-windows-gnu/release/automate-ports.exe
#
# Needs: that nightly with rust-src (the script installs it with rustup if missing), mingw-w64
# for both architectures (Debian: gcc-mingw-w64-x86-64, gcc-mingw-w64-i686; the linkers are set
# in .cargo/config.toml, windres in build.rs). A target dir of its own (CARGO_TARGET_DIR,
# default target/legacy), so it never waits on the lock of target/. One job at a time unless
# CARGO_BUILD_JOBS says otherwise; each target's time is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain=$(grep -v '^#' dist/legacy-toolchain | grep -m1 .)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/legacy}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

if ! rustup run "$toolchain" rustc --print sysroot >/dev/null 2>&1 \
  || [ ! -d "$(rustup run "$toolchain" rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
  # Bounded: a machine that cannot reach rustup's server fails here, loudly.
  timeout 600 rustup toolchain install "$toolchain" --profile minimal --component rust-src \
    || { echo "legacy-build: FAIL: cannot install $toolchain with rust-src" >&2; exit 1; }
fi

for target in x86_64-win7-windows-gnu i686-win7-windows-gnu; do
  case $target in
    x86_64-*) mingw=x86_64-w64-mingw32 ;;
    i686-*) mingw=i686-w64-mingw32 ;;
  esac
  var=${target//-/_}
  start=$SECONDS
  # ring's C code: cc would look for a compiler named after the tier-3 target; name mingw's.
  env "CC_$var=$mingw-gcc" "AR_$var=$mingw-ar" \
    cargo "+$toolchain" build --release -Zbuild-std=std,panic_abort --target "$target"
  echo "legacy-build: $target built in $((SECONDS - start)) s with $toolchain: $CARGO_TARGET_DIR/$target/release/automate-ports.exe"
done
