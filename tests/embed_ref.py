"""PyTorch oracle for tests/embed.test: makes small image shards and computes reference
embeddings the way a PyTorch user would (PIL decode, torchvision transforms, torchvision
ResNet in eval mode with fc removed).

  embed_ref.py shard OUT.tar SEED          images of several sizes and kinds, with .cls
  embed_ref.py ref MODEL ARCH RESIZE CROP SHARD OUT.npy
  embed_ref.py compare REF.npy RECORDS     checks cull-embed's records against REF
"""
import io
import json
import struct
import sys
import tarfile

import numpy as np


def make_shard(out, seed):
    from PIL import Image
    rng = np.random.default_rng(int(seed))
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        sizes = [(32, 32), (48, 40), (40, 64), (97, 71), (32, 32), (50, 50), (33, 45), (64, 48)]
        for i, (w, h) in enumerate(sizes):
            # smooth images compress like photos; noise on top keeps them distinct
            yy, xx = np.mgrid[0:h, 0:w]
            base = np.stack([(xx * (3 + i) + yy * 2) % 256, (yy * (5 + i)) % 256,
                             (xx + yy * i) % 256], -1).astype(np.float64)
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            kind = i % 4
            if kind == 3:
                Image.fromarray(img[..., 0], "L").save(buf, "JPEG", quality=90)
                ext = "jpg"
            elif kind == 2:
                Image.fromarray(img, "RGB").save(buf, "PNG")
                ext = "png"
            else:
                Image.fromarray(img, "RGB").save(buf, "JPEG", quality=85 + i)
                ext = "jpg"
            key = "s%03d" % i
            add("%s.%s" % (key, ext), buf.getvalue())
            add("%s.cls" % key, str(i % 3).encode())
            add("%s.txt" % key, ("caption %d" % i).encode())


def load_safetensors(path):
    import torch
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    dt = {"F32": np.float32, "I64": np.int64, "F16": np.float16}
    sd = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        a = np.frombuffer(data[b:end], dtype=dt[e["dtype"]]).reshape(e["shape"])
        sd[name] = torch.from_numpy(a.copy())
    return sd


def torch_model(arch, sd):
    import torch
    import torchvision
    c1 = sd["conv1.weight"]
    in_ch = c1.shape[1]
    base = arch.replace("-cifar", "")
    m = getattr(torchvision.models, base)()
    if arch.endswith("-cifar"):
        m.conv1 = torch.nn.Conv2d(in_ch, c1.shape[0], 3, 1, 1, bias=False)
        m.maxpool = torch.nn.Identity()
    elif in_ch != 3:
        m.conv1 = torch.nn.Conv2d(in_ch, c1.shape[0], 7, 2, 3, bias=False)
    m.fc = torch.nn.Identity()
    m.load_state_dict(sd, strict=True)
    return m.eval()


def reference(model, arch, resize, crop, shard, out):
    import torch
    import torchvision.transforms as T
    from PIL import Image
    torch.set_num_threads(2)
    sd = load_safetensors(model)
    m = torch_model(arch, sd)
    in_ch = sd["conv1.weight"].shape[1]
    mean = [0.485, 0.456, 0.406] if in_ch == 3 else [0.449]
    std = [0.229, 0.224, 0.225] if in_ch == 3 else [0.226]
    tf = []
    if int(resize) > 0:
        tf.append(T.Resize(int(resize)))
    if int(crop) > 0:
        tf.append(T.CenterCrop(int(crop)))
    tf += [T.ToTensor(), T.Normalize(mean, std)]
    tf = T.Compose(tf)
    embs = []
    with tarfile.open(shard) as t:
        for mem in t.getmembers():
            ext = mem.name.split(".", 1)[1]
            if ext not in ("jpg", "png"):
                continue
            im = Image.open(io.BytesIO(t.extractfile(mem).read()))
            im = im.convert("RGB" if in_ch == 3 else "L")
            x = tf(im).unsqueeze(0)
            with torch.no_grad():
                e = m(x)[0].double().numpy()
            embs.append(e / np.linalg.norm(e))
    np.save(out, np.array(embs))


def compare(ref, recs):
    import msgpack
    r = np.load(ref)
    got = [np.frombuffer(x["emb"], "<f4") for x in msgpack.Unpacker(open(recs, "rb"), raw=False)]
    if len(got) != len(r):
        sys.exit("got %d records, want %d" % (len(got), len(r)))
    worst = max(np.abs(g - e).max() / np.abs(e).max() for g, e in zip(got, r))
    print("max error relative to the largest component: %.2e" % worst)
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "shard":
        make_shard(*sys.argv[2:])
    elif cmd == "ref":
        reference(*sys.argv[2:])
    elif cmd == "compare":
        compare(*sys.argv[2:])
