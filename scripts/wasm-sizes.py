#!/usr/bin/env python3
"""What a WebAssembly module is made of: its sections, and its code by crate.

    python3 scripts/wasm-sizes.py MODULE.wasm [--top N]

Reads the module's name section (so give it the .wasm cargo wrote, before wasm-bindgen strips the
names: scripts/build-wasm.sh keeps each module's in $CARGO_TARGET_DIR/wasm-modules/), attributes each
function body to the crate of its (demangled) path, and prints bytes raw and gzipped (each
crate's functions compressed together, so the gzip column adds up to a bit more than the whole).
"""
import argparse
import gzip
import re
import sys
from collections import defaultdict

SECTIONS = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
            7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount"}


def leb(buf, i):
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def name_of(buf, i):
    n, i = leb(buf, i)
    return buf[i:i + n].decode("utf-8", "replace"), i + n


ESCAPES = {"$LT$": "<", "$GT$": ">", "$u20$": " ", "$RF$": "&", "$C$": ",", "$BP$": "*", "$u5b$": "[", "$u5d$": "]",
           "$u7b$": "{", "$u7d$": "}", "$u27$": "'", "$u22$": '"', "$u3b$": ";", "$u2b$": "+", "$LP$": "(", "$RP$": ")"}


def demangled(symbol):
    """rustc's escaped path form ("_$LT$a..b$u20$as$u20$c..d$GT$") as Rust syntax."""
    if symbol.startswith("_$"):
        symbol = symbol[1:]
    for k, v in ESCAPES.items():
        symbol = symbol.replace(k, v)
    return symbol.replace("..", "::")


def crate_of(symbol):
    """The crate a (possibly mangled) function name belongs to (for `<T as Trait>`, T's)."""
    symbol = demangled(symbol)
    if symbol.startswith("_ZN"):  # legacy mangling: _ZN<len><ident>...
        m = re.match(r"_ZN(\d+)", symbol)
        if m:
            n = int(m.group(1))
            start = m.end()
            return symbol[start:start + n]
    if symbol.startswith("_R"):  # v0 mangling (the nightly's): the first crate root, C[s<base62>_]<len><name>
        m = re.search(r"C(?:s[0-9A-Za-z]*_)?(\d+)([A-Za-z_][A-Za-z0-9_]*)", symbol)
        if m:
            return m.group(2)[: int(m.group(1))]
    # Demangled or C-like names: "<crate::path as ...>" or "crate::path"
    m = re.match(r"<?&?(?:mut )?(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)::", symbol)
    if m:
        return m.group(1)
    return "(other: " + ("wasm-bindgen glue" if "wbg" in symbol or "wbindgen" in symbol else "C / runtime") + ")"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("module")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    buf = open(args.module, "rb").read()
    assert buf[:4] == b"\0asm", "not a WebAssembly module"
    i = 8
    sections = defaultdict(int)
    imported_funcs = 0
    bodies = []
    names = {}
    while i < len(buf):
        sid = buf[i]
        size, j = leb(buf, i + 1)
        end = j + size
        label = SECTIONS.get(sid, f"id {sid}")
        if sid == 0:
            cname, k = name_of(buf, j)
            label = f"custom {cname}"
            if cname == "name":
                while k < end:
                    sub = buf[k]
                    ssize, k2 = leb(buf, k + 1)
                    if sub == 1:
                        count, m = leb(buf, k2)
                        for _ in range(count):
                            idx, m = leb(buf, m)
                            nm, m = name_of(buf, m)
                            names[idx] = nm
                    k = k2 + ssize
        elif sid == 2:
            count, k = leb(buf, j)
            for _ in range(count):
                _, k = name_of(buf, k)
                _, k = name_of(buf, k)
                kind = buf[k]
                k += 1
                if kind == 0:
                    _, k = leb(buf, k)
                    imported_funcs += 1
                elif kind == 1:
                    k += 1
                    flags, k = leb(buf, k)
                    _, k = leb(buf, k)
                    if flags & 1:
                        _, k = leb(buf, k)
                elif kind == 2:
                    flags, k = leb(buf, k)
                    _, k = leb(buf, k)
                    if flags & 1:
                        _, k = leb(buf, k)
                elif kind == 3:
                    k += 2
                else:
                    k += 1  # tag
                    _, k = leb(buf, k)
        elif sid == 10:
            count, k = leb(buf, j)
            for n in range(count):
                bsize, k2 = leb(buf, k)
                bodies.append((imported_funcs + n, buf[k2:k2 + bsize]))
                k = k2 + bsize
        sections[label] += end - i
        i = end
    total = len(buf)
    print(f"{args.module}: {total / 1e6:.2f} MB raw, {len(gzip.compress(buf, 9)) / 1e6:.2f} MB gzipped")
    print("\nsections:")
    for label, size in sorted(sections.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<28} {size / 1e6:8.2f} MB  {100 * size / total:5.1f}%")
    if not names:
        print("\n(no name section: give the module cargo wrote, before wasm-bindgen)")
        return
    by_crate = defaultdict(list)
    for idx, body in bodies:
        by_crate[crate_of(names.get(idx, ""))].append(body)
    rows = []
    for crate, bs in by_crate.items():
        joined = b"".join(bs)
        rows.append((crate, len(bs), len(joined), len(gzip.compress(joined, 6))))
    code = sum(r[2] for r in rows)
    print(f"\ncode by crate (function bodies, {code / 1e6:.2f} MB):")
    print(f"  {'crate':<32} {'functions':>9} {'raw MB':>8} {'gzip MB':>8} {'share':>6}")
    for crate, n, raw, gz in sorted(rows, key=lambda r: -r[2])[: args.top]:
        print(f"  {crate:<32} {n:>9} {raw / 1e6:8.2f} {gz / 1e6:8.2f} {100 * raw / code:5.1f}%")


if __name__ == "__main__":
    sys.exit(main())
