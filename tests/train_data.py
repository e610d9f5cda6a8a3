# train_data.py IMAGES LABELS N SIZE CLASSES SEED [MISLABEL_FRACTION FLIPPED_OUT]:
# a small learnable image problem as IDX files (for cull-shard idx). Class k puts a bright
# blob in one of four quadrant positions (jittered) with the class-th texture; noise on top.
# With a mislabel fraction, that share of samples gets another label and their indices
# (cull-shard's keys, %06d) go to FLIPPED_OUT, one a line.
import random, struct, sys

out_img, out_lab = sys.argv[1], sys.argv[2]
n, size, k, seed = (int(a) for a in sys.argv[3:7])
frac = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
r = random.Random(seed)
px = bytearray()
labels = bytearray()
flipped = []
b = max(2, size // 3)
for i in range(n):
    c = i % k
    q = c % 4
    y0 = (size // 2 - b) // 2 + (q // 2) * (size // 2) + r.randint(-1, 1)
    x0 = (size // 2 - b) // 2 + (q % 2) * (size // 2) + r.randint(-1, 1)
    img = [[40 + r.randint(0, 40) for _ in range(size)] for _ in range(size)]
    for y in range(max(0, y0), min(size, y0 + b)):
        for x in range(max(0, x0), min(size, x0 + b)):
            stripe = ((x + y * (c // 4)) % 2) * 60 if c >= 4 else 0
            img[y][x] = min(255, 200 - stripe + r.randint(-20, 20))
    for row in img:
        px += bytes(row)
    lab = c
    if frac > 0 and r.random() < frac:
        lab = (c + r.randint(1, k - 1)) % k
        flipped.append(i)
    labels.append(lab)
open(out_img, 'wb').write(b'\0\0\x08\x03' + struct.pack('>3I', n, size, size) + px)
open(out_lab, 'wb').write(b'\0\0\x08\x01' + struct.pack('>I', n) + labels)
if frac > 0:
    with open(sys.argv[8], 'w') as f:
        for i in flipped:
            f.write('%06d\n' % i)
