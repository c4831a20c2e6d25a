"""PyTorch as a peer of `normkit bench` (src/bench/peers/pytorch.ts drives it).

One JSON request per line on stdin, one JSON answer per line on stdout:
  {"cmd": "hello"}                                  -> {"torch": version, "threads": n}
  {"cmd": "prepare", "norm", "shape", "layout", "groups", "eps", "inputs": path}
      inputs: float32 x, dy (logical channels-first), weight, bias, running mean, running var
                                                    -> {"ops": [...]}
  {"cmd": "result", "op", "out": path}              -> {} after writing y (forward, inference) or dx
                                                       (backward, forward+backward) as float32, channels-first
  {"cmd": "time", "op", "calls": n}                 -> {"ms": ms per call over n calls}
Errors answer {"error": text}. The thread count is the first argument.
Forward is training mode with autograd recording (what a training step runs); backward is
torch.autograd.grad of the same graph (dx, dweight, dbias); inference runs under no_grad.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)


def floats(buffer, offset, count):
    return torch.frombuffer(buffer, dtype=torch.float32, count=count, offset=offset * 4).clone()


class Case:
    def __init__(self, req):
        norm, shape, eps = req["norm"], req["shape"], req["eps"]
        n = 1
        for d in shape:
            n *= d
        affine = shape[-1] if norm == "layer" else shape[1]
        channels = shape[1]
        with open(req["inputs"], "rb") as f:
            buffer = bytearray(f.read())
        sizes = [n, n, affine, affine, channels, channels]
        parts, offset = [], 0
        for size in sizes:
            parts.append(floats(buffer, offset, size))
            offset += size
        x, dy, weight, bias, running_mean, running_var = parts
        # channels-last: the same logical tensor in NHWC memory (torch.channels_last)
        fmt = torch.channels_last if req["layout"] == "channels-last" and len(shape) == 4 else torch.contiguous_format
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
            self.norm = lambda x: F.group_norm(x, req["groups"], self.weight, self.bias, eps)
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
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) * 1e3 / calls


def answer(case, req):
    cmd = req.get("cmd")
    if cmd == "hello":
        return case, {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if cmd == "prepare":
        case = Case(req)
        return case, {"ops": list(case.ops)}
    if case is None:
        raise ValueError(f"'{cmd}' before 'prepare'")
    if cmd == "result":
        case.result(req["op"], req["out"])
        return case, {}
    if cmd == "time":
        return case, {"ms": case.time(req["op"], int(req["calls"]))}
    raise ValueError(f"unknown command {cmd!r}")


def main():
    case = None
    for line in sys.stdin:
        try:
            case, reply = answer(case, json.loads(line))
        except Exception as error:  # every failure goes back to the caller as one line
            reply = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


main()
