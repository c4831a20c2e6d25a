# PyTorch (cuDNN) BatchNorm2d on the same card, shape A, as the peer for the webgpu rows; and torch's copy bandwidth.
import torch
torch.manual_seed(0)
dev = 'cuda'
def timed(fn, iters=200):
    for _ in range(10): fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(iters): fn()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / iters
print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name())
n = 256 * 1024 * 1024 // 4
a = torch.ones(n, device=dev); b = torch.empty_like(a)
ms = timed(lambda: b.copy_(a), 50)
print(f'torch copy bandwidth: {2 * n * 4 / (ms * 1e6):.1f} GB/s (read + write)')
for fmt in ['channels-first', 'channels-last']:
    mf = torch.channels_last if fmt == 'channels-last' else torch.contiguous_format
    bn = torch.nn.BatchNorm2d(64).to(dev).to(memory_format=mf)
    x = (torch.randn(32, 64, 56, 56, device=dev) * 2 + 0.5).to(memory_format=mf).requires_grad_()
    dy = torch.randn(32, 64, 56, 56, device=dev).to(memory_format=mf)
    def fwd():
        with torch.no_grad(): bn(x)
    def fwdbwd():
        y = bn(x); y.backward(dy)
    bn.train()
    f = timed(fwd); fb = timed(fwdbwd)
    bn.eval(); inf = timed(fwd)
    print(f'torch BatchNorm2d {fmt}: forward(train) {f:.4f} ms, forward+backward {fb:.4f} ms, inference {inf:.4f} ms')
