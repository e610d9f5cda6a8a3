"""PyTorch oracle for tests/embed.test: makes small image shards and computes reference
embeddings the way a PyTorch user would (PIL decode, torchvision transforms, torchvision
ResNet in eval mode with fc removed).

  embed_ref.py shard OUT.tar SEED          images of several sizes and kinds, with .cls
  embed_ref.py ref MODEL ARCH RESIZE CROP SHARD OUT.npy   (any width; the mean/std a
                                           cull-train model records, else ImageNet's)
  embed_ref.py compare REF.npy RECORDS     checks cull-embed's records against REF
  embed_ref.py fixed OUT.tar               one fixed 32x32 CIFAR-like image (lossless PPM)
  embed_ref.py pin RECORDS MODEL OUT       write the sha256 of MODEL and the embedding of
                                           the one record (the pinned reference)
  embed_ref.py pinned REF RECORDS MODEL    check the model's hash and the embedding
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


def load_safetensors(path, meta=None):
    import torch
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    if meta is not None:
        meta.update(header.get("__metadata__", {}))
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
    # a width multiplier: every conv and BN takes the shape the state dict has
    for name, mod in list(m.named_modules()):
        parent = m.get_submodule(name.rsplit(".", 1)[0]) if "." in name else m
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(mod, torch.nn.Conv2d) and name + ".weight" in sd:
            w = sd[name + ".weight"]
            setattr(parent, leaf, torch.nn.Conv2d(w.shape[1], w.shape[0], mod.kernel_size,
                                                  mod.stride, mod.padding, bias=False))
        elif isinstance(mod, torch.nn.BatchNorm2d) and name + ".weight" in sd:
            setattr(parent, leaf, torch.nn.BatchNorm2d(sd[name + ".weight"].shape[0]))
    sd = {k: v for k, v in sd.items() if not k.startswith(("fc.", "projection_head.",
                                                             "prototypes."))}
    m.load_state_dict(sd, strict=True)
    return m.eval()


def reference(model, arch, resize, crop, shard, out):
    import torch
    import torchvision.transforms as T
    from PIL import Image
    torch.set_num_threads(2)
    meta = {}
    sd = load_safetensors(model, meta)
    m = torch_model(arch, sd)
    in_ch = sd["conv1.weight"].shape[1]
    mean = [0.485, 0.456, 0.406] if in_ch == 3 else [0.449]
    std = [0.229, 0.224, 0.225] if in_ch == 3 else [0.226]
    if "mean" in meta and "std" in meta:     # what cull-train recorded, as cull-embed reads it
        mean = [float(v) for v in meta["mean"].split(",")][:in_ch]
        std = [float(v) for v in meta["std"].split(",")][:in_ch]
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


def fixed(out):
    # a smooth picture with an edge and a blob, from integer arithmetic only
    px = bytearray()
    for y in range(32):
        for x in range(32):
            r = (x * 7 + y * 3) % 256
            g = 200 if (x - 20) ** 2 + (y - 12) ** 2 < 40 else (y * 8) % 256
            b = 40 if x < y else 180
            px += bytes((r, g, b))
    data = b"P6 32 32 255\n" + bytes(px)
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
        ti = tarfile.TarInfo("fixed.ppm")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))


def records(path):
    import msgpack
    return [np.frombuffer(x["emb"], "<f4") for x in msgpack.Unpacker(open(path, "rb"), raw=False)]


def sha256(path):
    import hashlib
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def pin(recs, model, out):
    (e,) = records(recs)
    with open(out, "w") as f:
        f.write("# the default encoder's embedding of `embed_ref.py fixed` (tests/embed.test)\n")
        f.write("sha256 %s\n" % sha256(model))
        f.write("".join("%.8e\n" % v for v in e))


def pinned(ref, recs, model):
    lines = [l.split() for l in open(ref) if not l.startswith("#")]
    want_hash, want = lines[0][1], np.array([float(l[0]) for l in lines[1:]])
    if sha256(model) != want_hash:
        sys.exit("%s is not the model %s was pinned for: run bench/ssl/cifar10 publish" %
                 (model, ref))
    (e,) = records(recs)
    err = np.abs(e.astype(np.float64) - want).max() if len(e) == len(want) else np.inf
    print("max difference from the pinned embedding: %.2e" % err)
    sys.exit(0 if err <= 1e-5 else 1)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "shard":
        make_shard(*sys.argv[2:])
    elif cmd == "ref":
        reference(*sys.argv[2:])
    elif cmd == "compare":
        compare(*sys.argv[2:])
    elif cmd == "fixed":
        fixed(*sys.argv[2:])
    elif cmd == "pin":
        pin(*sys.argv[2:])
    elif cmd == "pinned":
        pinned(*sys.argv[2:])
