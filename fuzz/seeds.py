#!/usr/bin/env python3
"""Seed inputs for the fuzz targets (fuzz/fuzz_targets/), written into fuzz/seeds/TARGET/.

Small valid files of every format each parser takes, made with the standard library only (no
PyTorch, no Pillow): a tiny open_clip state dict as safetensors and as `torch.save` zips (plain
and nested under "state_dict", laid out as PyTorch's writer does), PNGs of each colour type, the
fixtures' small JPEGs and WebP, tokenizer corpus texts, model configs, tar shards, tables and shard
patterns. A burnpack seed comes from the CLI: `clip-burn convert` of the safetensors seed (pass
the binary as the first argument). scripts/fuzz.sh runs this, fuzzes from these seeds and keeps
the minimised result in fuzz/corpus/.
"""

import collections
import io
import json
import pickle
import struct
import subprocess
import sys
import tarfile
import types
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OUT = Path(__file__).resolve().parent / "seeds"

# clip_model::fuzz's tiny_config: every state-dict seed fits it.
TINY = {
    "embed_dim": 2,
    "vision_cfg": {"image_size": 4, "layers": 1, "width": 4, "head_width": 4, "patch_size": 4},
    "text_cfg": {"context_length": 2, "vocab_size": 4, "width": 4, "heads": 1, "layers": 1},
}


def tiny_state_dict():
    """(name, shape) of an open_clip ViT state dict of TINY, in open_clip's order."""
    v, t, e = TINY["vision_cfg"], TINY["text_cfg"], TINY["embed_dim"]
    w, p, g = v["width"], v["patch_size"], v["image_size"] // v["patch_size"]

    def blocks(prefix, width):
        out = []
        for i in range(1 if prefix == "visual." else t["layers"]):
            b = f"{prefix}transformer.resblocks.{i}."
            out += [
                (b + "ln_1.weight", [width]), (b + "ln_1.bias", [width]),
                (b + "attn.in_proj_weight", [3 * width, width]), (b + "attn.in_proj_bias", [3 * width]),
                (b + "attn.out_proj.weight", [width, width]), (b + "attn.out_proj.bias", [width]),
                (b + "ln_2.weight", [width]), (b + "ln_2.bias", [width]),
                (b + "mlp.c_fc.weight", [4 * width, width]), (b + "mlp.c_fc.bias", [4 * width]),
                (b + "mlp.c_proj.weight", [width, 4 * width]), (b + "mlp.c_proj.bias", [width]),
            ]
        return out

    tw = t["width"]
    return (
        [("logit_scale", []), ("positional_embedding", [t["context_length"], tw]), ("text_projection", [tw, e])]
        + [("visual.class_embedding", [w]), ("visual.positional_embedding", [g * g + 1, w]), ("visual.proj", [w, e])]
        + [("visual.conv1.weight", [w, 3, p, p])]
        + [("visual.ln_pre.weight", [w]), ("visual.ln_pre.bias", [w])]
        + blocks("visual.", w)
        + [("visual.ln_post.weight", [w]), ("visual.ln_post.bias", [w])]
        + blocks("", tw)
        + [("token_embedding.weight", [t["vocab_size"], tw])]
        + [("ln_final.weight", [tw]), ("ln_final.bias", [tw])]
    )


def values(name, shape):
    n = 1
    for d in shape:
        n *= d
    seed = zlib.crc32(name.encode())
    return [((seed + 7919 * i) % 1000) / 5000.0 - 0.1 for i in range(n)]


def safetensors(tensors, dtype="F32"):
    code = {"F32": "f", "F16": "e"}[dtype]
    header, data = {}, b""
    for name, shape in tensors:
        vals = values(name, shape) if shape else [3.4]
        raw = struct.pack(f"<{len(vals)}{code}", *vals)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def torch_zip(archive, records):
    """PyTorch's zip layout (see shared-model/tests/torch_zip.rs): 64-byte aligned data, FB padding."""
    out, central = bytearray(), bytearray()
    for name, data in records:
        name = f"{archive}/{name}".encode()
        offset = len(out)
        padding = (64 - (offset + 30 + len(name) + 4) % 64) % 64
        crc = zlib.crc32(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, 0x0808, 0, 0, 0, 0, 0, 0, len(name), 4 + padding)
        out += name + b"FB" + struct.pack("<H", padding) + b"Z" * padding + data
        out += struct.pack("<IIII", 0x08074B50, crc, len(data), len(data))
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, 0x0808, 0, 0, 0, crc, len(data), len(data), len(name), 0, 0, 0, 0, 0, offset) + name
    cd_offset, n = len(out), len(records)
    out += central
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x002D, 0, 0, n, n, len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset, 0)
    return bytes(out)


def torch_save(archive, tensors, nest=False):
    """`torch.save(state_dict)` (or `{"state_dict": ..., "epoch": 3}`) pickled as PyTorch does:
    each tensor a `torch._utils._rebuild_tensor_v2` call over a persistent storage reference."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: only pickled")

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    utils._rebuild_tensor_v2, torch.FloatStorage, torch._utils = _rebuild_tensor_v2, FloatStorage, utils
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})

    class Storage:
        def __init__(self, key, numel):
            self.key, self.numel = key, numel

    class Tensor:
        def __init__(self, storage, shape):
            self.storage, self.shape = storage, shape

        def __reduce__(self):
            stride, acc = [], 1
            for d in reversed(self.shape):
                stride.insert(0, acc)
                acc *= d
            return (_rebuild_tensor_v2, (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", FloatStorage, obj.key, "cpu", obj.numel)
            return None

    try:
        state, records = collections.OrderedDict(), []
        for i, (name, shape) in enumerate(tensors):
            vals = values(name, shape) if shape else [3.4]
            records.append((f"data/{i}", struct.pack(f"<{len(vals)}f", *vals)))
            state[name] = Tensor(Storage(str(i), len(vals)), shape)
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump({"state_dict": state, "epoch": 3} if nest else state)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return torch_zip(archive, [("data.pkl", buf.getvalue()), (".format_version", b"1"), ("byteorder", b"little")] + records + [("version", b"3\n")])


def png(width, height, colour, depth, rows, palette=None):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    if palette:
        body += chunk(b"PLTE", palette)
    raw = b"".join(b"\x00" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write(target, name, data):
    path = OUT / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def main():
    tensors = tiny_state_dict()
    write("weights", "tiny.safetensors", safetensors(tensors))
    write("weights", "tiny_f16.safetensors", safetensors(tensors, "F16"))
    write("weights", "partial.safetensors", safetensors(tensors[:3]))
    if len(sys.argv) > 1:
        config = OUT / "tiny.json"
        config.write_text(json.dumps(TINY))
        bpk = OUT / "weights" / "tiny.bpk"
        subprocess.run([sys.argv[1], "--device", "cpu", "convert", "--model", str(config), "--weights", str(OUT / "weights" / "tiny.safetensors"), "--out", str(bpk), "--dtype", "f16"], check=True)
        config.unlink()
    write("pytorch", "tiny.pt", torch_save("tiny", tensors))
    write("pytorch", "checkpoint_nested.pt", torch_save("a_21_character_name_x", tensors, nest=True))

    grey = [bytes((x * 40 + y * 9) % 256 for x in range(5)) for y in range(3)]
    rgb = [bytes((x * 50 + y * 30 + c * 70) % 256 for x in range(4) for c in range(3)) for y in range(3)]
    rgba = [bytes((x * 50 + c * 60) % 256 for x in range(3) for c in range(4)) for y in range(2)]
    write("image", "grey.png", png(5, 3, 0, 8, grey))
    write("image", "rgb.png", png(4, 3, 2, 8, rgb))
    write("image", "rgba.png", png(3, 2, 6, 8, rgba))
    write("image", "rgb16.png", png(2, 2, 2, 16, [bytes(range(12)), bytes(range(12, 24))]))
    write("image", "palette.png", png(4, 2, 3, 8, [b"\x00\x01\x02\x01", b"\x02\x02\x00\x01"], palette=b"\xff\x00\x00\x00\xff\x00\x00\x00\xff"))
    write("image", "tall.png", png(1, 300, 0, 8, [b"\x80"] * 300))
    write("image", "bits.png", png(16, 2, 0, 1, [b"\xaa\x55", b"\x0f\xf0"]))
    for jpeg in sorted((FIXTURES / "images" / "jpeg").glob("*.jpg")):
        if jpeg.stat().st_size < 4096:
            write("image", jpeg.name, jpeg.read_bytes())
    write("image", "chelsea_q80.webp", (FIXTURES / "images" / "chelsea_q80.webp").read_bytes())

    corpus = json.loads((FIXTURES / "tokenizer_corpus.json").read_text())
    for i, case in enumerate(corpus[:60]):
        write("text", f"{i:03}.txt", case["text"])

    for cfg in sorted((FIXTURES / "open_clip_configs").glob("*.json"))[:8]:
        write("config", cfg.name, cfg.read_bytes())
    for name in ("vit_quickgelu.json", "vit_gelu.json", "rn.json", "vit_quickgelu_hf_config.json"):
        write("config", name, (FIXTURES / name).read_bytes())
    write("config", "tiny.json", json.dumps(TINY))

    picture = png(4, 3, 2, 8, rgb)
    write("shard", "two.tar", tar([("a/0.png", picture), ("a/0.txt", b"a red square"), ("a/1.png", picture), ("a/1.json", b'{"caption": "a blue circle"}')]))
    write("shard", "no_caption.tar", tar([("0.jpg", picture), ("0.cls", b"3"), ("1.webp", b"RIFF"), ("1.txt", b"x")]))
    write("shard", "truncated.tar", tar([("0.png", picture), ("0.txt", b"caption")])[:700])

    write("table", "plain.tsv", "filepath\ttitle\nimages/0.png\ta red square\nimages/1.png\ta blue circle\n")
    write("table", "quoted.tsv", 'filepath\ttitle\tx\n"a\tb.png"\t"a ""quoted"" caption"\t1\nc.png\tplain\t2\r\n')
    write("table", "columns.tsv", "title\tfilepath\nfirst\tx.png\n\nsecond\ty.png\nshort\n")

    for i, pattern in enumerate(["shards/train-{0000..0099}.tar", "a-{1..3}::b-{x,y}.tar", "{a,b}/{0..9}/{00..19}.tar", "plain.tar", "x{1..}"]):
        write("pattern", f"{i}.txt", pattern)


if __name__ == "__main__":
    main()
