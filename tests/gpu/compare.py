#!/usr/bin/env python3
"""Max abs difference between two `clip-burn embed` JSON outputs (CUDA vs CPU); exit 1 past 1e-3."""
import json
import sys

a, b = (json.load(open(p)) for p in sys.argv[1:3])
worst = 0.0
for key in ("image_features", "text_features"):
    if not a[key]:
        continue
    d = max(abs(x - y) for ra, rb in zip(a[key], b[key]) for x, y in zip(ra, rb))
    worst = max(worst, d)
    print(f"  {key}: max abs diff cuda vs cpu {d:.2e}")
print("  OK" if worst <= 1e-3 else "  FAIL")
sys.exit(0 if worst <= 1e-3 else 1)
