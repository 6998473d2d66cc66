#!/usr/bin/env python3
"""The vendored crates (vendor/*, put in place by [patch.crates-io]) as content-addressed builds.

Cargo decides whether a path crate is fresh by file modification times, so a new clone (every file
new) rebuilt the vendored crates and with them the whole burn stack above them (~21 minutes on 2
cores) even with the cache of the same commit at hand. Here each vendored crate's version carries a
hash of its files (`0.3.1+clip.<hash>`: build metadata, which version requirements ignore), so the
cached artifacts of a version are those of one content, and its files' times can be set back to a
fixed date: the cache is reused exactly when the content is the same.

  stamp   write each crate's hash into its Cargo.toml and Cargo.lock (after editing vendored code)
  check   fail, naming the crates, if a stamp does not match its crate's files
  settle  check, then set the vendored files' modification times to 2000-01-01

A crate edited and built with plain cargo before re-stamping builds under its old version; stamp
after every edit of vendored code (`check` in scripts/test.sh refuses a stale stamp).
"""
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ.get("VENDORED_ROOT") or Path(__file__).resolve().parent.parent)  # the tests point it elsewhere
VENDOR = ROOT / "vendor"
VERSION = re.compile(r'^version = "(?P<full>(?P<base>[^"+]+)(?:\+[^"]*)?)"$', re.M)
SETTLED = 946684800  # 2000-01-01T00:00:00Z


def crates():
    return sorted(p.parent for p in VENDOR.glob("*/Cargo.toml"))


def files(crate):
    """The crate's files as git sees them: tracked, and untracked unless ignored."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", str(crate)],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout
    return sorted({ROOT / p for p in out.decode().split("\0") if p and (ROOT / p).is_file()})


def content_hash(crate):
    h = hashlib.sha256()
    for f in files(crate):
        data = f.read_bytes()
        if f == crate / "Cargo.toml":  # the stamp itself is not content
            data = VERSION.sub('version = "\\g<base>"', data.decode(), count=1).encode()
        h.update(str(f.relative_to(crate)).encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:12]


def package_name(crate):
    m = re.search(r'^name = "([^"]+)"$', (crate / "Cargo.toml").read_text(), re.M)
    return m.group(1)


def versions(crate):
    """The version the manifest says and the one the crate's content stamps."""
    m = VERSION.search((crate / "Cargo.toml").read_text())
    if not m:
        sys.exit(f"{crate / 'Cargo.toml'}: no `version = \"...\"` line")
    return m["full"], f"{m['base']}+clip.{content_hash(crate)}"


def stale():
    bad = []
    for crate in crates():
        said, stamped = versions(crate)
        if said != stamped:
            bad.append(crate.name)
    return bad


def stamp():
    lock_path = ROOT / "Cargo.lock"
    lock = lock_path.read_text()
    for crate in crates():
        _, version = versions(crate)
        toml = crate / "Cargo.toml"
        toml.write_text(VERSION.sub(f'version = "{version}"', toml.read_text(), count=1))
        # The path crate's entry in Cargo.lock has no `source` line; registry entries do.
        entry = re.compile(
            r'(\[\[package\]\]\nname = "' + re.escape(package_name(crate)) + r'"\nversion = ")[^"]*("\n(?!source))'
        )
        lock, n = entry.subn(lambda m: m.group(1) + version + m.group(2), lock)
        if n != 1:
            sys.exit(f"Cargo.lock: expected one path entry for {package_name(crate)}, found {n}")
        print(f"{crate.name}: {version}")
    lock_path.write_text(lock)


def check():
    bad = stale()
    if bad:
        sys.exit(f"vendored crates changed without a new stamp: {', '.join(bad)}; run python3 scripts/vendored.py stamp")


def settle():
    check()
    for crate in crates():
        for f in files(crate):
            os.utime(f, (SETTLED, SETTLED))


if __name__ == "__main__":
    commands = {"stamp": stamp, "check": check, "settle": settle}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]]()
