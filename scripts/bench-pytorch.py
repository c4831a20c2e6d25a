"""PyTorch for `normkit bench`, two ways (the same ops either way: class Case).

Standalone, the comparison figure: PyTorch timed as PyTorch times itself, torch.utils.benchmark.Timer(...)
.blocked_autorange() in this process alone, every shape of src/bench/types.ts, both layouts:
  python3 scripts/bench-pytorch.py standalone [--threads 1,2] [--shapes A,B,C,LN,GN] [--min-run-time S] [--json]
Prints one line per (shape, layout, threads, op); with --json one object
  {"torch": version, "rows": [{system, threads, shape, layout, op, median_ms, min_ms, iqr_ms, runs}]}.
  --list-specs prints the shapes as JSON (a test checks them against src/bench/types.ts).

Peer (src/bench/peers/pytorch.ts, `normkit bench --pytorch-interleaved`, and the check of PyTorch's outputs):
  python3 scripts/bench-pytorch.py THREADS
One JSON request per line on stdin, one JSON answer per line on stdout:
  {"cmd": "hello"}                                  -> {"torch": version, "threads": n}
  {"cmd": "prepare", "norm", "shape", "layout", "groups", "eps", "inputs": path}
      inputs: float32 x, dy (logical channels-first), weight, bias, running mean, running var
                                                    -> {"ops": [...]}
  {"cmd": "result", "op", "out": path}              -> {} after writing y (forward, inference) or dx
                                                       (backward, forward+backward) as float32, channels-first
  {"cmd": "time", "op", "calls": n}                 -> {"ms": ms per call over n calls}
Errors answer {"error": text}. NORMKIT_TORCH_TRACE=file appends one JSON line per timed sample (ms per call,
minor page faults per call): docs/bench-method.md reads the interleaved rows' gap from it.

Forward is training mode with autograd recording (what a training step runs; no running-statistics update, as
normkit's rows); backward is torch.autograd.grad of that graph (dx, dweight, dbias); forward+backward builds and
differentiates the graph in one call; inference runs under no_grad with the running statistics.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

# the shapes of src/bench/types.ts (shapeSpecs): name, norm, logical shape (channels first), layout, groups
SPECS = [
    {"name": "A", "norm": "batch", "shape": [32, 64, 56, 56], "layout": "channels-first", "groups": 1},
    {"name": "A", "norm": "batch", "shape": [32, 64, 56, 56], "layout": "channels-last", "groups": 1},
    {"name": "B", "norm": "batch", "shape": [256, 1024], "layout": "channels-first", "groups": 1},
    {"name": "C", "norm": "batch", "shape": [8, 16, 8, 8], "layout": "channels-first", "groups": 1},
    {"name": "LN", "norm": "layer", "shape": [8192, 1024], "layout": "channels-first", "groups": 1},
    {"name": "GN", "norm": "group", "shape": [32, 64, 56, 56], "layout": "channels-first", "groups": 32},
]
OPS = ["forward", "backward", "forward+backward", "inference"]
EPS = 1e-5
TRACE = os.environ.get("NORMKIT_TORCH_TRACE")


def floats(buffer, offset, count):
    return torch.frombuffer(buffer, dtype=torch.float32, count=count, offset=offset * 4).clone()


def read_inputs(path, norm, shape):
    """x, dy, weight, bias, running mean, running var from the bench's float32 file."""
    n = 1
    for d in shape:
        n *= d
    affine = shape[-1] if norm == "layer" else shape[1]
    with open(path, "rb") as f:
        buffer = bytearray(f.read())
    parts, offset = [], 0
    for size in [n, n, affine, affine, shape[1], shape[1]]:
        parts.append(floats(buffer, offset, size))
        offset += size
    return parts


def random_inputs(norm, shape):
    """Inputs drawn as the bench draws them (x ~ N(0.5, 2), dy ~ N(0, 1), weight ~ N(1, 0.2)): values do not change the timing."""
    gen = torch.Generator().manual_seed(1)
    affine = shape[-1] if norm == "layer" else shape[1]
    return [
        torch.randn(shape, generator=gen).flatten() * 2 + 0.5,
        torch.randn(shape, generator=gen).flatten(),
        torch.randn(affine, generator=gen) * 0.2 + 1,
        torch.randn(affine, generator=gen) * 0.2,
        torch.randn(shape[1], generator=gen) * 0.1 + 0.5,
        (torch.randn(shape[1], generator=gen) * 0.3 + 4).abs(),
    ]


class Case:
    def __init__(self, norm, shape, layout, groups, eps, inputs):
        x, dy, weight, bias, running_mean, running_var = inputs
        self.shape, self.layout = shape, layout
        # channels-last: the same logical tensor in NHWC memory (torch.channels_last)
        fmt = torch.channels_last if layout == "channels-last" and len(shape) == 4 else torch.contiguous_format
        self.x = x.reshape(shape).contiguous(memory_format=fmt).requires_grad_()
        self.dy = dy.reshape(shape).contiguous(memory_format=fmt)
        self.weight = weight.requires_grad_()
        self.bias = bias.requires_grad_()
        if norm == "batch":
            # the kernels' work: batch statistics, no running-statistics update (as normkit's rows)
            self.norm = lambda x: F.batch_norm(x, None, None, self.weight, self.bias, True, 0.1, eps)
            self.infer = lambda: F.batch_norm(self.x, running_mean, running_var, self.weight, self.bias, False, 0.1, eps)
        elif norm == "layer":
            self.norm = lambda x: F.layer_norm(x, (shape[-1],), self.weight, self.bias, eps)
            self.infer = None
        else:
            self.norm = lambda x: F.group_norm(x, groups, self.weight, self.bias, eps)
            self.infer = None
        self.y = self.norm(self.x)
        grads = (self.x, self.weight, self.bias)
        self.ops = {
            "forward": lambda: self.norm(self.x),
            "backward": lambda: torch.autograd.grad(self.y, grads, self.dy, retain_graph=True)[0],
            "forward+backward": lambda: torch.autograd.grad(self.norm(self.x), grads, self.dy)[0],
        }
        if self.infer is not None:
            self.ops["inference"] = self.run_inference

    def run_inference(self):
        with torch.no_grad():
            return self.infer()

    def result(self, op, out):
        value = self.ops[op]().detach().contiguous()
        with open(out, "wb") as f:
            f.write(value.numpy().tobytes())

    def time(self, op, calls):
        fn = self.ops[op]
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        ms = (time.perf_counter() - start) * 1e3 / calls
        if TRACE is not None:
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            with open(TRACE, "a") as f:
                f.write(json.dumps({"threads": torch.get_num_threads(), "shape": self.shape, "layout": self.layout, "op": op, "calls": calls, "ms": ms, "faults_per_call": faults / calls}) + "\n")
        return ms


def answer(case, req):
    cmd = req.get("cmd")
    if cmd == "hello":
        return case, {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if cmd == "prepare":
        norm, shape = req["norm"], req["shape"]
        case = Case(norm, shape, req["layout"], req["groups"], req["eps"], read_inputs(req["inputs"], norm, shape))
        return case, {"ops": list(case.ops)}
    if case is None:
        raise ValueError(f"'{cmd}' before 'prepare'")
    if cmd == "result":
        case.result(req["op"], req["out"])
        return case, {}
    if cmd == "time":
        return case, {"ms": case.time(req["op"], int(req["calls"]))}
    raise ValueError(f"unknown command {cmd!r}")


def serve(threads):
    torch.set_num_threads(threads)
    case = None
    for line in sys.stdin:
        try:
            case, reply = answer(case, json.loads(line))
        except Exception as error:  # every failure goes back to the caller as one line
            reply = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


def standalone(argv):
    from torch.utils import benchmark

    parser = argparse.ArgumentParser(prog="bench-pytorch.py standalone", description="PyTorch's own Timer(...).blocked_autorange() on the bench's shapes")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--shapes", default="A,B,C,LN,GN", help="comma-separated shape names (default all)")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds blocked_autorange runs each op (default 1)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--list-specs", action="store_true", help="print the shapes as JSON and exit")
    args = parser.parse_args(argv)
    if args.list_specs:
        print(json.dumps(SPECS))
        return 0
    names = [n for n in args.shapes.split(",") if n != ""]
    try:
        threads = [int(t) for t in args.threads.split(",") if t != ""]
    except ValueError:
        threads = []
    if not names or any(n not in {s["name"] for s in SPECS} for n in names) or not threads or any(t < 1 for t in threads) or not args.min_run_time > 0:
        parser.error(f"expected --shapes among A,B,C,LN,GN, --threads positive integers and --min-run-time > 0; got --shapes {args.shapes} --threads {args.threads} --min-run-time {args.min_run_time}")
    rows = []
    for spec in (s for s in SPECS if s["name"] in names):
        case = Case(spec["norm"], spec["shape"], spec["layout"], spec["groups"], EPS, random_inputs(spec["norm"], spec["shape"]))
        for t in threads:
            for op, fn in case.ops.items():
                m = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=t).blocked_autorange(min_run_time=args.min_run_time)
                row = {"system": "pytorch", "threads": t, "shape": spec["name"], "layout": spec["layout"], "op": op, "median_ms": m.median * 1e3, "min_ms": min(m.times) * 1e3, "iqr_ms": m.iqr * 1e3, "runs": len(m.times)}
                rows.append(row)
                if not args.json:
                    print(f"torch {torch.__version__} {spec['name']} {spec['layout']} {t}t {op}: median {row['median_ms']:.4f} ms, min {row['min_ms']:.4f}, IQR {row['iqr_ms']:.4f}, {row['runs']} blocks", flush=True)
    if args.json:
        print(json.dumps({"torch": torch.__version__, "rows": rows}))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "standalone":
        sys.exit(standalone(sys.argv[2:]))
    sys.exit(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
