#!/usr/bin/python3
# PyTorch oracle for nn/ssl: NT-Xent, SwAV's Sinkhorn and swapped loss, the projection head.
#
#   ssl_ref.py DIR    write DIR/ssl.ref.safetensors: float32 inputs and initial weights, and
#                     what float64 torch (autograd) makes of them: losses, codes, outputs,
#                     gradients and BN running stats, for test_ssl_parity
#
# Names: "ntxent.*", "swav.*" and, per head case P in mlp, linear, swav-head,
# "P.cfg" (in, hidden, out, nproto, rows), "P.x", "P.r" (dloss/dz where the loss is
# sum(z * r)), "P.init.<state_dict name>", "P.z", "P.dx", "P.grad.<param>",
# "P.stat.<buffer>" (after the forward), "P.loss" (swav-head: the SwAV step's loss).
# safetensors is written by hand as in torch_ref.py (which needs torchvision; this does not).
import json
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
NTXENT_T = (0.5, 0.1)
SWAV_EPS, SWAV_T, SWAV_ITERS = 0.05, 0.1, 3


def save_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def randn32(g, *shape):
    """float32 values (what cull reads), computed on in float64"""
    return torch.randn(*shape, generator=g).float().double()


def ntxent(z, t):
    """SimCLR's NT-Xent of raw z[2n, d]: the loss and the share of rows nearest their pair"""
    m = z.shape[0]
    zn = F.normalize(z, dim=1)
    sim = zn @ zn.t() / t
    sim = sim.masked_fill(torch.eye(m, dtype=torch.bool), float("-inf"))
    target = (torch.arange(m) + m // 2) % m
    return F.cross_entropy(sim, target), (sim.argmax(1) == target).double().mean()


@torch.no_grad()
def distributed_sinkhorn(out, eps, iters):
    """SwAV's (main_swav.py) on one process"""
    Q = torch.exp(out / eps).t()
    B = Q.shape[1]
    K = Q.shape[0]
    Q /= torch.sum(Q)
    for _ in range(iters):
        Q /= torch.sum(Q, dim=1, keepdim=True)
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


def swav_loss(scores, t):
    """the swapped prediction of two views, codes from each view's detached scores"""
    n = scores.shape[0] // 2
    s0, s1 = scores[:n], scores[n:]
    q0 = distributed_sinkhorn(s0.detach(), SWAV_EPS, SWAV_ITERS)
    q1 = distributed_sinkhorn(s1.detach(), SWAV_EPS, SWAV_ITERS)
    l0 = -torch.mean(torch.sum(q1 * F.log_softmax(s0 / t, dim=1), dim=1))
    l1 = -torch.mean(torch.sum(q0 * F.log_softmax(s1 / t, dim=1), dim=1))
    return 0.5 * (l0 + l1), torch.cat([q0, q1])


class Head(nn.Module):
    """SwAV's projection_head (+ prototypes); hidden 0: one Linear, named as in cull"""

    def __init__(self, cin, hidden, out, nproto):
        super().__init__()
        if hidden:
            self.projection_head = nn.Sequential(nn.Linear(cin, hidden), nn.BatchNorm1d(hidden),
                                                 nn.ReLU(inplace=True), nn.Linear(hidden, out))
        else:
            self.projection_head = nn.Sequential(nn.Linear(cin, out))
        self.prototypes = nn.Linear(out, nproto, bias=False) if nproto else None


def make_ntxent(g, ref, n=6, d=8):
    # two noisy views of n points: some rows are nearest their pair, some are not
    base = torch.randn(n, d, generator=g)
    z = torch.cat([base + 0.9 * torch.randn(n, d, generator=g),
                   base + 0.9 * torch.randn(n, d, generator=g)]).float().double()
    ref["ntxent.z"] = z.float()
    ref["ntxent.t"] = torch.tensor(NTXENT_T, dtype=torch.float64)
    losses, accs, grads = [], [], []
    for t in NTXENT_T:
        zz = z.clone().requires_grad_()
        loss, acc = ntxent(zz, t)
        loss.backward()
        losses.append(loss.detach())
        accs.append(acc)
        grads.append(zz.grad)
    ref["ntxent.loss"] = torch.stack(losses)
    ref["ntxent.acc"] = torch.stack(accs)
    ref["ntxent.dz"] = torch.stack(grads)


def make_swav(g, ref, n=4, d=8, k=6):
    z = randn32(g, 2 * n, d)
    w = randn32(g, k, d)
    ref["swav.z"] = z.float()
    ref["swav.proto"] = w.float()           # raw: normalised as SwAV does before the step
    ref["swav.hyper"] = torch.tensor([SWAV_EPS, SWAV_T, SWAV_ITERS], dtype=torch.float64)
    z.requires_grad_()
    wn = F.normalize(w, dim=1).requires_grad_()
    scores = F.normalize(z, dim=1) @ wn.t()
    loss, codes = swav_loss(scores, SWAV_T)
    loss.backward()
    ref["swav.scores"] = scores.detach()
    ref["swav.codes"] = codes
    ref["swav.loss"] = loss.detach().reshape(1)
    ref["swav.dz"] = z.grad
    ref["swav.dproto"] = wn.grad


def make_head(g, ref, name, cin, hidden, out, nproto, rows=8):
    torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=g)))
    head = Head(cin, hidden, out, nproto)
    with torch.no_grad():
        if hidden:
            bn = head.projection_head[1]
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.normal_(0, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.num_batches_tracked.fill_(3)
        if nproto:       # unnormalised, so that cull's nn_head_normalize_prototypes is tested
            head.prototypes.weight.mul_(3.0)
    init = {k: v.clone() for k, v in head.state_dict().items()}
    head = head.double()
    # inputs whose BN outputs (batch statistics) stay clear of the ReLU kink, so that
    # float32 takes the same side
    for _ in range(100):
        x = randn32(g, rows, cin)
        if not hidden:
            break
        lin, bn = head.projection_head[0], head.projection_head[1]
        with torch.no_grad():
            pre = F.batch_norm(lin(x), None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
        if pre.abs().min() > 1e-3:
            break
    else:
        raise SystemExit("ssl_ref.py: no input clear of the ReLU kinks for %s" % name)
    ref[name + ".cfg"] = torch.tensor([cin, hidden, out, nproto, rows], dtype=torch.int64)
    ref[name + ".x"] = x.float()
    for k, v in init.items():
        ref[name + ".init." + k] = v
    head.train()
    x.requires_grad_()
    if nproto:
        # SwAV's step: normalise the prototypes, z -> l2 normalise -> prototypes -> loss
        with torch.no_grad():
            head.prototypes.weight.copy_(F.normalize(head.prototypes.weight, dim=1))
        z = head.projection_head(x)
        loss, codes = swav_loss(head.prototypes(F.normalize(z, dim=1)), SWAV_T)
        ref[name + ".loss"] = loss.detach().reshape(1)
        ref[name + ".codes"] = codes
    else:
        z = head.projection_head(x)
        r = randn32(g, rows, out)
        ref[name + ".r"] = r.float()
        loss = (z * r).sum()
    loss.backward()
    ref[name + ".z"] = z.detach()
    ref[name + ".dx"] = x.grad
    for k, p in head.named_parameters():
        ref[name + ".grad." + k] = p.grad
    for k, b in head.named_buffers():
        ref[name + ".stat." + k] = b


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: ssl_ref.py DIR")
    g = torch.Generator().manual_seed(20240607)
    ref = {}
    make_ntxent(g, ref)
    make_swav(g, ref)
    make_head(g, ref, "mlp", 6, 10, 5, 0)
    make_head(g, ref, "linear", 6, 0, 5, 0)
    make_head(g, ref, "swav-head", 6, 10, 5, 7)
    save_st(sys.argv[1] + "/ssl.ref.safetensors", ref)


if __name__ == "__main__":
    main()
