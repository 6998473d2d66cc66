#!/usr/bin/env python3
"""Browser benchmark inputs: a random-init open_clip ViT-B-32 (seeded), its weights as
safetensors, its image and text towers exported to ONNX with torch (what onnxruntime-web /
transformers.js run), one preprocessed photo, one tokenized prompt and open_clip's features for them.
The text tower is exported twice: for 77 ids (open_clip's `encode_text`, what a plain export runs)
and for the prompt's ids without the padding after its end token (what transformers.js feeds
Hugging Face's CLIPTextModel: ids padded only to the longest text of a batch).

    tests/.venv/bin/python tests/browser/bench/export.py OUT_DIR
"""
import json
import sys
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fullsize"))
from engines import cut_text  # noqa: E402  (the text tower without the padding, shared with the CPU race)

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(7)
model = open_clip.create_model("ViT-B-32").eval()
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "vitb32.safetensors")

import skimage.data

preprocess = open_clip.image_transform(224, is_train=False)
pixels = preprocess(Image.fromarray(skimage.data.chelsea())).unsqueeze(0)
ids = open_clip.get_tokenizer("ViT-B-32")(["a photo of a cat."])
with torch.no_grad():
    features = model.encode_image(pixels)
    text_features = model.encode_text(ids)


class Tower(torch.nn.Module):
    """One of the model's towers (`encode_image` or `encode_text`) as a module to export."""

    def __init__(self, m, encode):
        super().__init__()
        self.m = m
        self.encode = encode

    def forward(self, x):
        return getattr(self.m, self.encode)(x)


cut = ids[:, : int(ids.argmax(dim=1).max()) + 1]
with torch.no_grad():
    assert torch.allclose(cut_text(model)(cut), text_features, atol=1e-5)
torch.onnx.export(Tower(model, "encode_image"), (pixels,), str(out / "vitb32_visual.onnx"), input_names=["pixel_values"],
                  output_names=["image_features"], opset_version=17, dynamo=False)
torch.onnx.export(Tower(model, "encode_text"), (ids,), str(out / "vitb32_text.onnx"), input_names=["input_ids"],
                  output_names=["text_features"], opset_version=17, dynamo=False)
torch.onnx.export(cut_text(model), (cut,), str(out / "vitb32_text_cut.onnx"), input_names=["input_ids"],
                  output_names=["text_features"], opset_version=17, dynamo=False)
ids.numpy().astype("<i8").tofile(out / "ids.i64")
text_features.numpy().astype("<f4").tofile(out / "text_features.f32")
pixels.numpy().astype("<f4").tofile(out / "pixels.f32")
features.numpy().astype("<f4").tofile(out / "features.f32")
json.dump({"model": "ViT-B-32", "torch": torch.__version__, "open_clip": open_clip.__version__},
          open(out / "meta.json", "w"))
print("wrote", *sorted(p.name for p in out.iterdir()))
