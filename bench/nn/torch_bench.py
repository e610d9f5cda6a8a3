#!/usr/bin/python3
# PyTorch side of bench/nn/run: images per second of a ResNet training step or eval forward.
# Usage: torch_bench.py ARCH train|eval|train-bf16|eval-bf16 BATCH PX ITERS THREADS CLASSES
# (*-bf16: CPU autocast to bfloat16, torch's counterpart of bench_nn --bf16)
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests"))
from torch_ref import build  # noqa: E402

arch, mode, batch, px, iters, threads, classes = sys.argv[1:8]
batch, px, iters, threads, classes = int(batch), int(px), int(iters), int(threads), int(classes)
torch.set_num_threads(threads)
torch.manual_seed(0)
model = build(arch, 3, classes)
x = torch.randn(batch, 3, px, px)
y = torch.randint(0, classes, (batch,))
if mode in ("train", "train-bf16"):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    lossf = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "train-bf16"):
            loss = lossf(model(x), y)
        loss.backward()
        opt.step()
elif mode == "eval-bf16":
    model.eval()

    def step():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)
else:
    model.eval()

    def step():
        with torch.no_grad():
            model(x)
total, best = 0.0, 1e30
for it in range(iters + 1):
    t0 = time.perf_counter()
    step()
    dt = time.perf_counter() - t0
    if it > 0:
        total += dt
        best = min(best, dt)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("img_per_s %.2f best_img_per_s %.2f peak_rss_mib %.0f threads %d" %
      (batch * iters / total, batch / best, rss, torch.get_num_threads()))
