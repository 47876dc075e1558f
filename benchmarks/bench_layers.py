"""Forward + backward time of every AlexNet layer, and of one whole training step.

    python benchmarks/bench_layers.py                      # batch 32, every layer + the step
    .venv-bench/bin/python benchmarks/bench_layers.py      # same, with PyTorch columns
    python benchmarks/bench_layers.py --batch 64 --reps 7 --layers conv1,conv2,step --json out.json

What it measures (issue 2, "Speed"):

1. the machine's float32 matrix-multiply rate with NumPy (median of several
   2048 x 2048 products): the reference rate every other number is compared to;
2. forward + backward of each ``nn`` layer at AlexNet's shapes (227 x 227 input,
   two-group conv2/4/5, §3.5), each timed on its own with a fixed random input and
   upstream gradient, and one whole training step (forward, loss, backward, SGD
   step) of the AlexNet-shaped stack built from ``nn`` layers directly;
3. per row: median ms of forward, backward and both; for convolutions and fully
   connected layers the GFLOP/s, counting 2 x multiply-adds for the forward and
   twice that for the backward (fwd + bwd = 3 x forward FLOPs), and that rate as a
   share of the matmul rate; when ``import torch`` works, the same shapes in
   PyTorch (torch.nn.functional with autograd) and torch_ms / our_ms (> 1: ours is
   faster), plus the largest relative difference of outputs and input gradients
   between the two (a check that both compute the same thing);
4. a summary: images/s, GFLOP/s and % of the matmul rate of the training step,
   ours and PyTorch's.

``--separate ROUNDS`` times the step and inference rows with each library in fresh
processes of its own (ROUNDS rounds, alternating order, median of the rounds): in one
process PyTorch's step runs slower than alone (benchmarks/README.md), so those are
the ratios to quote. The per-layer rows are always timed in this process.

GPU (``--device cuda``, needs CuPy; PyTorch columns need a CUDA build of torch):
the same layers run on CuPy arrays and PyTorch runs on CUDA (cuDNN). Every timed
call ends with a device synchronization (``cupy.cuda.Device().synchronize()`` and
``torch.cuda.synchronize()``), so a time is the whole GPU work of that call, not
its launch. Precision is stated in the header, and every row compares like with like:

- ``--tf32 off`` (default): strict FP32 in both libraries (CUPY_TF32=0;
  torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32 False), so our
  layers are compared with cuDNN FP32 with TF32 off.
- ``--tf32 on``: TF32 only where both libraries can use it, the fully connected layers' 2-D
  products (CUPY_TF32=1; torch matmul.allow_tf32 True). Every convolution stays FP32 in both:
  ours are 3-D batched products, and CuPy's ``matmul`` of 3-D operands
  (``gemmStridedBatchedEx``, or ``sgemmBatched`` when a batch broadcasts) computes in FP32
  whatever CUPY_TF32 says (only its 2-D path reads it); so cuDNN keeps cudnn.allow_tf32 False.
  The conv rows are then FP32 against FP32, fc6-fc8 TF32 against TF32.

Threads: NumPy's BLAS uses its default thread count unless ``--threads N`` is
given (then OPENBLAS/OMP/MKL_NUM_THREADS are set before NumPy is imported);
PyTorch is set to the same count (default: the cores this process may use).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

LAYER_NAMES = [
    "conv1",
    "relu1",
    "lrn1",
    "pool1",
    "conv2",
    "relu2",
    "lrn2",
    "pool2",
    "conv3",
    "relu3",
    "conv4",
    "relu4",
    "conv5",
    "relu5",
    "pool5",
    "fc6",
    "relu6",
    "drop6",
    "fc7",
    "relu7",
    "drop7",
    "fc8",
    "loss",
    "sgd",
]
EXTRA_NAMES = ["step", "infer"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--crop", type=int, default=227, help="input size (default 227)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per row (median; default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing (default 1)")
    parser.add_argument(
        "--layers",
        default="all",
        help="comma-separated subset of: " + ",".join(LAYER_NAMES + EXTRA_NAMES) + " (default all)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS/torch threads (default: NumPy's default; torch = usable cores)",
    )
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the reference n x n sgemm")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cpu (NumPy vs PyTorch CPU) or cuda (CuPy vs PyTorch CUDA/cuDNN)",
    )
    parser.add_argument(
        "--tf32",
        choices=("off", "on"),
        default="off",
        help="cuda only: off = strict FP32 in both libraries (default); on = TF32 in the fully "
        "connected layers of both (every convolution stays FP32 in both: CuPy's 3-D products ignore TF32)",
    )
    parser.add_argument("--json", default=None, metavar="PATH", help="also save the results as JSON")
    parser.add_argument(
        "--separate",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="time the step and infer rows with each library in a fresh process of its "
        "own, ROUNDS times in alternating order (default 0: in this process, "
        "taking turns)",
    )
    parser.add_argument("--child", choices=("ours", "torch"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.separate < 0:
        parser.error("--separate must be >= 0")
    wanted = (
        LAYER_NAMES + EXTRA_NAMES
        if args.layers == "all"
        else [name.strip() for name in args.layers.split(",") if name.strip()]
    )
    unknown = [name for name in wanted if name not in LAYER_NAMES + EXTRA_NAMES]
    if unknown:
        parser.error(f"unknown layer(s) {unknown}; choose from {LAYER_NAMES + EXTRA_NAMES}")
    args.wanted = wanted
    return args


# Parse (and set thread variables) before NumPy is imported: OpenBLAS reads them at load time.
if __name__ == "__main__":
    _ARGS = parse_args()
    if _ARGS.threads:
        for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[_var] = str(_ARGS.threads)
    if _ARGS.device == "cuda":  # CuPy reads CUPY_TF32 when it loads
        os.environ["CUPY_TF32"] = "1" if _ARGS.tf32 == "on" else "0"

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import nn  # noqa: E402  (loads no NumPy)

if __name__ == "__main__":
    nn.configure_blas()  # before NumPy loads: OpenBLAS's idle threads sleep at once (nn/blas.py)

import numpy as np  # noqa: E402

try:  # run as a script (benchmarks/ on sys.path) or as ``python -m benchmarks.bench_layers``
    from _common import (  # noqa: E402
        environment_info,
        format_table,
        interleaved_split,
        numpy_blas_info,
        numpy_matmul_rate,
        torch_matmul_rate,
        try_import_torch,
        write_json,
    )
except ImportError:
    from benchmarks._common import (  # noqa: E402
        environment_info,
        format_table,
        interleaved_split,
        numpy_blas_info,
        numpy_matmul_rate,
        torch_matmul_rate,
        try_import_torch,
        write_json,
    )


# --------------------------------------------------------------------------------------------
# AlexNet's layers, in order (§3.5): (name, factory, kind, extra)
#   kind: "conv" / "linear" (GEMM layers, with FLOPs), "relu", "lrn", "pool", "dropout", "loss"
# --------------------------------------------------------------------------------------------
def pool5_size(crop):
    """Side of the map after pool5: conv1 (11/4), then three 3/2 poolings (the convs in between keep size)."""
    side = (crop - 11) // 4 + 1
    for _ in range(3):
        side = (side - 3) // 2 + 1
    return side


def alexnet_layers(rng, crop=227):
    conv = lambda *a, **k: nn.Conv2d(*a, rng=rng, **k)  # noqa: E731
    lin = lambda *a, **k: nn.Linear(*a, rng=rng, **k)  # noqa: E731
    lrn = lambda: nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
    drop = lambda: nn.Dropout(0.5, rng=np.random.default_rng(1))  # noqa: E731
    return [
        ("conv1", conv(3, 96, 11, stride=4), "conv"),
        ("relu1", nn.ReLU(), "relu"),
        ("lrn1", lrn(), "lrn"),
        ("pool1", nn.MaxPool2d(3, 2), "pool"),
        ("conv2", conv(96, 256, 5, padding=2, groups=2), "conv"),
        ("relu2", nn.ReLU(), "relu"),
        ("lrn2", lrn(), "lrn"),
        ("pool2", nn.MaxPool2d(3, 2), "pool"),
        ("conv3", conv(256, 384, 3, padding=1), "conv"),
        ("relu3", nn.ReLU(), "relu"),
        ("conv4", conv(384, 384, 3, padding=1, groups=2), "conv"),
        ("relu4", nn.ReLU(), "relu"),
        ("conv5", conv(384, 256, 3, padding=1, groups=2), "conv"),
        ("relu5", nn.ReLU(), "relu"),
        ("pool5", nn.MaxPool2d(3, 2), "pool"),
        ("flatten", nn.Flatten(), "flatten"),
        ("fc6", lin(256 * pool5_size(crop) ** 2, 4096), "linear"),
        ("relu6", nn.ReLU(), "relu"),
        ("drop6", drop(), "dropout"),
        ("fc7", lin(4096, 4096), "linear"),
        ("relu7", nn.ReLU(), "relu"),
        ("drop7", drop(), "dropout"),
        ("fc8", lin(4096, 1000), "linear"),
    ]


def forward_flops(layer, in_shape, out_shape):
    """2 x multiply-adds of one forward pass (0 for layers that are not a matrix product)."""
    if isinstance(layer, nn.Conv2d):
        n, f, ho, wo = out_shape
        kh, kw = layer.kernel_size
        return 2 * n * f * ho * wo * (layer.in_channels // layer.groups) * kh * kw
    if isinstance(layer, nn.Linear):
        return 2 * in_shape[0] * layer.in_features * layer.out_features
    return 0


def layer_shapes(layers, batch, crop):
    """Input shape of every layer, found by running the stack once on zeros... cheaply, by shape."""
    shapes = []
    shape = (batch, 3, crop, crop)
    for _name, layer, kind in layers:
        shapes.append(shape)
        if kind == "conv" or kind == "pool":
            shape = layer.output_shape(shape)
        elif kind == "flatten":
            shape = (shape[0], int(np.prod(shape[1:])))
        elif kind == "linear":
            shape = (shape[0], layer.out_features)
    return shapes, shape


# --------------------------------------------------------------------------------------------
# PyTorch equivalents (only when torch imports)
# --------------------------------------------------------------------------------------------
def torch_layer_fn(torch, name, layer, kind, device):
    """(callable x -> y, list of torch parameters) computing what ``layer`` computes."""
    F = torch.nn.functional
    if kind == "conv":
        w = device.tensor(layer.weight.data).requires_grad_()
        b = device.tensor(layer.bias.data).requires_grad_()
        return (
            lambda x: F.conv2d(x, w, b, stride=layer.stride, padding=layer.padding, groups=layer.groups)
        ), [w, b]
    if kind == "linear":
        w = device.tensor(layer.weight.data).requires_grad_()
        b = device.tensor(layer.bias.data).requires_grad_()
        return (lambda x: F.linear(x, w, b)), [w, b]
    if kind == "relu":
        return F.relu, []
    if kind == "lrn":
        # nn's alpha multiplies the SUM of squares (the paper); torch's the mean: alpha * n.
        return (
            lambda x: F.local_response_norm(
                x, layer.size, alpha=layer.alpha * layer.size, beta=layer.beta, k=layer.k
            )
        ), []
    if kind == "pool":
        return (lambda x: F.max_pool2d(x, layer.kernel_size, layer.stride)), []
    if kind == "dropout":
        return (lambda x: F.dropout(x, layer.p, training=True)), []
    raise ValueError(kind)


def torch_alexnet(torch, layers):
    """The same stack as a torch.nn.Sequential, with our initial weights."""
    tnn = torch.nn
    mods = []
    for _name, layer, kind in layers:
        if kind == "conv":
            mod = tnn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,
                stride=layer.stride,
                padding=layer.padding,
                groups=layer.groups,
            )
        elif kind == "linear":
            mod = tnn.Linear(layer.in_features, layer.out_features)
        elif kind == "relu":
            mod = tnn.ReLU(inplace=False)
        elif kind == "lrn":
            mod = tnn.LocalResponseNorm(
                layer.size, alpha=layer.alpha * layer.size, beta=layer.beta, k=layer.k
            )
        elif kind == "pool":
            mod = tnn.MaxPool2d(layer.kernel_size, layer.stride)
        elif kind == "flatten":
            mod = tnn.Flatten()
        elif kind == "dropout":
            mod = tnn.Dropout(layer.p)
        else:
            raise ValueError(kind)
        if kind in ("conv", "linear"):
            with torch.no_grad():
                mod.weight.copy_(torch.from_numpy(nn.asnumpy(layer.weight.data)))
                mod.bias.copy_(torch.from_numpy(nn.asnumpy(layer.bias.data)))
        mods.append(mod)
    return tnn.Sequential(*mods)


def rel_err(ours, ref):
    ours = nn.asnumpy(ours)
    ref = ref.detach().cpu().numpy() if hasattr(ref, "detach") else ref
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    scale = np.abs(ref).max()
    return float(np.abs(ours - ref).max() / scale) if scale > 0 else float(np.abs(ours).max())


class Device:
    """Where the benchmark runs: puts arrays and tensors there, and waits for queued GPU work.

    On "cuda" every timed callable is followed by ``synchronize()`` (CuPy's and torch's
    streams), so the clock stops when the GPU has finished, not when the call returned.
    """

    def __init__(self, name, torch):
        self.name, self.torch = name, torch
        self.cupy = None
        if name == "cuda":
            nn.backend.check_device("cuda")  # a clear error when CuPy or the GPU is missing
            import cupy

            self.cupy = cupy
            if torch is not None and not torch.cuda.is_available():
                raise RuntimeError(
                    "--device cuda: this torch has no CUDA; run with --no-torch or a CUDA build of torch"
                )

    def array(self, values):
        return values if self.cupy is None else self.cupy.asarray(values)

    def tensor(self, values):
        tensor = self.torch.from_numpy(np.ascontiguousarray(nn.asnumpy(values)))
        return tensor if self.cupy is None else tensor.cuda()

    def synchronize(self):
        if self.cupy is not None:
            self.cupy.cuda.Device().synchronize()
            if self.torch is not None:
                self.torch.cuda.synchronize()

    def synced(self, candidates):
        """``candidates`` with a synchronization after every callable (nothing added on the CPU)."""
        if self.cupy is None:
            return candidates
        wrap = lambda fn: lambda: (fn(), self.synchronize())  # noqa: E731
        return {name: [wrap(fn) for fn in fns] for name, fns in candidates.items()}

    def precision(self):
        if self.cupy is None:
            return "float32 (CPU: no TF32)"
        if os.environ.get("CUPY_TF32") == "1":
            mode = (
                "TF32 in the 2-D products (fc6-fc8); the convolutions stay FP32 "
                "(3-D products: CuPy's batched GEMM computes in FP32 whatever CUPY_TF32 says)"
            )
        else:
            mode = "strict FP32 (TF32 off)"
        text = f"CuPy {self.cupy.__version__}: {mode} (CUPY_TF32={os.environ.get('CUPY_TF32', 'unset')})"
        if self.torch is not None:
            text += (
                f"; torch: matmul.allow_tf32={self.torch.backends.cuda.matmul.allow_tf32}, "
                f"cudnn.allow_tf32={self.torch.backends.cudnn.allow_tf32}, "
                f"cudnn {self.torch.backends.cudnn.version()}"
            )
        return text


def _timed(device, candidates, args):
    return interleaved_split(device.synced(candidates), reps=args.reps, warmup=args.warmup)


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------
def bench_layer(name, layer, kind, in_shape, out_shape, args, torch, rng, device):
    x = rng.standard_normal(in_shape, dtype=np.float32)
    if kind in ("lrn", "pool"):
        np.maximum(x, 0, out=x)  # they follow a ReLU in AlexNet
    grad = rng.standard_normal(out_shape, dtype=np.float32) * np.float32(1e-3)
    x, grad = device.array(x), device.array(grad)
    layer.train()
    row = {
        "layer": name,
        "kind": kind,
        "in_shape": list(in_shape),
        "out_shape": list(out_shape),
        "flops_fwd": forward_flops(layer, in_shape, out_shape),
    }
    candidates = {"ours": [lambda: layer.forward(x), lambda: layer.backward(grad)]}
    if torch is None:
        return _record(row, _timed(device, candidates, args))

    fn, params = torch_layer_fn(torch, name, layer, kind, device)
    tx = device.tensor(x).requires_grad_()
    tg = device.tensor(grad)
    state = {}

    def t_forward():
        for p in params:
            p.grad = None  # optimizer.zero_grad(set_to_none=True)
        tx.grad = None
        state["y"] = fn(tx)

    def t_backward():
        state["y"].backward(tg)

    candidates["torch"] = [t_forward, t_backward]
    _record(row, _timed(device, candidates, args))

    if kind != "dropout":  # different random masks: nothing to compare
        ours_y = layer.forward(x)
        ours_dx = layer.backward(grad)
        t_forward()
        t_backward()
        row["err_y"] = rel_err(ours_y, state["y"])
        row["err_dx"] = rel_err(ours_dx, tx.grad)
    return row


def bench_loss(batch, args, torch, rng, device):
    logits = device.array(rng.standard_normal((batch, 1000), dtype=np.float32))
    labels = device.array(rng.integers(0, 1000, size=batch))
    loss = nn.SoftmaxCrossEntropyLoss()
    row = {"layer": "loss", "kind": "loss", "in_shape": [batch, 1000], "out_shape": [], "flops_fwd": 0}
    candidates = {"ours": [lambda: loss.forward(logits, labels), lambda: loss.backward()]}
    if torch is None:
        return _record(row, _timed(device, candidates, args))
    tl = device.tensor(logits).requires_grad_()
    ty = device.tensor(labels)
    state = {}

    def t_forward():
        tl.grad = None
        state["l"] = torch.nn.functional.cross_entropy(tl, ty)

    candidates["torch"] = [t_forward, lambda: state["l"].backward()]
    _record(row, _timed(device, candidates, args))
    value = loss.forward(logits, labels)
    dlogits = loss.backward()
    t_forward()
    state["l"].backward()
    row["err_y"] = abs(value - state["l"].item()) / abs(state["l"].item())
    row["err_dx"] = rel_err(dlogits, tl.grad)
    return row


def bench_sgd(layers, args, torch, device):
    """One SGD step (momentum 0.9, weight decay 5e-4, §5) over all of AlexNet's parameters."""
    params = [p for _, layer, _ in layers for p in layer.parameters()]
    for p in params:
        p.grad[...] = 1e-3
    opt = nn.SGD(params, lr=1e-5, momentum=0.9, weight_decay=5e-4)
    count = sum(p.size for p in params)
    row = {"layer": "sgd", "kind": "sgd", "in_shape": [count], "out_shape": [], "flops_fwd": 0}
    # "fwd" column = step, "bwd" column = zero_grad
    candidates = {"ours": [opt.step, opt.zero_grad]}
    if torch is None:
        return _record(row, _timed(device, candidates, args))
    tparams = [device.tensor(p.data).requires_grad_() for p in params]
    for tp in tparams:
        tp.grad = torch.full_like(tp, 1e-3)
    topt = torch.optim.SGD(tparams, lr=1e-5, momentum=0.9, weight_decay=5e-4)

    def t_zero_grad():  # keep .grad allocated, as ours does (set_to_none=False)
        topt.zero_grad(set_to_none=False)

    candidates["torch"] = [topt.step, t_zero_grad]
    return _record(row, _timed(device, candidates, args))


def bench_step(layers, batch, crop, args, torch, rng, device, only=None):
    """One training step of the whole stack: zero_grad, forward, loss, backward, SGD step.

    As in ``alexnet train`` (and in PyTorch, whose input needs no gradient), conv1 does not
    compute the gradient of the images.
    """
    model = nn.Sequential(*[layer for _, layer, _ in layers])
    model.train()
    loss_fn = nn.SoftmaxCrossEntropyLoss()
    opt = nn.SGD(model.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)
    x = device.array(rng.standard_normal((batch, 3, crop, crop), dtype=np.float32))
    y = device.array(rng.integers(0, 1000, size=batch))

    def ours():
        opt.zero_grad()
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        opt.step()

    row = _stack_row("step", layers, batch, crop)
    candidates = {"ours": [ours]}
    layers[0][1].input_grad = False
    if torch is None:
        row = _record(row, _timed(device, _only(candidates, only), args))
        layers[0][1].input_grad = True
        return row
    tmodel = torch_alexnet(torch, layers).to("cuda" if device.cupy is not None else "cpu")
    tmodel.train()
    topt = torch.optim.SGD(tmodel.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)
    tx, ty = device.tensor(x), device.tensor(y)

    def theirs():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
        topt.step()

    candidates["torch"] = [theirs]
    row = _record(row, _timed(device, _only(candidates, only), args))
    layers[0][1].input_grad = True
    return row


def _stack_row(name, layers, batch, crop):
    """The row of a measurement of the whole stack (``name``: step or infer), with its forward flops."""
    flops = sum(
        forward_flops(layer, s_in, s_out) for (layer, s_in, s_out) in _gemm_shapes(layers, batch, crop)
    )
    return {
        "layer": name,
        "kind": name,
        "in_shape": [batch, 3, crop, crop],
        "out_shape": [],
        "flops_fwd": flops,
    }


def _only(candidates, only):
    """The candidates to time: all of them, or the one named ``only`` (a --child process)."""
    return candidates if only is None else {only: candidates[only]}


def bench_infer(layers, batch, crop, args, torch, rng, device, only=None):
    """The forward pass of the whole stack in eval mode (dropout off; torch: eval() and no_grad)."""
    model = nn.Sequential(*[layer for _, layer, _ in layers])
    model.eval()
    x = device.array(rng.standard_normal((batch, 3, crop, crop), dtype=np.float32))
    row = _stack_row("infer", layers, batch, crop)
    candidates = {"ours": [lambda: model.forward(x)]}
    if torch is not None:
        tmodel = torch_alexnet(torch, layers).to("cuda" if device.cupy is not None else "cpu")
        tmodel.eval()
        tx = device.tensor(x)

        def theirs():
            with torch.no_grad():
                return tmodel(tx)

        candidates["torch"] = [theirs]
    _record(row, _timed(device, _only(candidates, only), args))
    model.train()
    return row


def _record(row, timings):
    """Put interleaved_split's medians into ``row`` as <who>_fwd_ms, <who>_bwd_ms, <who>_ms."""
    for who, (steps, total) in timings.items():
        if len(steps) == 2:
            row[f"{who}_fwd_ms"], row[f"{who}_bwd_ms"] = steps[0] * 1e3, steps[1] * 1e3
        row[f"{who}_ms"] = total * 1e3
    return row


def _gemm_shapes(layers, batch, crop):
    shapes, _ = layer_shapes(layers, batch, crop)
    for (_name, layer, kind), s_in in zip(layers, shapes):
        if kind in ("conv", "linear"):
            s_out = layer.output_shape(s_in) if kind == "conv" else (s_in[0], layer.out_features)
            yield layer, s_in, s_out


# --------------------------------------------------------------------------------------------
def main(args):
    torch = None if args.no_torch else try_import_torch()
    env = environment_info()
    threads = args.threads or env["cores"]
    _set_up_torch(torch, args, threads)
    device = Device(args.device, torch)
    blas = numpy_blas_info()

    print(f"python {env['python']} ({env['executable']}), CPU: {env['cpu']}, {env['cores']} usable cores")
    print(
        f"numpy {blas['numpy']}: BLAS {blas.get('blas')} {blas.get('blas_version')} "
        f"[{blas.get('blas_config')}]"
        + (f" threadpools={blas['threadpools']}" if "threadpools" in blas else "")
    )
    if env["env"]:
        print(f"environment: {env['env']}")
    if torch is not None:
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"mkldnn={torch.backends.mkldnn.is_available()}"
        )
    else:
        print("torch not importable (or --no-torch): PyTorch columns omitted")

    print(f"device {args.device}, precision: {device.precision()}")
    mm = numpy_matmul_rate(args.matmul_size, xp=device.cupy, synchronize=device.synchronize)
    mm_torch = torch_matmul_rate(torch, args.matmul_size, device=args.device) if torch is not None else None
    print(
        f"reference: {'CuPy' if device.cupy else 'NumPy'} float32 {args.matmul_size}x{args.matmul_size} matmul = {mm:.1f} GFLOP/s"
        + (f"   (torch.matmul: {mm_torch:.1f} GFLOP/s)" if mm_torch else "")
    )
    print(
        f"batch {args.batch}, input {args.crop}x{args.crop}, median of {args.reps} reps after "
        f"{args.warmup} warm-up\n"
    )

    rng = np.random.default_rng(0)
    layers = alexnet_layers(rng, args.crop)
    for _, layer, _ in layers:
        layer.to(args.device)
    shapes, final_shape = layer_shapes(layers, args.batch, args.crop)
    rows = []
    for (name, layer, kind), s_in in zip(layers, shapes):
        if name not in args.wanted:
            continue
        if kind == "conv":
            s_out = layer.output_shape(s_in)
        elif kind == "pool":
            s_out = layer.output_shape(s_in)
        elif kind == "linear":
            s_out = (s_in[0], layer.out_features)
        else:
            s_out = s_in
        rows.append(bench_layer(name, layer, kind, s_in, s_out, args, torch, rng, device))
        print(f"  timed {name}", file=sys.stderr, flush=True)
    if "loss" in args.wanted:
        rows.append(bench_loss(args.batch, args, torch, rng, device))
    if "sgd" in args.wanted:
        rows.append(bench_sgd(layers, args, torch, device))
    step = infer = None
    if args.separate and {"step", "infer"} & set(args.wanted):
        step, infer = separate_rows(layers, args, torch)
    else:
        if "step" in args.wanted:
            print("  timing the whole training step", file=sys.stderr, flush=True)
            step = bench_step(layers, args.batch, args.crop, args, torch, rng, device)
        if "infer" in args.wanted:
            print("  timing the eval-mode forward pass", file=sys.stderr, flush=True)
            infer = bench_infer(layers, args.batch, args.crop, args, torch, rng, device)
    mm_end = numpy_matmul_rate(args.matmul_size, xp=device.cupy, synchronize=device.synchronize)
    print_table(rows, step, mm, torch is not None, args)
    if infer:
        print(
            f"\neval-mode forward pass (inference), batch {args.batch}, {infer['flops_fwd'] / 1e9:.1f} GFLOP:"
        )
        for who, key in (("ours ", "ours_ms"), ("torch", "torch_ms")):
            if key in infer:
                sec = infer[key] * 1e-3
                print(
                    f"  {who}: {infer[key]:8.0f} ms  {args.batch / sec:7.1f} images/s  "
                    f"{infer['flops_fwd'] / sec / 1e9:6.1f} GFLOP/s"
                )
        if "torch_ms" in infer:
            print(f"  torch/ours = {infer['torch_ms'] / infer['ours_ms']:.2f}")
        print_separate(infer)
    print(
        f"\nreference matmul rate at the start {mm:.1f}, at the end {mm_end:.1f} GFLOP/s"
        + (
            "  -- WARNING: they differ by more than 20%: the machine was busy, trust only the"
            " ratios (ours and torch take turns within every repetition)"
            if abs(mm_end - mm) > 0.2 * max(mm, mm_end)
            else ""
        )
    )
    if args.json:
        write_json(
            args.json,
            {
                "env": env,
                "blas": blas,
                "torch": torch.__version__ if torch else None,
                "threads": threads,
                "device": args.device,
                "precision": device.precision(),
                "batch": args.batch,
                "crop": args.crop,
                "reps": args.reps,
                "matmul_gflops": mm,
                "matmul_gflops_end": mm_end,
                "torch_matmul_gflops": mm_torch,
                "layers": rows,
                "step": step,
                "infer": infer,
            },
        )
        print(f"\nsaved {args.json}")


def _set_up_torch(torch, args, threads):
    """PyTorch's threads, and on CUDA its precision (--tf32) and cuDNN's algorithm search."""
    if torch is None:
        return
    torch.set_num_threads(threads)
    if args.device == "cuda" and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = args.tf32 == "on"
        # Our convolutions are 3-D products, which CuPy computes in FP32 even with CUPY_TF32=1:
        # cuDNN's stay FP32 too, so that a conv row compares like with like.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True  # let cuDNN pick its fastest algorithms


def separate_rows(layers, args, torch):
    """The step and infer rows, each library timed in fresh processes of its own (``--separate``).

    Every round starts one child per library (``--child ours`` without importing torch, ``--child
    torch``), in alternating order; a child builds the same stack and weights (seed 0) and prints
    the medians of its ``--reps`` repetitions as JSON. A row's time is the median over the rounds;
    the rounds' values are kept in ``<who>_rounds_ms``.
    """
    wanted = [name for name in ("step", "infer") if name in args.wanted]
    who_all = ["ours"] + (["torch"] if torch is not None else [])
    results = {who: {name: [] for name in wanted} for who in who_all}
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--batch",
        str(args.batch),
        "--crop",
        str(args.crop),
        "--reps",
        str(args.reps),
        "--warmup",
        str(args.warmup),
        "--layers",
        ",".join(wanted),
        "--device",
        args.device,
        "--tf32",
        args.tf32,
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    for round_index in range(args.separate):
        order = who_all if round_index % 2 == 0 else who_all[::-1]
        for who in order:
            print(
                f"  round {round_index + 1}/{args.separate}: {who} in a process of its own",
                file=sys.stderr,
                flush=True,
            )
            done = subprocess.run(command + ["--child", who], capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(
                    f"--separate: the {who} child failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
                )
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            for name in wanted:
                results[who][name].append(measured[name])
    rows = {}
    flops = sum(
        forward_flops(layer, s_in, s_out)
        for (layer, s_in, s_out) in _gemm_shapes(layers, args.batch, args.crop)
    )
    for name in wanted:
        row = {
            "layer": name,
            "kind": name,
            "in_shape": [args.batch, 3, args.crop, args.crop],
            "out_shape": [],
            "flops_fwd": flops,
            "separate_rounds": args.separate,
        }
        for who in who_all:
            row[f"{who}_ms"] = statistics.median(results[who][name])
            row[f"{who}_rounds_ms"] = results[who][name]
        rows[name] = row
    return rows.get("step"), rows.get("infer")


def child_main(args):
    """``--child WHO``: time only WHO's step / infer rows and print them as one line of JSON."""
    torch = try_import_torch() if args.child == "torch" else None
    if args.child == "torch" and torch is None:
        raise SystemExit("--child torch: torch is not importable")
    _set_up_torch(torch, args, args.threads or environment_info()["cores"])
    device = Device(args.device, torch)
    rng = np.random.default_rng(0)
    layers = alexnet_layers(rng, args.crop)
    for _, layer, _ in layers:
        layer.to(args.device)
    measured = {}
    if "step" in args.wanted:
        measured["step"] = bench_step(
            layers, args.batch, args.crop, args, torch, rng, device, only=args.child
        )[f"{args.child}_ms"]
    if "infer" in args.wanted:
        measured["infer"] = bench_infer(
            layers, args.batch, args.crop, args, torch, rng, device, only=args.child
        )[f"{args.child}_ms"]
    print(json.dumps(measured))


def _rate(flops_fwd, ms):
    return 3 * flops_fwd / (ms * 1e-3) / 1e9 if flops_fwd and ms else None


def print_table(rows, step, mm, with_torch, args):
    headers = ["layer", "output", "fwd ms", "bwd ms", "f+b ms", "GFLOP/s", "%mm"]
    if with_torch:
        headers += ["torch ms", "t GFLOP/s", "t %mm", "torch/ours", "err y", "err dx"]
    table = []
    total_ours = total_torch = 0.0
    for r in rows:
        ours_rate = _rate(r["flops_fwd"], r["ours_ms"])
        out = "x".join(map(str, r["out_shape"][1:])) if r["out_shape"] else "-"
        cells = [
            r["layer"],
            out,
            f"{r['ours_fwd_ms']:.1f}",
            f"{r['ours_bwd_ms']:.1f}",
            f"{r['ours_ms']:.1f}",
            f"{ours_rate:.1f}" if ours_rate else "",
            f"{100 * ours_rate / mm:.0f}%" if ours_rate else "",
        ]
        total_ours += r["ours_ms"]
        if with_torch:
            t_rate = _rate(r["flops_fwd"], r.get("torch_ms"))
            total_torch += r["torch_ms"]
            cells += [
                f"{r['torch_ms']:.1f}",
                f"{t_rate:.1f}" if t_rate else "",
                f"{100 * t_rate / mm:.0f}%" if t_rate else "",
                f"{r['torch_ms'] / r['ours_ms']:.2f}",
                f"{r['err_y']:.1e}" if "err_y" in r else "",
                f"{r['err_dx']:.1e}" if "err_dx" in r else "",
            ]
        table.append(cells)
    if rows:
        cells = ["sum of rows", "", "", "", f"{total_ours:.0f}", "", ""]
        if with_torch:
            cells += [f"{total_torch:.0f}", "", "", f"{total_torch / total_ours:.2f}", "", ""]
        table.append(cells)
        print(format_table(headers, table))
        print(
            "(sgd row: fwd = optimizer step, bwd = zero_grad; torch/ours > 1 means ours is faster;"
            " err = max |ours - torch| / max |torch|)"
        )
        gemm = [r for r in rows if r["flops_fwd"]]
        if gemm:
            share = sum(r["ours_ms"] for r in gemm) / total_ours
            print(
                f"conv+fc layers take {100 * share:.0f}% of our summed time"
                + (
                    f" ({100 * sum(r['torch_ms'] for r in gemm) / total_torch:.0f}% of torch's)"
                    if with_torch
                    else ""
                )
            )
    if step:
        flops = 3 * step["flops_fwd"]
        print(
            f"\nwhole training step (forward, loss, backward, SGD), batch {args.batch}, "
            f"{flops / 1e9:.1f} GFLOP per step:"
        )
        for who, key in (("ours ", "ours_ms"), ("torch", "torch_ms")):
            if key in step:
                sec = step[key] * 1e-3
                rate = flops / sec / 1e9
                print(
                    f"  {who}: {step[key]:8.0f} ms  {args.batch / sec:7.1f} images/s  "
                    f"{rate:6.1f} GFLOP/s  {100 * rate / mm:5.1f}% of the matmul rate"
                )
        if "torch_ms" in step:
            verdict = "faster" if step["torch_ms"] > step["ours_ms"] else "slower"
            print(f"  torch/ours = {step['torch_ms'] / step['ours_ms']:.2f} (ours is {verdict})")
        print_separate(step)


def print_separate(row):
    """Under a step / infer summary: how it was timed, and each round's values with --separate."""
    if not row.get("separate_rounds"):
        print("  (timed in this process" + (", ours and torch taking turns)" if "torch_ms" in row else ")"))
        return
    rounds = "; ".join(
        f"{who} " + ", ".join(f"{ms:.0f}" for ms in row[f"{who}_rounds_ms"])
        for who in ("ours", "torch")
        if f"{who}_rounds_ms" in row
    )
    print(
        f"  (each library in fresh processes of its own, {row['separate_rounds']} rounds in alternating "
        f"order, median of the rounds; per round, ms: {rounds})"
    )


if __name__ == "__main__":
    if _ARGS.child:
        child_main(_ARGS)
    else:
        main(_ARGS)
