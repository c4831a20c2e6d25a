"""Why PyTorch's rows in an interleaved harness are slower than PyTorch timed alone (docs/bench-method.md).

  python3 scripts/bench-pytorch-gap.py [--shape A|B|C] [--layout channels-first|channels-last] [--threads N] [--rounds R] [--no-trim]
  python3 scripts/bench-pytorch-gap.py --trace FILE
  python3 scripts/bench-pytorch-gap.py --fault-cost

In one process, on one shape (BatchNorm, the bench's data), at N threads:
  blocked   torch.utils.benchmark.Timer(...).blocked_autorange(): one op repeated (how PyTorch times itself)
  rotation  what the bench's peer did: one call per sample, the ops in turn (forward, backward, forward+backward,
            inference), R rounds; per call: wall ms, CPU ms (user + system, all threads) and minor page faults
--no-trim sets glibc's M_TRIM_THRESHOLD and M_MMAP_THRESHOLD (mallopt) so freed outputs stay mapped: with it the
rotation's page faults go, which isolates their cost.
--trace FILE summarizes what the interleaved peer wrote with NORMKIT_TORCH_TRACE=FILE (normkit bench
--pytorch-interleaved): per thread count, layout and op, the samples with and without page faults, their medians.
--fault-cost: what one minor page fault costs here: a fresh 25.7 MB mapping (shape A's output) touched once a page,
against touching it again, CPU and wall time, median of 20. Medians; a table on stdout. CPU time is the figure to compare
on a loaded machine: it leaves out the time the process waits for a core.
"""
import argparse
import ctypes
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils import benchmark

SHAPES = {"A": [32, 64, 56, 56], "B": [256, 1024], "C": [8, 16, 8, 8]}
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_minflt


def summarize(path):
    import json

    groups = {}
    for line in open(path):
        r = json.loads(line)
        groups.setdefault((r["threads"], r["layout"], r["op"]), []).append(r)
    print("threads  layout          op                samples  median ms  faulting samples  their median ms  the others' median ms")
    for (threads, layout, op), samples in groups.items():
        # a sample faulting in a fresh output: over 100 minor faults a call (shape A's output is 6272 pages)
        faulting = [s["ms"] for s in samples if s["faults_per_call"] > 100]
        clean = [s["ms"] for s in samples if s["faults_per_call"] <= 100]
        med = lambda v: f"{statistics.median(v):.3f}" if v else "-"
        print(f"{threads:7}  {layout:14}  {op:16}  {len(samples):7}  {med([s['ms'] for s in samples]):>9}  {len(faulting):16}  {med(faulting):>15}  {med(clean):>21}")


def fault_cost():
    import mmap

    size = 32 * 64 * 56 * 56 * 4
    pages = range(0, size, mmap.PAGESIZE)
    fresh, again = [], []
    for _ in range(20):
        m = mmap.mmap(-1, size)
        for timings in (fresh, again):
            cpu0, faults0 = usage()
            start = time.perf_counter()
            for p in pages:
                m[p] = 1
            wall = time.perf_counter() - start
            cpu1, faults1 = usage()
            timings.append((wall, cpu1 - cpu0, faults1 - faults0))
        m.close()
    f = [statistics.median(v) for v in zip(*fresh)]
    a = [statistics.median(v) for v in zip(*again)]
    print(f"{len(pages)} pages ({size / 1e6:.1f} MB): first touch {f[0] * 1e3:.2f} ms wall, {f[1] * 1e3:.2f} ms CPU, {f[2]:.0f} faults; again {a[0] * 1e3:.2f} ms wall, {a[1] * 1e3:.2f} ms CPU, {a[2]:.0f} faults")
    print(f"one minor fault: {(f[0] - a[0]) / f[2] * 1e6:.2f} us wall, {(f[1] - a[1]) / f[2] * 1e6:.2f} us CPU")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="A", choices=sorted(SHAPES))
    parser.add_argument("--layout", default="channels-first", choices=["channels-first", "channels-last"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-trim", action="store_true")
    parser.add_argument("--trace")
    parser.add_argument("--fault-cost", action="store_true")
    args = parser.parse_args()
    if args.fault_cost:
        fault_cost()
        return
    if args.trace is not None:
        summarize(args.trace)
        return
    if args.no_trim:
        libc = ctypes.CDLL("libc.so.6")
        # freed memory stays with the process (no trim), and no output gets its own mmap (32 MB is glibc's largest threshold)
        assert libc.mallopt(M_TRIM_THRESHOLD, 2**62) == 1 and libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20) == 1
    torch.set_num_threads(args.threads)
    shape = SHAPES[args.shape]
    fmt = torch.channels_last if args.layout == "channels-last" and len(shape) == 4 else torch.contiguous_format
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(shape, generator=gen) * 2 + 0.5).contiguous(memory_format=fmt).requires_grad_()
    dy = torch.randn(shape, generator=gen).contiguous(memory_format=fmt)
    c = shape[1]
    weight = torch.ones(c).requires_grad_()
    bias = torch.zeros(c).requires_grad_()
    rm, rv = torch.zeros(c), torch.ones(c)
    norm = lambda: F.batch_norm(x, None, None, weight, bias, True, 0.1, 1e-5)
    y = norm()
    grads = (x, weight, bias)

    def infer():
        with torch.no_grad():
            return F.batch_norm(x, rm, rv, weight, bias, False, 0.1, 1e-5)

    ops = {
        "forward": norm,
        "backward": lambda: torch.autograd.grad(y, grads, dy, retain_graph=True),
        "forward+backward": lambda: torch.autograd.grad(norm(), grads, dy),
        "inference": infer,
    }
    def sample(fn):
        cpu0, faults0 = usage()
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
        cpu1, faults1 = usage()
        return wall * 1e3, (cpu1 - cpu0) * 1e3, faults1 - faults0

    rotation = {op: [] for op in ops}
    for _ in range(args.rounds):
        for op, fn in ops.items():
            rotation[op].append(sample(fn))
    print(f"torch {torch.__version__}, shape {args.shape} {args.layout}, {args.threads} thread(s), trim {'off' if args.no_trim else 'on (glibc default)'}, {args.rounds} rounds")
    print("                  ----------- one op repeated -----------  -- rotation, one call a sample --")
    print("op                Timer ms   wall ms    CPU ms  faults     wall ms    CPU ms  faults  CPU rotation/repeated")
    for op, fn in ops.items():
        m = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=args.threads).blocked_autorange(min_run_time=1)
        # the same op back to back, as many calls as the rotation made, by the same clocks
        repeated = [sample(fn) for _ in range(args.rounds)]
        r = [statistics.median(v) for v in zip(*repeated)]
        s = [statistics.median(v) for v in zip(*rotation[op])]
        print(f"{op:16}  {m.median * 1e3:8.3f}  {r[0]:8.3f}  {r[1]:8.3f}  {r[2]:6.0f}    {s[0]:8.3f}  {s[1]:8.3f}  {s[2]:6.0f}  {s[1] / r[1]:21.2f}")


main()
