#!/usr/bin/python3
# PyTorch oracle for nn/: writes random-weight ResNets and reference tensors as safetensors.
#
#   torch_ref.py make DIR [--slow] [CASE...]
#                                     write DIR/CASE.model.safetensors (the state dict),
#                                     DIR/CASE.ref.safetensors (inputs, eval outputs, one
#                                     training step's loss, grads, BN stats, 5-step losses)
#                                     and DIR/cases.txt ("CASE ARCH" lines)
#   torch_ref.py check DIR CASE FILE  load cull's checkpoint FILE into torch with
#                                     load_state_dict(strict=True) and compare eval outputs
# safetensors is written and read by hand (8-byte little-endian header length, JSON, data).
import copy
import json
import time
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock

torch.set_num_threads(2)

# name: arch, in_ch, classes, eval batch, eval px, train batch, train px, smoothing, nesterov,
# slow (the training part runs only with --slow: float64 torch on these takes minutes)
CASES = {
    "resnet20": ("resnet20", 3, 10, 4, 32, 8, 32, 0.0, 1, 0),
    "resnet20-gray": ("resnet20", 1, 7, 2, 28, 4, 28, 0.1, 0, 0),
    "resnet18-cifar": ("resnet18-cifar", 3, 10, 4, 32, 4, 16, 0.0, 0, 1),
    "resnet18": ("resnet18", 3, 1000, 2, 224, 4, 32, 0.0, 0, 1),
    "resnet50": ("resnet50", 3, 1000, 2, 224, 2, 64, 0.0, 1, 1),
}
LR, MOMENTUM, WD, STEPS = 0.01, 0.9, 5e-4, 5
KINK_MARGIN = 3e-6

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
NP = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "F64": np.float64}


def save_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load_st(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base, out = 8 + n, {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[base + a:base + b], dtype=NP[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


class CifarResNet(nn.Module):
    """The classic CIFAR ResNet-6n+2 (He et al. 2016) with 1x1 projection shortcuts."""

    def __init__(self, n, in_ch=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        cin = 16
        for s, planes in enumerate((16, 32, 64)):
            blocks = []
            for b in range(n):
                stride = 2 if b == 0 and s > 0 else 1
                down = None
                if stride != 1 or cin != planes:
                    down = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                         nn.BatchNorm2d(planes))
                blocks.append(BasicBlock(cin, planes, stride, down))
                cin = planes
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(arch, in_ch, classes):
    if arch.startswith("resnet") and arch[6:].isdigit() and int(arch[6:]) in (20, 32, 56):
        return CifarResNet((int(arch[6:]) - 2) // 6, in_ch, classes)
    m = getattr(torchvision.models, arch.replace("-cifar", ""))(num_classes=classes)
    if in_ch != 3 or arch.endswith("-cifar"):
        k, s, p = (3, 1, 1) if arch.endswith("-cifar") else (7, 2, 3)
        m.conv1 = nn.Conv2d(in_ch, 64, k, s, p, bias=False)
        nn.init.kaiming_normal_(m.conv1.weight, mode="fan_out", nonlinearity="relu")
    if arch.endswith("-cifar"):
        m.maxpool = nn.Identity()
    return m


def randomize_bn(model, g):
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.weight.data = torch.rand(c, generator=g) + 0.5
            mod.bias.data = torch.randn(c, generator=g) * 0.1
            mod.running_mean.data = torch.randn(c, generator=g) * 0.1
            mod.running_var.data = torch.rand(c, generator=g) + 0.5
            mod.num_batches_tracked.fill_(3)


def features_hook(model):
    store = {}
    model.avgpool.register_forward_hook(lambda m, i, o: store.__setitem__("f", torch.flatten(o, 1)))
    return store


def train(model, xs, ys, smooth, nesterov):
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD,
                          nesterov=bool(nesterov))
    lossf = nn.CrossEntropyLoss(label_smoothing=smooth)
    ref, losses = {}, []
    # How close the run comes to a ReLU kink: the smallest |input| / std over every ReLU.
    margin = [float("inf")]

    def near_kink(mod, inp):        # on the first step, whose gradients are compared
        if not losses:
            v = inp[0].detach()
            margin[0] = min(margin[0], (v.abs().min() / v.std()).item())
    hooks = [mod.register_forward_pre_hook(near_kink) for mod in model.modules()
             if isinstance(mod, nn.ReLU)]
    for step in range(STEPS):
        opt.zero_grad()
        out = model(xs[step])
        loss = lossf(out, ys[step])
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            ref["train.out"] = out.detach()
            for k, p in model.named_parameters():
                ref["grad." + k] = p.grad.clone()
            for k, b in model.named_buffers():
                if b.dtype != torch.int64:
                    ref["stat." + k] = b.clone()
        opt.step()
        if step == 0:
            for k, p in model.named_parameters():
                ref["step1." + k] = p.detach().clone()
    ref["train.losses"] = torch.tensor(losses, dtype=torch.float64)
    for h in hooks:
        h.remove()
    return ref, margin[0]


def make(outdir, names, slow):
    with open("%s/cases.txt" % outdir, "w") as f:
        for name in names:
            f.write("%s %s\n" % (name, CASES[name][0]))
    for i, name in enumerate(names):
        arch, in_ch, classes, en, epx, tn, tpx, smooth, nesterov, is_slow = CASES[name]
        t0 = time.time()
        torch.manual_seed(1000 + i)
        g = torch.Generator().manual_seed(2000 + i)
        model = build(arch, in_ch, classes)
        randomize_bn(model, g)
        small = arch.startswith("resnet20")
        save_st("%s/%s.model.safetensors" % (outdir, name), model.state_dict())
        feats = features_hook(model)
        ref = {}
        ref["cfg"] = torch.tensor([in_ch, classes, en, epx, tn, tpx, nesterov], dtype=torch.int64)
        ref["hyper"] = torch.tensor([LR, MOMENTUM, WD, smooth], dtype=torch.float32)
        model.eval()
        x = torch.randn(en, in_ch, epx, epx, generator=g)
        with torch.no_grad():
            ref["eval.x"] = x
            ref["eval.out"] = model(x)
            ref["eval.feat"] = feats["f"]
        if is_slow and not slow:
            save_st("%s/%s.ref.safetensors" % (outdir, name), ref)
            continue
        # Training is compared with torch in float64 (the truth), next to torch's own float32
        # error against it: deep ResNets in training mode are ill-conditioned in float32
        # (batch statistics over few values), so torch float32 can be far from float64 there.
        # A ReLU input within float32 rounding of zero flips its mask in any float32 run
        # (cull's or torch's, by luck) and moves the gradients by percents: that tests the
        # luck, not the code. For the slow cases (tiny feature maps, batch statistics over
        # a few values) draw the training data again until the float64 run's first step
        # keeps a margin from every kink (the minimum of n Gaussian draws is ~1.25/n std).
        for attempt in range(10 if is_slow else 1):
            xs = torch.randn(STEPS, tn, in_ch, tpx, tpx, generator=g)
            ys = torch.randint(0, classes, (STEPS, tn), generator=g)
            m = copy.deepcopy(model).to(torch.float64).train()
            r64, margin = train(m, xs.to(torch.float64), ys, smooth, nesterov)
            if margin >= KINK_MARGIN:
                break
        print("%s: closest ReLU input to 0: %.1e std (after %d draw%s)" %
              (name, margin, attempt + 1, "s" if attempt else ""), file=sys.stderr)
        ref["train.x"], ref["train.y"] = xs, ys
        m = copy.deepcopy(model).to(torch.float32).train()
        r32, _ = train(m, xs, ys, smooth, nesterov)
        for key, val in r64.items():
            ref[key] = val.float()
        def err(a, b):
            return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()
        grad_err = max(err(r32[k], r64[k]) for k in r64 if k.startswith("grad."))
        loss_err = max(abs(a - b) / abs(b) for a, b in zip(r32["train.losses"].tolist(),
                                                           r64["train.losses"].tolist()))
        ref["torch32.err"] = torch.tensor([err(r32["train.out"], r64["train.out"]), grad_err,
                                           loss_err], dtype=torch.float32)
        if not small:
            for k in [k for k in ref if k.startswith("step1.")]:
                del ref[k]
        save_st("%s/%s.ref.safetensors" % (outdir, name), ref)
        print("%s: torch float32 vs float64 in training: output %.1e, worst grad %.1e, "
              "5-step losses %.1e (%.1fs)" % (name, *ref["torch32.err"].tolist(),
                                              time.time() - t0), file=sys.stderr)


def check(outdir, name, path):
    """cull's checkpoint loads in torch strictly and gives the same eval output."""
    arch, in_ch, classes = CASES[name][:3]
    model = build(arch, in_ch, classes)
    sd = load_st(path)
    model.load_state_dict(sd, strict=True)
    model.eval()
    ref = load_st("%s/%s.ref.safetensors" % (outdir, name))
    with torch.no_grad():
        out = model(ref["eval.x"])
    err = (out - ref["eval.out"]).abs().max().item() / ref["eval.out"].abs().max().item()
    print("%s torch loads cull's checkpoint (strict), eval max err %.2e" %
          ("ok" if err < 1e-5 else "not ok", err))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        args = [a for a in sys.argv[3:] if a != "--slow"]
        make(sys.argv[2], args or list(CASES), "--slow" in sys.argv)
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: torch_ref.py make DIR [--slow] [CASE...] | check DIR CASE FILE")
