#!/usr/bin/env python3
"""Compare clip-burn `embed` output with check.py's open_clip reference.

    python tests/fullsize/compare.py OUT_DIR [--models ViT-B-32,RN50] [--tol 1e-3]

Reads OUT_DIR/reference.json, OUT_DIR/<model>.rust.json (and optionally
OUT_DIR/<model>.rust_time.json written by run.sh). Prints max |diff| of raw and of
L2-normalised features, the logit_scale difference, and images/s, texts/s of both.
Exit status 1 when a normalised-feature difference exceeds --tol.
"""
import argparse
import json
import math
import sys
from pathlib import Path


def l2n(rows):
    out = []
    for r in rows:
        n = math.sqrt(sum(x * x for x in r)) or 1.0
        out.append([x / n for x in r])
    return out


def max_abs(a, b):
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b)):
        raise SystemExit(f"shape mismatch: {len(a)}x{len(a[0]) if a else 0} vs {len(b)}x{len(b[0]) if b else 0}")
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def fmt(v):
    return "n/a" if v is None else f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--models", default="ViT-B-32,RN50")
    ap.add_argument("--tol", type=float, default=1e-3, help="max |diff| allowed on L2-normalised features")
    ap.add_argument("--markdown", type=Path, help="write the figures as the 'Full-size CPU' section of this file (BENCHMARKS.md)")
    args = ap.parse_args()
    rows = []
    ref = json.loads((args.out / "reference.json").read_text())
    ok = True
    for name in [m for m in args.models.split(",") if m]:
        r = ref["models"][name]
        rust_path = args.out / f"{name}.rust.json"
        if not rust_path.exists():
            print(f"{name}: {rust_path} missing")
            ok = False
            continue
        rust = json.loads(rust_path.read_text())
        d_img = max_abs(r["image_features"], rust["image_features"])
        d_txt = max_abs(r["text_features"], rust["text_features"])
        dn_img = max_abs(l2n(r["image_features"]), l2n(rust["image_features"]))
        dn_txt = max_abs(l2n(r["text_features"]), l2n(rust["text_features"]))
        d_scale = abs(r["logit_scale"] - float(rust.get("logit_scale", float("nan"))))
        print(f"== {name}")
        print(f"  image_features: max|diff| raw {d_img:.3e}, normalised {dn_img:.3e}")
        print(f"  text_features:  max|diff| raw {d_txt:.3e}, normalised {dn_txt:.3e}")
        print(f"  logit_scale:    torch {r['logit_scale']:.6f}, rust {rust.get('logit_scale')}, |diff| {d_scale:.3e}")
        t = r["timing"]
        print(f"  torch (CPU, {t['threads']} threads, batch {t['batch']}): "
              f"{t['images_per_s']:.2f} images/s, {t['texts_per_s']:.2f} texts/s")
        tp = args.out / f"{name}.rust_time.json"
        if tp.exists():
            rt = json.loads(tp.read_text())
            print(f"  clip-burn (wall clock, load excluded by differencing): "
                  f"{fmt(rt.get('images_per_s'))} images/s, {fmt(rt.get('texts_per_s'))} texts/s")
        rt = json.loads(tp.read_text()) if tp.exists() else {}
        rows.append((name, d_img, d_txt, t, rt))
        if "timings" in rust:
            print(f"  clip-burn self-reported timings: {rust['timings']}")
        if not (dn_img <= args.tol and dn_txt <= args.tol and d_scale <= 1e-3 * max(1.0, r["logit_scale"])):
            print(f"  FAIL (tol {args.tol})")
            ok = False
        else:
            print("  OK")
    if args.markdown and rows:
        write_markdown(args.markdown, rows, ref)
    sys.exit(0 if ok else 1)


def write_markdown(path, rows, ref):
    import datetime
    import os
    import platform

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    ratio = lambda a, b: "n/a" if not a or not b else f"**{a / b:.2f}x**"
    lines = [
        "## Full-size CPU: clip-burn embed vs open_clip (PyTorch CPU)",
        "",
        f"Produced by `tests/fullsize/run.sh` on {datetime.date.today()}: {os.cpu_count()} x {cpu}. Random-init",
        "open_clip models (seeded), the same PNG files and prompts; PyTorch eager f32 with all cores, batch 8;",
        "clip-burn's throughput from wall-clock differences of `clip-burn embed` runs (model load excluded).",
        "Speed-up = clip-burn / open_clip (above 1: clip-burn is faster).",
        "",
        "| model | max abs diff image / text | open_clip images/s | clip-burn images/s | speed-up | open_clip texts/s | clip-burn texts/s | speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, d_img, d_txt, t, rt in rows:
        ci, ct = rt.get("images_per_s"), rt.get("texts_per_s")
        lines.append(f"| {name} | {d_img:.1e} / {d_txt:.1e} | {t['images_per_s']:.2f} | {fmt(ci)} | {ratio(ci, t['images_per_s'])} "
                     f"| {t['texts_per_s']:.2f} | {fmt(ct)} | {ratio(ct, t['texts_per_s'])} |")
    section = "\n".join(lines) + "\n"
    md = path.read_text() if path.exists() else ("# Benchmarks\n\nEvery figure here is produced by a script in the repository, "
                                                   "as a ratio against the reference measured in the same run.\n\n")
    start = md.find("## Full-size CPU")
    if start >= 0:
        end = md.find("\n## ", start + 1)
        md = md[:start] + section + ("\n" + md[end + 1:] if end >= 0 else "")
    else:
        md += "\n" + section
    path.write_text(md)
    print(section)


if __name__ == "__main__":
    main()
