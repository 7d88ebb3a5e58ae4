#!/usr/bin/env bash
# Release archives that install without a toolchain, and their checks.
#
#   bash dist/dist.sh            # builds and packs into target/dist/
#   DIST_URL=https://github.com/OWNER/automate-ports/releases/download bash dist/dist.sh
#
# Builds the Windows x64 exe (Windows 10 / Server 2016 and newer), the legacy exes for Windows 7
# SP1 / Server 2008 R2 SP1 and newer, x64 and x86 (dist/legacy-build.sh: the nightly pinned in
# dist/legacy-toolchain, target/legacy), all with their version resource, and a static Linux
# (musl) binary; packs each with the README, licences, changelog, protocol and JSON schema (the
# Windows zips also with the PowerShell module) into target/dist/, writes SHA256SUMS, and
# generates a Scoop manifest and winget manifests (for the x64 exe) from the version and hashes.
# Then it checks what it made: each exe's version resource read back (exiftool), each exe's
# import table against dist/win7-missing-imports.txt (dist/check-imports.py: a legacy exe that
# imports anything Windows 7 SP1 lacks fails; what the Windows 10 exe imports from the list is
# reported), the musl binary is static and runs --version in an empty network namespace (as
# root), SHA256SUMS verifies, and the crate package holds every file the README links.
# Needs: mingw-w64 (x86-64 and i686), musl-tools, libimage-exiftool-perl, python3, iproute2
# (root), and rustup (dist/legacy-build.sh installs the pinned nightly with rust-src if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

# Every missing program named with its package before anything builds: without them the build
# fails deep in a C build script (ring's) or at the last check.
missing=()
for need in x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64 i686-w64-mingw32-gcc:gcc-mingw-w64-i686 \
  musl-gcc:musl-tools exiftool:libimage-exiftool-perl python3:python3 ip:iproute2 file:file \
  rustup:rustup; do
  command -v "${need%%:*}" >/dev/null 2>&1 || missing+=("${need%%:*} (${need#*:})")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "dist.sh: missing: ${missing[*]}; install them first (apt-get install the packages named; rustup from rustup.rs)" >&2
  exit 2
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
url=${DIST_URL:-https://github.com/automate-ports/automate-ports/releases/download}/v$version
out=target/dist
rm -rf "$out"
mkdir -p "$out"

# The four binaries (dist/build.sh; nothing to do for one already built): the Windows x64 exe,
# the static Linux build (target/musl), the legacy exes (target/legacy, their own pinned nightly).
bash dist/build.sh windows musl legacy

win=automate-ports-$version-x86_64-pc-windows
# The legacy exes (Windows 7 SP1 / Server 2008 R2 SP1 and newer), 64-bit and 32-bit.
win7_x64=automate-ports-$version-x86_64-win7-windows
win7_x86=automate-ports-$version-i686-win7-windows
lin=automate-ports-$version-x86_64-unknown-linux-musl
# zip name -> the exe it holds
zips=("$win=target/x86_64-pc-windows-gnu/release/automate-ports.exe"
  "$win7_x64=target/legacy/x86_64-win7-windows-gnu/release/automate-ports.exe"
  "$win7_x86=target/legacy/i686-win7-windows-gnu/release/automate-ports.exe")
docs=(README.md LICENSE-MIT LICENSE-APACHE CHANGELOG.md PROTOCOL.md schema/report-1.json)
python3 - "$out" "$lin" "${#zips[@]}" "${zips[@]}" "${docs[@]}" <<'PY'
import os, sys, tarfile, zipfile
out, lin, n, *rest = sys.argv[1:]
zips, docs = [z.split("=", 1) for z in rest[:int(n)]], rest[int(n):]
# Fixed timestamps and modes: the same sources give the same archives.
stamp = (2020, 1, 1, 0, 0, 0)
for win, exe in zips:
    with zipfile.ZipFile(f"{out}/{win}.zip", "w", zipfile.ZIP_DEFLATED) as z:
        files = [(exe, "automate-ports.exe"),
                 ("powershell/AutomatePorts.psm1", "AutomatePorts.psm1")] + [(d, d) for d in docs]
        for src, name in files:
            info = zipfile.ZipInfo(f"{win}/{name}", stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, open(src, "rb").read())
def add(t, src, name, mode):
    info = t.gettarinfo(src, f"{lin}/{name}")
    info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 1577836800, mode, 0, 0, "", ""
    t.addfile(info, open(src, "rb"))
with tarfile.open(f"{out}/{lin}.tar.gz", "w:gz") as t:
    add(t, "target/musl/x86_64-unknown-linux-musl/release/automate-ports", "automate-ports", 0o755)
    for d in docs:
        add(t, d, d, 0o644)
PY
(cd "$out" && sha256sum "$win.zip" "$win7_x64.zip" "$win7_x86.zip" "$lin.tar.gz" > SHA256SUMS)
zip_sha=$(cut -d' ' -f1 < <(grep "$win.zip" "$out/SHA256SUMS"))

# Scoop: a bucket manifest for the zip.
cat > "$out/automate-ports.json" <<EOF
{
    "version": "$version",
    "description": "Checks every network path ConnectWise Automate and ScreenConnect need, and says which one is blocked and what to change",
    "homepage": "https://github.com/automate-ports/automate-ports",
    "license": "MIT|Apache-2.0",
    "architecture": {
        "64bit": {
            "url": "$url/$win.zip",
            "hash": "$zip_sha",
            "extract_dir": "$win"
        }
    },
    "bin": "automate-ports.exe"
}
EOF

# winget: the three manifests of one version (a portable exe inside a zip).
w="$out/winget/manifests/a/AutomatePorts/AutomatePorts/$version"
mkdir -p "$w"
cat > "$w/AutomatePorts.AutomatePorts.yaml" <<EOF
PackageIdentifier: AutomatePorts.AutomatePorts
PackageVersion: $version
DefaultLocale: en-US
ManifestType: version
ManifestVersion: 1.6.0
EOF
cat > "$w/AutomatePorts.AutomatePorts.installer.yaml" <<EOF
PackageIdentifier: AutomatePorts.AutomatePorts
PackageVersion: $version
InstallerType: zip
NestedInstallerType: portable
NestedInstallerFiles:
  - RelativeFilePath: $win\\automate-ports.exe
    PortableCommandAlias: automate-ports
Installers:
  - Architecture: x64
    InstallerUrl: $url/$win.zip
    InstallerSha256: ${zip_sha^^}
ManifestType: installer
ManifestVersion: 1.6.0
EOF
cat > "$w/AutomatePorts.AutomatePorts.locale.en-US.yaml" <<EOF
PackageIdentifier: AutomatePorts.AutomatePorts
PackageVersion: $version
PackageLocale: en-US
Publisher: automate-ports
PackageName: automate-ports
License: MIT OR Apache-2.0
ShortDescription: Checks every network path ConnectWise Automate and ScreenConnect need, and says which one is blocked and what to change
Tags:
  - connectwise
  - firewall
  - msp
ManifestType: defaultLocale
ManifestVersion: 1.6.0
EOF

# --- The checks. ---
fail() { echo "dist: FAIL $*" >&2; exit 1; }
(cd "$out" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not verify"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for z in "$win" "$win7_x64" "$win7_x86"; do
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$out/$z.zip" "$scratch"
  exe_version=$(exiftool -s3 -ProductVersion "$scratch/$z/automate-ports.exe")
  [ "$exe_version" = "$version" ] || fail "$z: the exe's version resource says '$exe_version', the crate $version"
  exe_name=$(exiftool -s3 -ProductName "$scratch/$z/automate-ports.exe")
  [ "$exe_name" = "automate-ports" ] || fail "$z: the exe's product name is '$exe_name'"
done
# Import tables: the legacy exes import nothing Windows 7 SP1 lacks; the x64 exe (Windows 10 and
# newer) may, and what it imports from the list is reported.
python3 dist/check-imports.py "$scratch/$win7_x64/automate-ports.exe" "$scratch/$win7_x86/automate-ports.exe" \
  || fail "a legacy exe imports what Windows 7 SP1 lacks (above; list: dist/win7-missing-imports.txt)"
python3 dist/check-imports.py --report-only "$scratch/$win/automate-ports.exe"
tar -xzf "$out/$lin.tar.gz" -C "$scratch"
bin="$scratch/$lin/automate-ports"
file -b "$bin" | grep -q 'static' || ! ldd "$bin" >/dev/null 2>&1 || fail "the Linux binary is not static: $(file -b "$bin")"
if [ "$(id -u)" = 0 ]; then
  ns="apdist$$"
  ip netns add "$ns"
  said=$(ip netns exec "$ns" "$bin" --version) || { ip netns del "$ns"; fail "the musl binary does not run"; }
  ip netns del "$ns"
else
  said=$("$bin" --version)
fi
[ "$said" = "automate-ports $version" ] || fail "the musl binary says '$said'"
# The crate package holds every file the README links.
listed=$(cargo package --list --allow-dirty --offline 2>/dev/null || cargo package --list --allow-dirty)
for link in $(grep -o '](\([^)h#][^)]*\))' README.md | sed 's/^](//; s/)$//' | sort -u); do
  grep -qx "$link" <<<"$listed" || fail "README links $link, which the crate package leaves out (Cargo.toml include)"
done
echo "dist: $(ls "$out" | tr '\n' ' ')"
echo "dist: ok: version resource $exe_version in all three exes, legacy exes import nothing Windows 7 SP1 lacks, static musl binary runs ($said), SHA256SUMS verify, package holds the README's links"
