# train_scores.py SCORES N FLIPPED: check a cull-train score stream: one record per training
# sample (N), sane ranges, and the planted mislabelled keys (FLIPPED, one a line) ranked
# hard by forget, el2n and aum (AUROC of each score at separating them).
import math, sys, msgpack

path, n, flipped = sys.argv[1], int(sys.argv[2]), set(open(sys.argv[3]).read().split())
recs = list(msgpack.Unpacker(open(path, 'rb'), raw=False))
bad = []
if len(recs) != n:
    bad.append('%d records, want %d' % (len(recs), n))
keys = [r['key'] for r in recs]
if len(set(keys)) != len(keys):
    bad.append('duplicate keys')
fields = ('el2n', 'grand', 'forget', 'aum', 'loss', 'margin')
for r in recs:
    for f in fields + ('cls', 'pred'):
        if f not in r:
            bad.append('%s: no %s' % (r['key'], f)); break
    else:
        if not (0 <= r['el2n'] <= math.sqrt(2) + 1e-6): bad.append('%s: el2n %g' % (r['key'], r['el2n']))
        if not (r['grand'] >= r['el2n'] - 1e-6): bad.append('%s: grand %g < el2n' % (r['key'], r['grand']))
        if not (r['forget'] >= 0 and r['forget'] == int(r['forget'])): bad.append('%s: forget %g' % (r['key'], r['forget']))
        if not (r['loss'] >= 0 and math.isfinite(r['aum']) and math.isfinite(r['margin'])):
            bad.append('%s: loss/aum/margin' % r['key'])
def auroc(f):
    pos = [r[f] for r in recs if r['key'] in flipped]
    neg = [r[f] for r in recs if r['key'] not in flipped]
    if not pos or not neg: return 0.0
    s = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return s / (len(pos) * len(neg))
aucs = {f: auroc(f) for f in fields}
print(' '.join('%s=%.3f' % (f, aucs[f]) for f in fields))
for f in ('forget', 'el2n', 'aum'):
    if aucs[f] < 0.8:
        bad.append('%s separates the mislabelled samples with AUROC %.3f only' % (f, aucs[f]))
for b in bad[:10]:
    print('bad:', b)
sys.exit(1 if bad else 0)
