#!/usr/bin/python3
# cull's spherical k-means vs faiss.Kmeans(spherical=True): same data, k, iterations, threads.
# Prints per case: time for fit + assignment of every point, both, their ratio, final objectives.
import argparse, os, subprocess, sys, tempfile, time
import numpy as np
import faiss

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True, help="the kmeans-fit helper (make bench-kmeans builds it)")
ap.add_argument("--cases", default="100000x128x100,100000x512x100,100000x128x1000",
                help="NxDxK,... (issue 5 also lists N=1e6 and d=512/k=1000: slow on 2 cores)")
ap.add_argument("--iters", type=int, default=10)
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()

print("cull k-means vs faiss %s, %d iterations, %d threads" % (faiss.__version__, a.iters, a.threads))
print("%8s %4s %5s  %9s %9s  %6s  %10s %10s %7s" % ("N", "d", "k", "cull s", "faiss s", "ratio",
      "cull obj", "faiss obj", "diff"))
faiss.omp_set_num_threads(a.threads)
with tempfile.TemporaryDirectory() as tmp:
    for case in a.cases.split(","):
        n, d, k = map(int, case.split("x"))
        rng = np.random.default_rng(a.seed)
        # a mixture of 2k Gaussian blobs of varied spread, normalised: data with structure
        cen = rng.standard_normal((2 * k, d), dtype=np.float32)
        x = cen[rng.integers(0, 2 * k, n)]
        x += rng.standard_normal((n, d), dtype=np.float32) * rng.uniform(0.3, 1.5, (n, 1)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x = np.ascontiguousarray(x, dtype=np.float32)
        path = os.path.join(tmp, "x.f32")
        x.tofile(path)
        out = subprocess.run([a.bin, path, str(d), str(k), str(a.iters), str(a.threads), str(a.seed),
                              os.path.join(tmp, "c.f32")], check=True, capture_output=True, text=True).stdout.split()
        v = dict(zip(out[0::2], out[1::2]))
        ours, ours_obj = float(v["fit_s"]) + float(v["assign_s"]), float(v["objective"])
        km = faiss.Kmeans(d, k, niter=a.iters, spherical=True, seed=a.seed, max_points_per_centroid=n,
                          verbose=False)
        t0 = time.perf_counter()
        km.train(x)
        D, I = km.index.search(x, 1)
        theirs = time.perf_counter() - t0
        if km.index.metric_type == faiss.METRIC_INNER_PRODUCT:   # spherical: an IndexFlatIP
            theirs_obj = 1 - float(D.mean())
        else:                                 # |x - c|^2 = 2 - 2 cos for unit vectors
            theirs_obj = float(D.mean()) / 2
        print("%8d %4d %5d  %9.3f %9.3f  %5.2fx  %10.6f %10.6f %+6.2f%%" % (n, d, k, ours, theirs,
              theirs / ours, ours_obj, theirs_obj, 100 * (ours_obj - theirs_obj) / theirs_obj), flush=True)
