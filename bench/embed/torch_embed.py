"""The PyTorch peer of bench/embed/run: read a shard, decode with PIL, torchvision eval
transforms, torchvision ResNet with fc removed, no_grad, batches; prints images/s."""
import io
import sys
import tarfile
import time

import torch
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, sys.argv[0].rsplit("/", 3)[0] + "/tests")
from embed_ref import load_safetensors, torch_model  # noqa: E402

model, arch, shard, threads, resize, crop, batch = sys.argv[1:8]
torch.set_num_threads(int(threads))
m = torch_model(arch, load_safetensors(model))
tf = [T.Resize(int(resize))] if int(resize) else []
tf += [T.CenterCrop(int(crop))] if int(crop) else []
tf = T.Compose(tf + [T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
t0 = time.time()
n, xs, fwd = 0, [], 0.0


def run(xs):
    global fwd
    t = time.time()
    with torch.no_grad():
        e = m(torch.stack(xs))
        e = torch.nn.functional.normalize(e, dim=1)
    fwd += time.time() - t
    return e.numpy().astype("<f4").tobytes()


with tarfile.open(shard) as t:
    for mem in t:
        if not mem.name.endswith(".jpg"):
            continue
        xs.append(tf(Image.open(io.BytesIO(t.extractfile(mem).read())).convert("RGB")))
        n += 1
        if len(xs) == int(batch):
            run(xs)
            xs = []
if xs:
    run(xs)
el = time.time() - t0
print("%d %.3f %.3f" % (n, el, fwd))
