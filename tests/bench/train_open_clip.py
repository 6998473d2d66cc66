"""open_clip's training step on the CPU, for the same model config and batch as a clip-burn run.

Synthetic tensors (no data loading), AdamW with the betas/eps clip-burn uses for the tower type,
open_clip's ClipLoss, fp32. Prints one JSON line: {"samples_per_s": ..., "step_s": ...}.
"""
import argparse, json, os, time

import torch
import open_clip
from open_clip.loss import ClipLoss

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--batch-size", type=int, default=64)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup-steps", type=int, default=3)
p.add_argument("--threads", type=int, default=os.cpu_count())
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
open_clip.add_model_config(args.config)
name = os.path.splitext(os.path.basename(args.config))[0]
model = open_clip.create_model(name, pretrained=None)
cfg = json.load(open(args.config))
resnet = isinstance(cfg["vision_cfg"]["layers"], list)
betas, eps = ((0.9, 0.999), 1e-8) if resnet else ((0.9, 0.98), 1e-6)
exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
decay = [p for n, p in model.named_parameters() if not exclude(n, p)]
rest = [p for n, p in model.named_parameters() if exclude(n, p)]
opt = torch.optim.AdamW([{"params": rest, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.1}], lr=1e-3, betas=betas, eps=eps)
loss_fn = ClipLoss()
size = cfg["vision_cfg"]["image_size"]
ctx = cfg["text_cfg"]["context_length"]
images = torch.randn(args.batch_size, 3, size, size)
texts = torch.randint(1, 49000, (args.batch_size, ctx))
texts[:, 0] = 49406
texts[:, 12] = 49407
texts[:, 13:] = 0
model.train()

def step():
    opt.zero_grad(set_to_none=True)
    img, txt, scale = model(images, texts)
    loss = loss_fn(img, txt, scale)
    loss.backward()
    opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, 4.6052)

for _ in range(args.warmup_steps):
    step()
start = time.perf_counter()
for _ in range(args.steps):
    step()
elapsed = time.perf_counter() - start
print(json.dumps({"samples_per_s": args.batch_size * args.steps / elapsed, "step_s": elapsed / args.steps, "torch": torch.__version__, "open_clip": open_clip.__version__}))
