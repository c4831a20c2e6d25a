"""Writes test/fixtures/tabnet-ghost.json: TabNet's GhostBatchNorm (pytorch_tabnet's GBN) over several steps.

TabNet splits a batch with x.chunk(ceil(N / virtual_batch_size), 0) and runs one BatchNorm1d on each chunk.
Format normalization-fixtures/1 (fixtures/README.md) with options.ghostSplit = 'chunk'; `expect` is PyTorch
in the case's dtype, `expect_float64` the same steps in float64 from the same inputs.
Run: /usr/bin/python3 scripts/make-tabnet-fixture.py (PyTorch 1.13).
"""
import json
import math

import torch


class GBN(torch.nn.Module):
    """pytorch_tabnet.tab_network.GBN: Ghost Batch Normalization, https://arxiv.org/abs/1705.08741."""

    def __init__(self, input_dim, virtual_batch_size, momentum):
        super().__init__()
        self.virtual_batch_size = virtual_batch_size
        self.bn = torch.nn.BatchNorm1d(input_dim, momentum=momentum)

    def forward(self, x):
        chunks = x.chunk(int(math.ceil(x.shape[0] / self.virtual_batch_size)), 0)
        return torch.cat([self.bn(x_) for x_ in chunks], dim=0)


def run(case, state, steps, dtype):
    gbn = GBN(case['options']['numFeatures'], case['options']['virtualBatchSize'], case['options']['momentum']).to(dtype)
    with torch.no_grad():
        for key in ('weight', 'bias', 'running_mean', 'running_var'):
            getattr(gbn.bn, key).copy_(torch.tensor(state[key], dtype=dtype))
        gbn.bn.num_batches_tracked.fill_(state['num_batches_tracked'])
    results = []
    for step in steps:
        gbn.train(step['mode'] == 'train')
        gbn.zero_grad()
        x = torch.tensor(step['input']['data'], dtype=dtype).reshape(step['input']['shape']).requires_grad_(True)
        dy = torch.tensor(step['grad_output']['data'], dtype=dtype).reshape(step['grad_output']['shape'])
        y = gbn(x)
        y.backward(dy)
        bn = gbn.bn
        results.append({
            'output': {'shape': list(y.shape), 'data': y.detach().flatten().tolist()},
            'grad_input': {'shape': list(x.shape), 'data': x.grad.flatten().tolist()},
            'grad_weight': bn.weight.grad.tolist(),
            'grad_bias': bn.bias.grad.tolist(),
            'running_mean': bn.running_mean.tolist(),
            'running_var': bn.running_var.tolist(),
            'num_batches_tracked': int(bn.num_batches_tracked),
        })
    return results


def make_case(name, description, shape, v, momentum, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    # float32-representable values, so the float32 and float64 runs read the same inputs
    f32 = lambda *s: (torch.randn(*s, generator=g, dtype=torch.float32)).double()
    state = {
        'weight': (1 + 0.5 * f32(c)).float().double().tolist(),
        'bias': (0.3 * f32(c)).float().double().tolist(),
        'running_mean': (0.2 * f32(c)).float().double().tolist(),
        'running_var': (1 + 0.25 * f32(c).abs()).float().double().tolist(),
        'num_batches_tracked': 0,
    }
    steps = []
    for mode, scale, offset in (('train', 2.0, 1.0), ('train', 1.0, -0.5), ('train', 3.0, 0.25), ('eval', 1.5, 0.0)):
        x = (scale * f32(*shape) + offset).float().double()
        dy = f32(*shape)
        steps.append({'mode': mode, 'input': {'shape': list(shape), 'data': x.flatten().tolist()},
                      'grad_output': {'shape': list(shape), 'data': dy.flatten().tolist()}})
    case = {'name': name, 'description': description, 'module': 'BatchNorm1d', 'dtype': dtype,
            'options': {'numFeatures': c, 'eps': 1e-5, 'momentum': momentum, 'affine': True, 'trackRunningStats': True,
                        'virtualBatchSize': v, 'ghostSplit': 'chunk'},
            'state': state, 'steps': steps}
    torch_dtype = torch.float32 if dtype == 'float32' else torch.float64
    own = run(case, state, steps, torch_dtype)
    truth = run(case, state, steps, torch.float64)
    for step, e, t in zip(steps, own, truth):
        step['expect'] = e
        step['expect_float64'] = t
    return case


def chunk_sizes(n, v):
    return [c.shape[0] for c in torch.arange(n).chunk(int(math.ceil(n / v)))]


cases = []
for dtype in ('float64', 'float32'):
    for name, shape, v, momentum, seed in (
        ('seq_9x3x4_v4', (9, 3, 4), 4, 0.1, 1),
        ('flat_9x3_v4', (9, 3), 4, 0.01, 2),
        ('flat_20x2_v6', (20, 2), 6, 0.02, 3),
        ('seq_10x2x2_v3', (10, 2, 2), 3, 0.1, 4),
    ):
        sizes = chunk_sizes(shape[0], v)
        cases.append(make_case(f'{name}_{dtype}', f'TabNet GBN, chunks {sizes} (x.chunk(ceil({shape[0]}/{v})))', shape, v, momentum, dtype, seed))

out = {'format': 'normalization-fixtures/1', 'generator': f'PyTorch {torch.__version__}, scripts/make-tabnet-fixture.py (TabNet GBN)', 'cases': cases}
with open('test/fixtures/tabnet-ghost.json', 'w') as f:
    json.dump(out, f)
print(len(cases), 'cases:', [c['description'] for c in cases[:4]])
