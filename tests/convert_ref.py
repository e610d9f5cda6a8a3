"""Checkpoints as people download them, for tests/convert.test: random ResNets saved in the
layouts of SwAV, MoCo, DINO, timm and torchvision, each beside the truth (its backbone as
plain float32 safetensors, torchvision-named), which tests/embed_ref.py turns into the
reference embeddings.

  convert_ref.py make DIR      writes DIR/CASE.{pth.tar,pth,safetensors} and DIR/CASE.truth.st,
                               and DIR/cases.txt ("CASE FILE ARCH" lines)
"""
import json
import struct
import sys

import torch
import torchvision


def save_st(path, sd):
    header, blobs, off = {}, [], 0
    for name, t in sd.items():
        t = t.contiguous()
        dt = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64",
              torch.bfloat16: "BF16"}[t.dtype]
        b = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def model(arch, seed):
    """A random torchvision ResNet's state dict at a quarter of the width (every channel
    count divided by 4: small files, the same names and layout), with BN statistics that
    are not the identity, so that a lost or misplaced one shows."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in getattr(torchvision.models, arch)().state_dict().items():
        if k == "conv1.weight":
            v = v[:v.shape[0] // 4]
        elif k == "fc.weight":
            v = v[:, :v.shape[1] // 4]
        elif v.dim() == 4:
            v = v[:v.shape[0] // 4, :v.shape[1] // 4]
        elif v.dim() == 1 and not k.startswith("fc."):
            v = v[:v.shape[0] // 4]
        if k.endswith("running_mean") or k.endswith("bn1.bias") or k.endswith(".bias"):
            v = torch.randn(v.shape, generator=g) * 0.1
        elif k.endswith("running_var") or (v.dim() == 1 and k.endswith(".weight")):
            v = torch.rand(v.shape, generator=g) + 0.5
        sd[k] = v.clone()
    return sd


def backbone(sd):
    return {k: v for k, v in sd.items() if not k.startswith("fc.")}


def truth(sd):
    """What cull should load: the backbone in float32 (a half-precision checkpoint's values,
    exactly, as float32 holds every float16 and bfloat16)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in backbone(sd).items()}


def make(d):
    cases = []
    head = {"projection_head.0.weight": torch.randn(64, 128), "projection_head.0.bias": torch.randn(64),
            "projection_head.1.weight": torch.rand(64), "projection_head.1.bias": torch.randn(64),
            "projection_head.1.running_mean": torch.zeros(64),
            "projection_head.1.running_var": torch.ones(64),
            "projection_head.1.num_batches_tracked": torch.tensor(0),
            "projection_head.3.weight": torch.randn(16, 64), "projection_head.3.bias": torch.randn(16),
            "prototypes.weight": torch.randn(30, 16)}

    sd = model("resnet18", 1)       # SwAV: module., a head and prototypes
    torch.save({"epoch": 100, "state_dict": {"module." + k: v for k, v in
                                             list(backbone(sd).items()) + list(head.items())}},
               "%s/swav.pth.tar" % d)
    save_st("%s/swav.truth.st" % d, truth(sd))
    cases.append(("swav", "swav.pth.tar", "resnet18"))

    sd = model("resnet18", 2)       # MoCo v2: encoder_q and encoder_k, MLP fc, queue
    q = {"module.encoder_q." + k: v for k, v in backbone(sd).items()}
    q.update({"module.encoder_q.fc.0.weight": torch.randn(128, 128),
              "module.encoder_q.fc.0.bias": torch.randn(128),
              "module.encoder_q.fc.2.weight": torch.randn(128, 128),
              "module.encoder_q.fc.2.bias": torch.randn(128)})
    q.update({"module.encoder_k." + k: v + 1 for k, v in backbone(sd).items()
              if v.is_floating_point()})
    q.update({"module.queue": torch.randn(128, 64), "module.queue_ptr": torch.zeros(1, dtype=torch.long)})
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": q}, "%s/moco.pth.tar" % d)
    save_st("%s/moco.truth.st" % d, truth(sd))
    cases.append(("moco", "moco.pth.tar", "resnet18"))

    sd = model("resnet50", 3)       # DINO: a bare ResNet-50 backbone, no fc
    torch.save(backbone(sd), "%s/dino.pth" % d)
    save_st("%s/dino.truth.st" % d, truth(sd))
    cases.append(("dino", "dino.pth", "resnet50"))

    sd = model("resnet18", 4)       # half precision, a nested state dict
    half = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    torch.save({"model": {"state_dict": half}, "optimizer": {}}, "%s/fp16.pth" % d)
    save_st("%s/fp16.truth.st" % d, truth(half))
    cases.append(("fp16", "fp16.pth", "resnet18"))

    sd = model("resnet18", 5)       # bfloat16 safetensors with fc (timm's names)
    bf = {k: v.bfloat16() if v.is_floating_point() else v for k, v in sd.items()}
    save_st("%s/timm.safetensors" % d, bf)
    save_st("%s/timm.truth.st" % d, truth(bf))
    cases.append(("timm", "timm.safetensors", "resnet18"))

    sd = model("resnet18", 6)       # torchvision's own, with fc
    torch.save(sd, "%s/tv.pth" % d)
    save_st("%s/tv.truth.st" % d, truth(sd))
    cases.append(("tv", "tv.pth", "resnet18"))

    with open("%s/cases.txt" % d, "w") as f:
        for c in cases:
            f.write("%s %s %s\n" % c)


if __name__ == "__main__":
    if sys.argv[1:2] == ["make"]:
        make(sys.argv[2])
    else:
        sys.exit(__doc__)
