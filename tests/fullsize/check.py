#!/usr/bin/env python3
"""Full-size reference check (outside CI).

Builds random-init (no pretrained weights, fixed seed) full-size open_clip models,
perturbs them the same way as the tiny fixtures (so no norm/bias is trivial), saves
their state dicts as safetensors, writes a few skimage photos as PNG files, and
records open_clip's features and PyTorch-CPU throughput as JSON.

    python tests/fullsize/check.py OUT_DIR [--models ViT-B-32,RN50] [--iters 3]

Writes:
    OUT_DIR/<model>.safetensors   open_clip state_dict (f32; RN50 keeps int64 num_batches_tracked)
    OUT_DIR/<model>.json          open_clip model config used
    OUT_DIR/images/<photo>.png    the exact files whose features are recorded
    OUT_DIR/reference.json        features, logits, timings, versions (see README.md)
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

import open_clip

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]
PROMPTS = [
    "a photo of an astronaut.",
    "a photo of a cat.",
    "a cup of coffee",
    "a rocket on the launch pad",
    "a diagram",
]
SEED = 4242


# The same perturbation as the tiny fixtures (non-trivial norms/biases, He-normal ResNet convs).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures"))
from generate import perturb  # noqa: E402


def write_photos(out):
    import skimage.data
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        arr = getattr(skimage.data, name)()
        p = img_dir / f"{name}.png"
        Image.fromarray(arr).convert("RGB").save(p)
        paths.append(p)
    return paths


def timed(fn, x, iters):
    with torch.no_grad():
        fn(x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(iters):
            fn(x)
        return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--models", default="ViT-B-32,RN50")
    ap.add_argument("--iters", type=int, default=3, help="timed batches after one warm-up batch")
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    nproc = os.cpu_count() or 1
    torch.set_num_threads(nproc)
    photo_paths = write_photos(out)

    import PIL
    ref = {
        "versions": {"torch": torch.__version__, "open_clip_torch": open_clip.__version__,
                     "Pillow": PIL.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        "torch_num_threads": torch.get_num_threads(),
        "images": [str(p) for p in photo_paths],
        "texts": PROMPTS,
        "models": {},
    }

    for name in [m for m in args.models.split(",") if m]:
        print(f"[check.py] {name}: building random-init model", flush=True)
        torch.manual_seed(SEED)
        model = open_clip.create_model(name)  # no pretrained weights
        perturb(model, SEED)
        model.eval()
        cfg = open_clip.get_model_config(name)
        with open(out / f"{name}.json", "w") as f:
            json.dump(cfg, f, indent=2)
        weights = out / f"{name}.safetensors"
        save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(weights),
                  metadata={"format": "pt"})

        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        tf = open_clip.image_transform(size, is_train=False)
        pix = torch.stack([tf(Image.open(p)) for p in photo_paths])
        ids = open_clip.tokenize(PROMPTS)

        with torch.no_grad():
            img = model.encode_image(pix)
            txt = model.encode_text(ids)
            scale = model.logit_scale.exp().item()
            logits = scale * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T

        b = args.batch
        pix_b = pix.repeat((b + len(pix) - 1) // len(pix), 1, 1, 1)[:b].contiguous()
        ids_b = ids.repeat((b + len(ids) - 1) // len(ids), 1)[:b].contiguous()
        t_img = timed(model.encode_image, pix_b, args.iters)
        t_txt = timed(model.encode_text, ids_b, args.iters)
        timing = {
            "device": "cpu",
            "batch": b,
            "iters": args.iters,
            "threads": torch.get_num_threads(),
            "images_per_s": b * args.iters / t_img,
            "texts_per_s": b * args.iters / t_txt,
        }
        spread = img.std(0).mean().item() / max(img.std().item(), 1e-12)
        print(f"[check.py] {name}: image feature spread across images {spread:.3f}; "
              f"{timing['images_per_s']:.2f} img/s, {timing['texts_per_s']:.2f} txt/s "
              f"({timing['threads']} threads)", flush=True)
        ref["models"][name] = {
            "weights": str(weights),
            "image_size": size,
            "pixel_values_shape": list(pix.shape),
            "pixel_values_sum": pix.double().sum().item(),
            "input_ids": ids.tolist(),
            "image_features": img.tolist(),
            "text_features": txt.tolist(),
            "logit_scale": scale,
            "logits_per_image": logits.tolist(),
            "timing": timing,
        }
        del model

    with open(out / "reference.json", "w") as f:
        json.dump(ref, f, indent=1)
    print(f"[check.py] wrote {out / 'reference.json'}", flush=True)


if __name__ == "__main__":
    main()
