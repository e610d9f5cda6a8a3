# Cosine per record between two embedding streams (cull-embed outputs of the same samples),
# matched by key. Usage: python3 cmp_records.py A.rec B.rec LABEL
import sys
import msgpack
import numpy as np

def read(p):
    return {r['key']: np.frombuffer(r['emb'], '<f4').astype(np.float64)
            for r in msgpack.Unpacker(open(p, 'rb'), raw=False)}

a, b = read(sys.argv[1]), read(sys.argv[2])
keys = sorted(set(a) & set(b))
cos = np.array([a[k] @ b[k] / (np.linalg.norm(a[k]) * np.linalg.norm(b[k])) for k in keys])
print('%s: %d records matched (%d and %d), cosine min %.6f mean %.6f, below 0.9999: %d, '
      'below 0.995: %d' % (sys.argv[3], len(keys), len(a), len(b), cos.min(), cos.mean(),
                          (cos < 0.9999).sum(), (cos < 0.995).sum()))
