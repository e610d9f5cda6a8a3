# Torch's side of bench/gpu/run: ResNet inference on a batch already on the GPU, as fast as
# torch makes it (channels-last, bfloat16 autocast or float32, cuDNN benchmark mode), timed
# with CUDA events. Prints "img_per_s N".
# Usage: python3 torch_gpu.py ARCH PX BATCH bf16|fp32|tf32 ITERS
import sys
import torch
import torchvision

arch, px, batch, mode, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
torch.backends.cudnn.benchmark = True
torch.backends.cuda.matmul.allow_tf32 = mode == 'tf32'
torch.backends.cudnn.allow_tf32 = mode == 'tf32'
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
