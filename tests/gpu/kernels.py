"""cubecl's per-kernel profiling log (`| 1.2ms | name` lines, `[profiling.logger] level = "basic"`):
seconds and launches by kernel over a run's timed steps (the lines after the last warm-up marker
that `clip-burn bench train` prints).

Usage: python3 tests/gpu/kernels.py LOG [TOP]   (prints the table; summary.py imports `profile`)
"""
import re
import sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def profile(path):
    """({kernel: seconds}, {kernel: launches}) of the timed steps, or None without a log."""
    totals, counts = {}, {}
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return None
    # The timed steps: lines after the last warm-up marker (the logger runs behind the process,
    # so a few warm-up kernels can land after it).
    marks = [i for i, line in enumerate(lines) if "warm-up step" in line]
    lines = lines[marks[-1] + 1:] if marks else lines
    for line in lines:
        m = re.search(r"\|\s*([0-9.]+)(ns|µs|us|ms|s)\s*\|\s*(.+?)\s*$", line)
        if m:
            name = m.group(3).split("<")[0]
            totals[name] = totals.get(name, 0.0) + float(m.group(1)) * UNITS[m.group(2)]
            counts[name] = counts.get(name, 0) + 1
    return totals, counts


def families(totals, counts):
    """The same, kernels of one family together (cubecl's hash suffix and launch arguments cut)."""
    t, c = {}, {}
    for name in counts:
        family = re.sub(r"_[0-9a-f]{8}$", "", name.split(" | DynamicScalar")[0]).strip()
        t[family] = t.get(family, 0.0) + totals[name]
        c[family] = c.get(family, 0) + counts[name]
    return t, c


if __name__ == "__main__":
    p = profile(sys.argv[1])
    if not p or not p[1]:
        sys.exit(f"no kernel lines in {sys.argv[1]}")
    totals, counts = families(*p)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    print(f"{sum(counts.values())} kernel launches, {sum(totals.values()):.3f} s of kernel time")
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {n:6d}x {totals[name]:8.3f} s  {name[:100]}")
