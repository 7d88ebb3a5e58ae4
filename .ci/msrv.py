#!/usr/bin/env python3
"""The minimum Rust version, told truthfully: Cargo.toml's rust-version must equal the highest
rust-version any locked crate that the binary builds (normal and build dependencies, every
target) declares. Reads the sources cargo already fetched; no network, no extra toolchain
(CI machines cannot install an old one offline).

usage: python3 .ci/msrv.py   (from the repository root, after a build)
"""
import glob
import os
import subprocess
import sys
import tomllib


def version(text):
    parts = [int(p) for p in text.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


manifest = tomllib.load(open("Cargo.toml", "rb"))
declared = manifest["package"]["rust-version"]
# Every target's crates must be on disk for `cargo tree --target all` (a build fetches only the
# host's; the Windows-only ones were missing on a fresh CI machine and the tree failed).
subprocess.run(["cargo", "fetch", "--locked"], check=True)
tree = subprocess.run(
    ["cargo", "tree", "-e", "normal,build", "--target", "all", "--prefix", "none", "--offline"],
    capture_output=True, text=True, check=True,
).stdout
used = {(line.split()[0], line.split()[1].lstrip("v")) for line in tree.splitlines() if line.strip()}
home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
roots = glob.glob(os.path.join(home, "registry", "src", "*"))
needs = []
for name, ver in used:
    if name == manifest["package"]["name"]:
        continue
    for root in roots:
        path = os.path.join(root, f"{name}-{ver}", "Cargo.toml")
        if os.path.exists(path):
            package = tomllib.load(open(path, "rb")).get("package", {})
            rv = package.get("rust-version")
            if isinstance(rv, str):
                needs.append((version(rv), rv, f"{name} {ver}"))
            break
needs.sort(reverse=True)
top = needs[0] if needs else ((0, 0, 0), "0", "nothing")
if version(declared) != top[0]:
    print(f"msrv: Cargo.toml says rust-version = {declared}, but {top[2]} needs {top[1]}: set it to {top[1]} (and the README's Install section)")
    sys.exit(1)
print(f"msrv: rust-version {declared} matches the locked dependencies (highest: {top[2]}, {top[1]})")
