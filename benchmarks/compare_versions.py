"""Another copy of ``nn``, this one and PyTorch, taking turns in one process.

    mkdir -p /tmp/previous && git archive 2dcacd8 nn | tar -x -C /tmp/previous   # /tmp/previous/nn
    .venv-bench/bin/python benchmarks/compare_versions.py /tmp/previous --batch 128 --crop 112
    .venv-bench/bin/python benchmarks/compare_versions.py /tmp/previous --batch 128 --crop 227 --infer --reps 3

On a shared machine the load changes from minute to minute, and with it even the
ratio to PyTorch (whose threads suffer more from oversubscribed cores than ours).
Here the three candidates run one after another inside every repetition, so a
burst of load hits all three alike: the ratios between them are the figures to
trust. Each builds the AlexNet-shaped stack of ``bench_layers.py`` with the same
weights; the training step is as in ``bench_layers.py`` (conv1 computes no image
gradient), ``--infer`` times the eval-mode forward pass instead. The matmul rate is
printed at the start and at the end as a gauge of the load.
"""

import argparse
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("previous", help="folder holding the other copy of the nn package (FOLDER/nn)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions (median; default 5)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS and torch threads (default 2)")
    parser.add_argument("--infer", action="store_true", help="time the eval-mode forward pass, not a step")
    parser.add_argument("--no-torch", action="store_true", help="only the two copies of nn")
    return parser.parse_args(argv)


def load_copy(folder):
    """The package FOLDER/nn, imported as ``nn_previous`` (its relative imports stay inside it)."""
    init = os.path.join(folder, "nn", "__init__.py")
    if not os.path.isfile(init):
        raise SystemExit(f"compare_versions: expected a package at {init}")
    spec = importlib.util.spec_from_file_location(
        "nn_previous", init, submodule_search_locations=[os.path.dirname(init)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["nn_previous"] = module
    spec.loader.exec_module(module)
    return module


def main(args):
    import nn

    nn.configure_blas()  # before NumPy loads (nn/blas.py); one OpenBLAS, shared by both copies
    import bench_layers
    import numpy as np

    def build(library):
        bench_layers.nn = library  # alexnet_layers builds with the module's ``nn``
        try:
            return bench_layers.alexnet_layers(np.random.default_rng(0), args.crop)
        finally:
            bench_layers.nn = nn

    rng = np.random.default_rng(1)
    x = rng.standard_normal((args.batch, 3, args.crop, args.crop), dtype=np.float32)
    y = rng.integers(0, 1000, size=args.batch)
    candidates = {}
    for name, library in (("previous", load_copy(args.previous)), ("this", nn)):
        layers = build(library)
        layers[0][1].input_grad = False
        model = library.Sequential(*[layer for _, layer, _ in layers])
        loss_fn = library.SoftmaxCrossEntropyLoss()
        opt = library.SGD(model.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)
        if args.infer:
            model.eval()
            candidates[name] = lambda model=model: model.forward(x)
        else:
            model.train()

            def step(model=model, loss_fn=loss_fn, opt=opt):
                opt.zero_grad()
                loss_fn.forward(model.forward(x), y)
                model.backward(loss_fn.backward())
                opt.step()

            candidates[name] = step
    torch = None if args.no_torch else bench_layers.try_import_torch()
    if torch is not None:
        torch.set_num_threads(args.threads)
        tmodel = bench_layers.torch_alexnet(torch, build(nn))
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        if args.infer:
            tmodel.eval()

            def theirs():
                with torch.no_grad():
                    tmodel(tx)
        else:
            tmodel.train()
            topt = torch.optim.SGD(tmodel.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)

            def theirs():
                topt.zero_grad()
                torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
                topt.step()

        candidates["torch"] = theirs

    rate_before = bench_layers.numpy_matmul_rate(2048)
    times = {name: [] for name in candidates}
    for rep in range(args.reps + 1):  # the first round is a warm-up
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            if rep:
                times[name].append(time.perf_counter() - start)
    rate_after = bench_layers.numpy_matmul_rate(2048)
    ms = {name: 1000 * float(np.median(values)) for name, values in times.items()}
    what = "eval-mode forward" if args.infer else "training step"
    print(
        f"{what}, batch {args.batch}, crop {args.crop}, median of {args.reps}; "
        f"matmul {rate_before:.0f} -> {rate_after:.0f} GFLOP/s"
    )
    for name in candidates:
        print(f"  {name:8s} {ms[name]:8.0f} ms   per repetition: {[round(1000 * t) for t in times[name]]}")
    print(f"  previous / this = {ms['previous'] / ms['this']:.3f} (> 1: this copy is faster)")
    if "torch" in ms:
        print(
            f"  torch / previous = {ms['torch'] / ms['previous']:.2f}, torch / this = {ms['torch'] / ms['this']:.2f}"
        )


if __name__ == "__main__":
    _ARGS = parse_args()
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(_ARGS.threads)
    main(_ARGS)
