"""open_clip's training step, for the same model and batch as a `clip-burn bench train` run.

Synthetic tensors (no data loading), AdamW with the betas/eps clip-burn uses for the tower type,
open_clip's ClipLoss. On CUDA, TF32 matmuls are allowed as open_clip's training script does, and
`--precision amp_bf16` autocasts to bf16. Prints one JSON line: {"samples_per_s": ..., ...}.
"""
import argparse, json, os, time

import torch
import open_clip
from open_clip.loss import ClipLoss

p = argparse.ArgumentParser()
p.add_argument("--config", help="an open_clip model-config JSON")
p.add_argument("--model", help="an open_clip model name (instead of --config)")
p.add_argument("--device", default="cpu")
p.add_argument("--precision", default="fp32", choices=["fp32", "amp_bf16", "amp"])
p.add_argument("--grad-checkpointing", action="store_true")
p.add_argument("--batch-size", type=int, default=64)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup-steps", type=int, default=3)
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--profile", metavar="TSV", help="after the timed steps, 2 more under torch.profiler: their kernels' device "
               "time (CUDA; CPU ops' time on the CPU) summed by name into TSV, most time first")
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
if args.config:
    open_clip.add_model_config(args.config)
    name = os.path.splitext(os.path.basename(args.config))[0]
    cfg = json.load(open(args.config))
else:
    name = args.model
    cfg = open_clip.get_model_config(name)
device = torch.device(args.device)
model = open_clip.create_model(name, pretrained=None).to(device)
resnet = isinstance(cfg["vision_cfg"]["layers"], list)
betas, eps = ((0.9, 0.999), 1e-8) if resnet else ((0.9, 0.98), 1e-6)
exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
decay = [p for n, p in model.named_parameters() if not exclude(n, p)]
rest = [p for n, p in model.named_parameters() if exclude(n, p)]
opt = torch.optim.AdamW([{"params": rest, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.1}], lr=1e-3, betas=betas, eps=eps)
loss_fn = ClipLoss()
size = cfg["vision_cfg"]["image_size"]
ctx = cfg["text_cfg"]["context_length"]
images = torch.randn(args.batch_size, 3, size, size, device=device)
texts = torch.randint(1, 49000, (args.batch_size, ctx), device=device)
texts[:, 0] = 49406
texts[:, 12] = 49407
texts[:, 13:] = 0
model.train()
if args.grad_checkpointing:
    model.set_grad_checkpointing(True)
scaler = torch.amp.GradScaler(device.type) if args.precision == "amp" else None
autocast_dtype = torch.float16 if args.precision == "amp" else torch.bfloat16

def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=args.precision != "fp32"):
        img, txt, scale = model(images, texts)
        loss = loss_fn(img, txt, scale)
    if scaler:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, 4.6052)

sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
for _ in range(args.warmup_steps):
    step()
sync()
if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
for _ in range(args.steps):
    step()
sync()
elapsed = time.perf_counter() - start
peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
# What the caching allocator held at most: the figure comparable to clip-burn's (its pool's reserved bytes).
reserved = torch.cuda.max_memory_reserved() if device.type == "cuda" else None
print(json.dumps({"samples_per_s": args.batch_size * args.steps / elapsed, "step_s": elapsed / args.steps, "peak_memory_bytes": peak,
                  "peak_reserved_bytes": reserved,
                  "precision": args.precision, "grad_checkpointing": args.grad_checkpointing, "torch": torch.__version__, "open_clip": open_clip.__version__}), flush=True)
if args.profile:
    # The reference's own breakdown, to set beside cubecl's profile of clip-burn's step (after the
    # figures above are out: a profiler failure must not cost the run its result).
    from torch.profiler import ProfilerActivity, profile
    activity = ProfilerActivity.CUDA if device.type == "cuda" else ProfilerActivity.CPU
    with profile(activities=[activity]) as prof:
        for _ in range(2):
            step()
        sync()
    rows = []
    for e in prof.key_averages():
        us = getattr(e, "self_device_time_total", 0) if device.type == "cuda" else e.self_cpu_time_total
        if us > 0:
            rows.append((us, e.count, e.key))
    with open(args.profile, "w") as f:
        f.write("seconds\tlaunches\tkernel\n")
        for us, count, key in sorted(rows, reverse=True):
            f.write(f"{us / 1e6:.6f}\t{count}\t{' '.join(key.split())}\n")
