#!/usr/bin/python3
"""How separable planted near-copies are by cosine similarity of cull-embed's embeddings:
exact search in numpy (the truth the audit's detectors are measured against).

  nearcopy.py DIR     DIR from plant.py, with DIR/pool.rec and DIR/ref.rec written by
                      cull-embed (bench/audit/run does both)

For contamination (pool against the reference set) and copies inside the pool, per kind
of alteration: the similarity of the nearest image and whether it is the right source;
the best similarity a clean image reaches; recall and precision of a cosine threshold
1 - eps, and of a ratio test (1 - s1) / (1 - s2) <= r on the two nearest.
"""
import collections
import sys

import msgpack
import numpy as np


def load(path):
    r = list(msgpack.Unpacker(open(path, "rb"), raw=False))
    return [x["key"] for x in r], np.stack([np.frombuffer(x["emb"], "<f4") for x in r])


def nearest2(q, bank, same=False):
    """similarity and index of the nearest and the second nearest bank row per query"""
    s1, s2, a1 = (np.zeros(len(q)) for _ in range(3))
    for i in range(0, len(q), 2048):
        s = q[i:i + 2048] @ bank.T
        if same:
            s[np.arange(s.shape[0]), np.arange(i, i + s.shape[0])] = -2
        top = np.argsort(-s, axis=1)[:, :2]
        rows = np.arange(s.shape[0])
        s1[i:i + 2048], s2[i:i + 2048] = s[rows, top[:, 0]], s[rows, top[:, 1]]
        a1[i:i + 2048] = top[:, 0]
    return s1, s2, a1.astype(int)


def report(name, keys, truth, kind, s1, s2, a1, bank_keys):
    print("%s: the nearest image's cosine similarity, by alteration" % name)
    by = collections.defaultdict(list)
    for i, k in enumerate(keys):
        if truth[k][1] == kind:
            by[truth[k][2]].append((s1[i], bank_keys[a1[i]] == truth[k][3]))
    for alt in sorted(by):
        s = np.array([v[0] for v in by[alt]])
        print("  %-7s n=%3d  min %.4f  5%% %.4f  median %.4f  nearest is the source %.3f"
              % (alt, len(s), s.min(), np.percentile(s, 5), np.median(s),
                 np.mean([v[1] for v in by[alt]])))
    # a copy and its source are each other's nearest: a flag on either side is right
    sources = {truth[k][3] for k in keys if truth[k][1] == kind} if kind == "copy" else set()
    pos = np.array([truth[k][1] == kind or k in sources for k in keys])
    clean = np.sort(s1[~pos & np.array([truth[k][1] == "clean" for k in keys])])
    print("  clean images: the 10 highest %s" % " ".join("%.4f" % v for v in clean[-10:]))
    for eps in (0.002, 0.005, 0.01, 0.02, 0.05, 0.1):
        f = s1 >= 1 - eps
        tp = (f & pos).sum()
        print("  cosine >= %.3f: flagged %5d  recall %.3f  precision %.3f"
              % (1 - eps, f.sum(), tp / pos.sum(), tp / max(f.sum(), 1)))
    ratio = (1 - s1) / np.maximum(1 - s2, 1e-9)
    for r in (0.2, 0.4, 0.6):
        f = ratio <= r
        tp = (f & pos).sum()
        print("  ratio test <= %.1f:  flagged %5d  recall %.3f  precision %.3f"
              % (r, f.sum(), tp / pos.sum(), tp / max(f.sum(), 1)))


def main(d):
    pk, P = load(d + "/pool.rec")
    rk, R = load(d + "/ref.rec")
    truth = {l.split("\t")[0]: l.split("\t") for l in open(d + "/truth.tsv").read().splitlines()[1:]}
    report("contamination (pool vs reference)", pk, truth, "contam", *nearest2(P, R), rk)
    report("copies inside the pool", pk, truth, "copy", *nearest2(P, P, same=True), pk)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__))
