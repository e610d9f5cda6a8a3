# JPEG shards of ImageNet-like sizes for bench/gpu/run: smooth random images (so JPEG sizes
# are those of photographs, ~100 KB), 500x375 to 640x480, quality 90, N samples in shards of
# 1000. Usage: python3 make_jpegs.py OUTDIR N
import io, os, sys, tarfile
from multiprocessing import Pool
import numpy as np
from PIL import Image

out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)

def one(i):
    r = np.random.default_rng(i)
    w, h = [(500, 375), (640, 480), (375, 500), (500, 333)][i % 4]
    small = r.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    noise = r.integers(-12, 12, (h, w, 3))
    arr = np.clip(np.asarray(img, dtype=np.int32) + noise, 0, 255).astype(np.uint8)
    b = io.BytesIO()
    Image.fromarray(arr).save(b, 'JPEG', quality=90)
    return i, b.getvalue()

def shard(s):
    with tarfile.open(os.path.join(out, 'img-%06d.tar' % s), 'w') as t:
        for i in range(s * 1000, min(n, (s + 1) * 1000)):
            _, data = one(i)
            for name, payload in (('%06d.jpg' % i, data), ('%06d.cls' % i, str(i % 1000).encode())):
                ti = tarfile.TarInfo(name)
                ti.size = len(payload)
                t.addfile(ti, io.BytesIO(payload))

with Pool(os.cpu_count()) as p:
    p.map(shard, range((n + 999) // 1000))
