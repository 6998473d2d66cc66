#!/usr/bin/env python3
"""The reference side of tests/bench/load.sh: what `clip-burn embed --model ViT-B-32 --weights W
--text T` does, in open_clip: build the model from the safetensors file, embed one text, print the
features as JSON. The script times the whole process, as it does clip-burn's."""
import json
import sys

import open_clip
import torch

weights, text = sys.argv[1], sys.argv[2]
model = open_clip.create_model("ViT-B-32", pretrained=weights).eval()
tokenizer = open_clip.get_tokenizer("ViT-B-32")
with torch.no_grad():
    features = model.encode_text(tokenizer([text]))
print(json.dumps({"text_features": features.tolist()}))
