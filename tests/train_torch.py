# train_torch.py MODEL ARCH CLASSES SHARD PREDICTIONS: load a cull-train checkpoint into
# PyTorch (load_state_dict strict=True, tests/torch_ref.py's models), evaluate the gray
# images of SHARD (normalised as cull-train does) and compare with cull-train's
# --predictions records. Prints the largest probability difference and the agreement.
import io, os, sys, tarfile
import msgpack, numpy as np, torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import build, load_st

model_path, arch, classes, shard, preds = sys.argv[1:6]
m = build(arch, 1, int(classes))
m.load_state_dict(load_st(model_path), strict=True)
m.eval()
imgs, keys = {}, []
with tarfile.open(shard) as t:
    for mem in t:
        key, ext = mem.name.split('.', 1)
        if ext == 'jpg':
            a = np.asarray(Image.open(io.BytesIO(t.extractfile(mem).read())).convert('L'),
                           np.float32)
            imgs[key] = (a / 255.0 - 0.449) / 0.226
            keys.append(key)
x = torch.from_numpy(np.stack([imgs[k] for k in keys])[:, None])
with torch.no_grad():
    p = torch.softmax(m(x), 1).numpy()
recs = {r['key']: r for r in msgpack.Unpacker(open(preds, 'rb'), raw=False)}
worst, agree = 0.0, 0
for i, k in enumerate(keys):
    r = recs[k]
    agree += int(p[i].argmax()) == r['pred']
    worst = max(worst, abs(float(p[i][r['pred']]) - r['prob']))
print('max prob diff %.2e, agreement %d/%d' % (worst, agree, len(keys)))
sys.exit(0 if worst < 1e-2 and agree >= 0.98 * len(keys) else 1)
