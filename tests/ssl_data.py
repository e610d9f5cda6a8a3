# ssl_data.py OUT.tar N SIZE SEED [nocls]: a small image problem for self-supervised tests
# as a WebDataset shard of PPM images. Four classes of gray texture that survive cropping,
# flipping and colour jitter: horizontal stripes, vertical stripes, a checkerboard and
# dots, each with a random period, phase and contrast, plus noise. The texture is what
# tells two images apart after augmentation, so instance discrimination learns it.
# With "nocls" the samples have no .cls member.
import io, random, sys, tarfile

out, n, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
nocls = len(sys.argv) > 5 and sys.argv[5] == 'nocls'
r = random.Random(seed)
with tarfile.open(out, 'w', format=tarfile.USTAR_FORMAT) as t:
    def add(name, data):
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    for i in range(n):
        c = i % 4
        per, ph = r.randint(2, 4), r.randint(0, 7)
        a, b = r.randint(170, 230), r.randint(30, 90)
        px = bytearray()
        for y in range(size):
            for x in range(size):
                u, v = (x + ph) // per, (y + ph) // per
                on = (v % 2, u % 2, (u + v) % 2, u % 2 and v % 2)[c]
                g = min(255, max(0, (a if on else b) + r.randint(-20, 20)))
                px += bytes((g, g, g))
        add('%06d.ppm' % i, b'P6 %d %d 255\n' % (size, size) + bytes(px))
        if not nocls:
            add('%06d.cls' % i, b'%d' % c)
