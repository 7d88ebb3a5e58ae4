#!/usr/bin/env python3
"""Checks Windows exes' import tables against dist/win7-missing-imports.txt.

    python3 dist/check-imports.py [--report-only] [--list] EXE...

Reads each exe's import table with mingw's objdump (`x86_64-w64-mingw32-objdump -p`, which reads
32-bit and 64-bit PE files alike) and prints one line per import that Windows 7 SP1 lacks:
exe, DLL, function, and the list's note (minimum Windows, source). Exits 1 if any exe imports
one, unless --report-only (for the normal exe, which targets Windows 10 and newer: it reports
what that exe needs and never fails on it). --list prints every import (DLL!function), to review
the list against. A DLL listed whole (`dll.dll *`) matches any function from it. DLL names
compare case-insensitively (exes import both KERNEL32.dll and kernel32.dll).
"""
import os
import subprocess
import sys

LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "win7-missing-imports.txt")
OBJDUMP = os.environ.get("OBJDUMP", "x86_64-w64-mingw32-objdump")


def load_list(path):
    """{(dll, function): note}; function '*' means the whole DLL."""
    missing = {}
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            sys.exit(f"{path}:{n}: want 'DLL FUNCTION NOTE', got {line!r}")
        dll, func, note = parts
        missing[(dll.lower(), func)] = note
    return missing


def imports(exe):
    """[(dll, function)] from objdump -p; ordinal-only imports appear as '<ordinal N>'."""
    out = subprocess.run([OBJDUMP, "-p", exe], check=True, capture_output=True, text=True).stdout
    found, dll, in_table = [], None, False
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("The Import Tables"):
            in_table = True
            continue
        if not in_table:
            continue
        if s.startswith("The ") and "Table" in s or s.startswith("PE File Base Relocations"):
            break  # past the import tables (export, delay-import or relocations)
        if s.startswith("DLL Name:"):
            dll = s.split(":", 1)[1].strip()
        elif dll and s and not s.startswith("vma:"):
            fields = s.split()
            # Rows of a DLL's table are "vma  hint  name" (hint in decimal); the rows between
            # DLLs are directory entries of five hex fields, skipped. An import by ordinal has
            # no name: "vma  ordinal".
            if not all(c in "0123456789abcdefABCDEF" for c in fields[0]) or not fields[1].isdigit():
                continue
            if len(fields) == 3:
                found.append((dll, fields[2]))
            elif len(fields) == 2:
                found.append((dll, f"<ordinal {fields[1]}>"))
    if not found:
        sys.exit(f"check-imports: no import table read from {exe} (is it a PE file?)")
    return found


def main(argv):
    report_only = "--report-only" in argv
    list_all = "--list" in argv
    exes = [a for a in argv if not a.startswith("--")]
    if not exes:
        sys.exit(__doc__)
    missing = load_list(LIST)
    bad = 0
    for exe in exes:
        imps = imports(exe)
        if list_all:
            for dll, func in sorted(set(imps), key=lambda t: (t[0].lower(), t[1])):
                print(f"{exe}: {dll}!{func}")
        hits = []
        for dll, func in imps:
            note = missing.get((dll.lower(), func)) or missing.get((dll.lower(), "*"))
            if note:
                hits.append((dll, func, note))
        for dll, func, note in hits:
            print(f"{exe}: imports {dll}!{func}, which Windows 7 SP1 lacks ({note})")
        if hits:
            bad += 1
        dlls = len({d.lower() for d, _ in imps})
        verdict = "ok" if not hits else ("reported" if report_only else "FAIL")
        print(f"check-imports: {verdict}: {exe}: {len(imps)} imports from {dlls} DLLs, "
              f"{len(hits)} that Windows 7 SP1 lacks")
    return 1 if bad and not report_only else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
