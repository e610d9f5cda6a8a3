#!/usr/bin/python3
"""Plant known faults in a copy of the CIFAR-10 pool, for measuring cull's audit.

  plant.py SRC_DIR OUT_DIR [--seed S]

SRC_DIR holds CIFAR-10's training shards (train-00000N.tar, keys 000000-049999). The pool
is keys 000000-044999; the reference set (an evaluation set the default encoder never
saw) is keys 045000-049999. Written to OUT_DIR:
  ref.tar                  the reference set
  pool-clean.tar           the pool, plus 500 reference images inserted under new keys
                           (c-NNNNNN: contamination) and 500 pool images copied under new
                           keys (d-NNNNNN: copies inside the pool), each altered by one kind
  pool-noise5.tar          the same with 5% of the pool's labels flipped uniformly
  pool-noise20.tar         ... 20% flipped uniformly
  pool-pair10.tar          ... 10% flipped to one fixed confusable class per class
  truth.tsv                key, kind (contam|copy|clean), alteration, source key, and per
                           noise variant the given label and the true one
Alterations, in turn: exact (the same bytes), jpeg (re-encoded at quality 50 or 95), crop
(85-95% of the side, resized back to 32), flip (horizontal), colour (brightness and
saturation 0.9-1.1), shift (2 pixels, edge replicated), resize (28 px and back up).
"""
import argparse
import io
import os
import random
import sys
import tarfile

from PIL import Image, ImageEnhance

KINDS = ("exact", "jpeg", "crop", "flip", "colour", "shift", "resize")
# cat<->dog, automobile<->truck, airplane<->ship, deer<->horse, bird<->frog
PAIRS = {3: 5, 5: 3, 1: 9, 9: 1, 0: 8, 8: 0, 4: 7, 7: 4, 2: 6, 6: 2}


def read_samples(src):
    out = {}
    for i in range(5):
        with tarfile.open(os.path.join(src, "train-%06d.tar" % i)) as t:
            for m in t.getmembers():
                key, ext = m.name.split(".", 1)
                out.setdefault(key, {})[ext] = t.extractfile(m).read()
    return out


def alter(jpg, kind, rng):
    if kind == "exact":
        return jpg
    im = Image.open(io.BytesIO(jpg)).convert("RGB")
    q = 90
    if kind == "jpeg":
        q = rng.choice((50, 95))
    elif kind == "crop":
        s = int(round(32 * rng.uniform(0.85, 0.95)))
        x, y = rng.randint(0, 32 - s), rng.randint(0, 32 - s)
        im = im.crop((x, y, x + s, y + s)).resize((32, 32), Image.BILINEAR)
    elif kind == "flip":
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    elif kind == "colour":
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.9, 1.1))
        im = ImageEnhance.Color(im).enhance(rng.uniform(0.9, 1.1))
    elif kind == "shift":
        dx, dy = rng.choice(((2, 0), (-2, 0), (0, 2), (0, -2), (2, 2), (-2, -2)))
        src = im.load()
        out = Image.new("RGB", (32, 32))
        dst = out.load()
        for y in range(32):
            for x in range(32):
                dst[x, y] = src[min(31, max(0, x - dx)), min(31, max(0, y - dy))]
        im = out
    elif kind == "resize":
        im = im.resize((28, 28), Image.BILINEAR).resize((32, 32), Image.BILINEAR)
    b = io.BytesIO()
    im.save(b, "JPEG", quality=q)
    return b.getvalue()


def write_tar(path, samples):
    with tarfile.open(path + ".tmp", "w", format=tarfile.USTAR_FORMAT) as t:
        for key, fields in samples:
            for ext in ("jpg", "cls"):
                ti = tarfile.TarInfo("%s.%s" % (key, ext))
                ti.size = len(fields[ext])
                t.addfile(ti, io.BytesIO(fields[ext]))
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    s = read_samples(a.src)
    pool = ["%06d" % i for i in range(45000)]
    ref = ["%06d" % i for i in range(45000, 50000)]
    write_tar(os.path.join(a.out, "ref.tar"), [(k, s[k]) for k in ref])
    planted = []     # (new key, kind, alteration, source key, fields)
    for i, k in enumerate(rng.sample(ref, 500)):
        kind = KINDS[i % len(KINDS)]
        planted.append(("c-%06d" % i, "contam", kind, k,
                        {"jpg": alter(s[k]["jpg"], kind, rng), "cls": s[k]["cls"]}))
    for i, k in enumerate(rng.sample(pool, 500)):
        kind = KINDS[i % len(KINDS)]
        planted.append(("d-%06d" % i, "copy", kind, k,
                        {"jpg": alter(s[k]["jpg"], kind, rng), "cls": s[k]["cls"]}))
    # the planted samples go in at seeded places, as they would arrive in a real pool
    order = [(k, s[k]) for k in pool] + [(p[0], p[4]) for p in planted]
    rng.shuffle(order)
    true = {k: int(f["cls"]) for k, f in order}
    variants = {}
    for name, frac, pair in (("noise5", 0.05, False), ("noise20", 0.20, False),
                             ("pair10", 0.10, True)):
        r = random.Random("%d-%s" % (a.seed, name))
        flip = set(r.sample(pool, int(frac * len(pool))))
        given = dict(true)
        for k in flip:
            given[k] = PAIRS[true[k]] if pair else r.choice([c for c in range(10) if c != true[k]])
        variants[name] = given
        write_tar(os.path.join(a.out, "pool-%s.tar" % name),
                  [(k, {"jpg": f["jpg"], "cls": str(given[k]).encode()}) for k, f in order])
    write_tar(os.path.join(a.out, "pool-clean.tar"), order)
    src_of = {p[0]: p for p in planted}
    with open(os.path.join(a.out, "truth.tsv"), "w") as f:
        f.write("key\tkind\talteration\tsource\ttrue_cls\tnoise5\tnoise20\tpair10\n")
        for k, _ in order:
            p = src_of.get(k)
            f.write("%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n" % (
                k, p[1] if p else "clean", p[2] if p else "-", p[3] if p else "-", true[k],
                variants["noise5"][k], variants["noise20"][k], variants["pair10"][k]))
    print("plant: %d pool + %d planted samples, %d reference; %s" % (
        len(pool), len(planted), len(ref), a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
