#!/usr/bin/env python3
"""The other engines of the CPU race (tests/fullsize/race.sh): open_clip on PyTorch and the same
weights exported to ONNX on ONNX Runtime's CPU engine, each timed as its users run it.

    engines.py export OUT MODEL     OUT/<MODEL>.{image,text,text-cut}.onnx from OUT/<MODEL>.safetensors
                                    (check.py's random-init weights; batch axis dynamic), ONNX
                                    Runtime's features against check.py's reference
                                    (OUT/<MODEL>.onnx_parity.json), and the towers' FLOPs per
                                    input counted by PyTorch (OUT/<MODEL>.flops.json)
    engines.py time OUT MODEL --engine torch|onnxruntime --tower image|text --batch B
                                    [--iters N] [--warmup W] [--threads T]
                                    one JSON line: load_s, warmup_ms, times_ms, median_ms, items_per_s

Inputs are check.py's photos (preprocessed by open_clip) and prompts, repeated in turn to fill
the batch: the same as `clip-burn bench embed` is given.

Texts: open_clip pads every prompt to 77 ids and its `encode_text` runs all 77 (PyTorch runs it so).
ONNX Runtime's CLIP users (fastembed-rs; transformers.js in the browser) pad a batch only to its
longest prompt, and so does clip-burn (it encodes the positions through the last end token):
ONNX Runtime runs `text-cut.onnx`, the tower for the prompts' ids without that padding (the
positional embedding and causal mask cut to that length, as Hugging Face's CLIPTextModel does).
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def inputs(out, model_name, tower, batch):
    """The batch as numpy arrays: pixels [B, 3, S, S] f32 or token ids [B, 77] int64."""
    import numpy as np

    ref = json.loads((out / "reference.json").read_text())
    if tower == "image":
        import open_clip
        from PIL import Image
        import torch

        size = ref["models"][model_name]["image_size"]
        tf = open_clip.image_transform(size, is_train=False)
        pix = torch.stack([tf(Image.open(p)) for p in ref["images"]]).numpy()
        return np.ascontiguousarray(np.stack([pix[i % len(pix)] for i in range(batch)]).astype(np.float32))
    ids = np.array(ref["models"][model_name]["input_ids"], dtype=np.int64)
    return np.ascontiguousarray(np.stack([ids[i % len(ids)] for i in range(batch)]))


def needed_positions(ids):
    """Positions through the last end token (the highest id) of any row: the batch's longest prompt."""
    import numpy as np

    return int(max(len(row) - np.argmax(row[::-1] == row.max()) for row in ids))


def cut_text(model):
    """open_clip `model`'s `encode_text` for T <= 77 ids: the positional embedding and the causal
    mask cut to T (as Hugging Face's CLIPTextModel does), for ids without the padding after the
    longest prompt. Exported, the traced attention reshapes to constant sizes: one export per T.
    (tests/browser/bench/export.py uses it too.)"""
    import open_clip
    import torch

    class CutText(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, ids):
            m, t = self.m, ids.shape[1]
            x = m.token_embedding(ids) + m.positional_embedding[:t]
            x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:t, :t]))
            return open_clip.transformer.text_global_pool(x, ids, m.text_pool_type) @ m.text_projection

    return CutText()


def load_torch(out, model_name):
    import open_clip
    from safetensors.torch import load_file

    model = open_clip.create_model(model_name)
    model.load_state_dict(load_file(str(out / f"{model_name}.safetensors")))
    return model.eval()


def export(out, model_name):
    import numpy as np
    import onnxruntime as ort
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = load_torch(out, model_name)

    class Tower(torch.nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.m, self.fn = model, fn

        def forward(self, x):
            return getattr(self.m, self.fn)(x)

    flops = {}
    parity = {}
    ref = json.loads((out / "reference.json").read_text())["models"][model_name]
    for tower, fn, name_in, name_out in [("image", "encode_image", "pixel_values", "image_features"),
                                         ("text", "encode_text", "input_ids", "text_features")]:
        x = torch.from_numpy(inputs(out, model_name, tower, 2))
        path = out / f"{model_name}.{tower}.onnx"
        # Traced with autograd on: under no_grad, nn.MultiheadAttention takes its fused fast path,
        # which has no ONNX export (as tests/browser/bench/export.py does).
        torch.onnx.export(Tower(fn), (x,), str(path), input_names=[name_in], output_names=[name_out],
                          dynamic_axes={name_in: {0: "batch"}, name_out: {0: "batch"}}, opset_version=17, dynamo=False)
        with torch.no_grad():
            counter = FlopCounterMode(display=False)
            with counter:
                getattr(model, fn)(x[:1])
            flops[tower] = counter.get_total_flops()
        # ONNX Runtime's features of every reference input against open_clip's.
        batch = inputs(out, model_name, tower, len(ref[name_out]))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {name_in: batch})[0]
        want = np.array(ref[name_out], dtype=np.float32)
        parity[tower] = float(np.abs(got - want).max())
        print(f"[engines.py] {model_name} {tower}: {path.name}, onnxruntime max abs diff to open_clip {parity[tower]:.2e}, "
              f"{flops[tower] / 1e9:.2f} GFLOP per input", flush=True)
    # The text tower for the prompts without padding (all reference prompts fit that length).
    cut_tower = cut_text(model)
    batch = inputs(out, model_name, "text", len(ref["text_features"]))
    cut = batch[:, : needed_positions(batch)]
    path = out / f"{model_name}.text-cut.onnx"
    torch.onnx.export(cut_tower, (torch.from_numpy(cut[:2]),), str(path), input_names=["input_ids"], output_names=["text_features"],
                      dynamic_axes={"input_ids": {0: "batch"}, "text_features": {0: "batch"}}, opset_version=17, dynamo=False)
    with torch.no_grad():
        # The text FLOPs are those of the work clip-burn and ONNX Runtime do: the cut prompt.
        counter = FlopCounterMode(display=False)
        with counter:
            cut_tower(torch.from_numpy(cut[:1]))
        flops["text"] = counter.get_total_flops()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input_ids": cut})[0]
    parity["text-cut"] = float(np.abs(got - np.array(ref["text_features"], dtype=np.float32)).max())
    print(f"[engines.py] {model_name} text without padding ({cut.shape[1]} positions): {path.name}, onnxruntime max abs diff "
          f"to open_clip {parity['text-cut']:.2e}", flush=True)
    (out / f"{model_name}.onnx_parity.json").write_text(json.dumps({"max_abs_diff": parity, "onnxruntime": ort.__version__}))
    (out / f"{model_name}.flops.json").write_text(json.dumps(flops))


def time_engine(args):
    out = args.out
    x = inputs(out, args.model, args.tower, args.batch)
    t0 = time.perf_counter()
    if args.engine == "torch":
        import torch

        torch.set_num_threads(args.threads)
        model = load_torch(out, args.model)
        fn = model.encode_image if args.tower == "image" else model.encode_text
        x_t = torch.from_numpy(x)

        def run():
            with torch.no_grad():
                fn(x_t)
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        tower = args.tower
        if tower == "text":
            # The batch padded to its longest prompt, as ONNX Runtime's CLIP users feed it.
            tower = "text-cut"
            x = x[:, : needed_positions(x)]
        session = ort.InferenceSession(str(out / f"{args.model}.{tower}.onnx"), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        if session.get_inputs()[0].shape[1:] != list(x.shape[1:]):
            sys.exit(f"{tower}.onnx takes {session.get_inputs()[0].shape}, this batch is {list(x.shape)}: export again")

        def run():
            session.run(None, {name: x})
    load_s = time.perf_counter() - t0

    def timed():
        t = time.perf_counter()
        run()
        return (time.perf_counter() - t) * 1e3

    warmup = [timed() for _ in range(args.warmup)]
    times = [timed() for _ in range(args.iters)]
    median = statistics.median(times)
    print(json.dumps({"engine": args.engine, "model": args.model, "tower": args.tower, "batch": args.batch,
                      "threads": args.threads, "load_s": load_s, "warmup_ms": warmup, "times_ms": times,
                      "median_ms": median, "items_per_s": args.batch * 1e3 / median}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("out", type=Path)
    e.add_argument("model")
    t = sub.add_parser("time")
    t.add_argument("out", type=Path)
    t.add_argument("model")
    t.add_argument("--engine", choices=["torch", "onnxruntime"], required=True)
    t.add_argument("--tower", choices=["image", "text"], required=True)
    t.add_argument("--batch", type=int, default=1)
    t.add_argument("--iters", type=int, default=10)
    t.add_argument("--warmup", type=int, default=1)
    t.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    if args.cmd == "export":
        export(args.out.resolve(), args.model)
    else:
        args.out = args.out.resolve()
        time_engine(args)


if __name__ == "__main__":
    sys.exit(main())
