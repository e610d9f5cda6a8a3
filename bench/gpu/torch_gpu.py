# Torch's side of bench/gpu/run: ResNet inference on a batch already on the GPU, as fast as
# torch makes it (channels-last, bfloat16 autocast or float32, cuDNN benchmark mode), timed
# with CUDA events. Prints "img_per_s N".
# Usage: python3 torch_gpu.py ARCH PX BATCH bf16|fp32|tf32|train-fp32|train-bf16 ITERS
# (train-*: an SGD step of the CIFAR variant of ARCH, 3x3 stem, no max-pool, 10 classes)
import sys
import torch
import torchvision

arch, px, batch, mode, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
torch.backends.cudnn.benchmark = True
torch.backends.cuda.matmul.allow_tf32 = mode == 'tf32'
torch.backends.cudnn.allow_tf32 = mode == 'tf32'
if mode.startswith('train'):
    net = getattr(torchvision.models, arch)(num_classes=10)
    net.conv1 = torch.nn.Conv2d(3, net.conv1.out_channels, 3, 1, 1, bias=False)
    net.maxpool = torch.nn.Identity()
    net = net.cuda().train().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(batch, 3, px, px, device='cuda').to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device='cuda')
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=mode == 'train-bf16'):
            loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(iters):
        step()
    b.record()
    torch.cuda.synchronize()
    ms = a.elapsed_time(b) / iters
    print('torch %s %dpx batch %d %s: %.3f ms/step, img_per_s %.0f' % (arch, px, batch, mode, ms, batch / ms * 1000))
    sys.exit(0)
net = getattr(torchvision.models, arch)(num_classes=1000)
net.fc = torch.nn.Identity()
net = net.cuda().eval().to(memory_format=torch.channels_last)
x = torch.randn(batch, 3, px, px, device='cuda').to(memory_format=torch.channels_last)
ctx = torch.autocast('cuda', dtype=torch.bfloat16) if mode == 'bf16' else torch.autocast('cuda', enabled=False)
with torch.inference_mode(), ctx:
    for _ in range(3):
        net(x)
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(iters):
        net(x)
    b.record()
    torch.cuda.synchronize()
ms = a.elapsed_time(b) / iters
print('torch %s %dpx batch %d %s: %.3f ms/batch, img_per_s %.0f' % (arch, px, batch, mode, ms, batch / ms * 1000))
