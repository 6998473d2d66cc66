"""cubecl's per-kernel profiling log (`[profiling.logger]`, `stderr = true`): seconds and launches
by kernel over a run's timed steps (the lines after the last warm-up marker that `clip-burn bench
train` prints).

Level "basic" writes one line per launch (`| 1.2ms | name`). Level "full" writes the kernel's whole
compilation key after the name (its dtypes, vector widths, reduction routine, matmul family, over
many lines) and its grid (`} CubeCount (x, y, z)`): `--detail` condenses each launch to one key and
sums the time by key, which tells which kernels of a family are slow and why (a width of 1 is an
unvectorised kernel), and `--csv FILE` writes every launch with its grid.

Usage: python3 tests/gpu/kernels.py LOG [TOP] [--detail] [--csv FILE]
(prints the tables; summary.py imports `launches`, `summed` and `detail`)
"""
import csv
import re
import sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
# tests/gpu/train.sh prefixes each line of a log with its seconds (`  12.34 `).
STAMP = re.compile(r"^\s*[0-9]+\.[0-9]{2} ")
HEADER = re.compile(r"^\|\s*([0-9.]+)(ns|µs|us|ms|s)\s*\|\s*(.+?)\s*$")
GRID = re.compile(r"CubeCount \(([^)]*)\)\s*$")


def label(name):
    """A kernel's name as the "basic" level writes it, from the "full" level's type path:
    `a::b::ReduceKernel<c::TensorArgs>` -> `ReduceKernel | TensorArgs`."""
    if "::" not in name:
        return name
    outer, _, generics = name.partition("<")
    first = re.split(r"[,<>]", generics)[0].strip() if generics else ""
    out = outer.split("::")[-1]
    return f"{out} | {first.split('::')[-1]}" if first else out


def launches(path):
    """Each launch of the timed steps: (name, seconds, key text, grid); key text and grid are
    empty at the "basic" level. None without a log."""
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return None
    # The logger runs behind the process, so a few warm-up kernels can land after the marker.
    marks = [i for i, line in enumerate(lines) if "warm-up step" in line]
    lines = lines[marks[-1] + 1:] if marks else lines
    out, current = [], None
    for line in lines:
        line = STAMP.sub("", line, count=1)
        m = HEADER.match(line)
        if m:
            if current:
                out.append(current)
            rest = m.group(3)
            # "full": `type::Path<...>: Info {` (a type path has no ": "); "basic": the label.
            name, sep, key = rest.partition(": ")
            # A matmul's global family is in its type's generics, not in its key.
            key += "".join(f" family: {f}" for f in re.findall(r"(\w+MatmulFamily)", name) if sep)
            current = [label(name) if sep else name, float(m.group(1)) * UNITS[m.group(2)], key, ""]
            grid = GRID.search(key)
            if grid:
                current[3] = grid.group(1)
            continue
        if current and current[2]:
            grid = GRID.search(line)
            if grid:
                current[3] = grid.group(1)
                out.append(current)
                current = None
            else:
                current[2] += " " + line.strip()
    if current:
        out.append(current)
    return [tuple(x) for x in out]


def summed(runs):
    """({kernel: seconds}, {kernel: launches}) of `launches`' list."""
    totals, counts = {}, {}
    for name, seconds, _, _ in runs:
        totals[name] = totals.get(name, 0.0) + seconds
        counts[name] = counts.get(name, 0) + 1
    return totals, counts


def family(name):
    """A kernel's family: cubecl's hash suffix and launch arguments cut."""
    return re.sub(r"_[0-9a-f]{8}$", "", name.split(" | DynamicScalar")[0]).strip()


def families(totals, counts):
    """The same, kernels of one family together."""
    t, c = {}, {}
    for name in counts:
        f = family(name)
        t[f] = t.get(f, 0.0) + totals[name]
        c[f] = c.get(f, 0) + counts[name]
    return t, c


def condensed(key):
    """The parts of a "full" compilation key that say how a kernel runs: dtypes, vector widths
    (`w`), a reduction's routine, a matmul's global family, an element-wise block's op count."""
    parts = []
    dtypes = sorted(set(re.findall(r"\b(BF16|F16|F32|F64|Flex32|TF32)\b", key)))
    if dtypes:
        parts.append("/".join(dtypes))
    widths = re.findall(r"\bwidth: (\d+)", key)
    widths += re.findall(r"\b(?:in|out)_size: (\d+)", key)
    widths += re.findall(r"Vector \( Scalar \( \w+ \( \w+, \), \), (\d+), \)", key)
    widths += re.findall(r"\bline_size: (\d+)", key)
    widths += sum((re.findall(r"\d+", v) for v in re.findall(r"\bsizes: \[([0-9, ]+)\]", key)), [])
    if widths:
        parts.append("w" + ",".join(sorted(set(widths), key=int)))
    routine = re.search(r"\bglobal: (Unit|Plane|Cube)\b", key)
    if routine:
        parts.append(routine.group(1))
    tile = re.search(r"tile_matmul: (\w+)", key)
    if tile:
        size = lambda what: "x".join(re.search(what + r" \{ m: (\d+), n: (\d+), (?:k|batches): (\d+)", key).groups())
        layout = lambda side: re.search(side + r"_layout: (\w)", key).group(1)
        parts.append(f"{tile.group(1)} tile {size('TileSize')} stage {size('StageSize')} "
                     f"lhs {layout('lhs')} rhs {layout('rhs')}")
    family = re.search(r"family: (\w+)", key)
    if family:
        parts.append(family.group(1))
    ops = len(re.findall(r"UnaryFuseArgs|BinaryFuseArgs", key))
    if ops:
        parts.append(f"{ops} ops")
    return " ".join(parts)


def detail(runs):
    """{(family, condensed key): [seconds, launches, a grid]} over `launches` of a "full" log."""
    out = {}
    for name, seconds, key, grid in runs:
        k = (family(name), condensed(" ".join(key.split())))
        entry = out.setdefault(k, [0.0, 0, grid])
        entry[0] += seconds
        entry[1] += 1
    return out


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description="cubecl's profiling log, summed by kernel")
    parser.add_argument("log")
    parser.add_argument("top", nargs="?", type=int, default=25)
    parser.add_argument("--detail", action="store_true", help='by compilation key (a "full" log)')
    parser.add_argument("--csv", help="every launch, one row each")
    a = parser.parse_args(argv)
    path, top = a.log, a.top
    runs = launches(path)
    if not runs:
        sys.exit(f"no kernel lines in {path}")
    totals, counts = families(*summed(runs))
    print(f"{sum(counts.values())} kernel launches, {sum(totals.values()):.3f} s of kernel time")
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {n:6d}x {totals[name]:8.3f} s  {name[:100]}")
    if a.detail:
        print("\nBy compilation key (dtypes, vector widths w, routine), most time first; a grid of one launch:")
        for (name, key), (seconds, n, grid) in sorted(detail(runs).items(), key=lambda kv: -kv[1][0])[:top]:
            print(f"  {n:6d}x {seconds:8.3f} s  {name[:40]:40s} {key}  [{grid}]")
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["launch", "kernel", "seconds", "key", "grid"])
            for i, (name, seconds, key, grid) in enumerate(runs):
                w.writerow([i, name, f"{seconds:.9f}", condensed(" ".join(key.split())), grid])


if __name__ == "__main__":
    main(sys.argv[1:])
