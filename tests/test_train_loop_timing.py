"""Where the training loop's time goes (alexnet.train.LoopClock, read by
benchmarks/bench_end_to_end.py) and the malloc setting of ``python -m alexnet train``
(alexnet.train.keep_freed_memory)."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import data
from alexnet.config import TrainConfig
from alexnet.train import LoopClock, StopFlag, build_trainer

ROOT = Path(__file__).resolve().parents[1]


def _shared_data():
    root = Path(os.environ.get("ALEXNET_DATA") or ROOT.parent / "shared" / "data")
    return root / "imagenette-224"


def test_loop_clock_splits_every_step_into_its_parts(tmp_path):
    source = _shared_data()
    if not (source / "train").is_dir():
        pytest.skip("real ImageNet photographs not found: set ALEXNET_DATA or put them in ../shared/data")
    subset = data.prepare_subset(
        source, tmp_path / "tiny", size=72, per_class=2, val_per_class=1, workers=0, quiet=True
    )
    config = TrainConfig(
        data=str(subset),
        crop=67,
        batch_size=4,
        width=0.25,
        init="kaiming",
        input_scale=64.0,
        epochs=1,
        out=str(tmp_path / "run"),
        quiet=True,
    )
    trainer = build_trainer(config)
    start = time.perf_counter()
    with StopFlag(announce=False) as stop:
        stats, _ = trainer.train_epoch(0, stop)
    elapsed = time.perf_counter() - start
    steps = trainer.loop_clock.steps
    assert len(steps) == len(trainer.loader) == 5 and stats.count == 20
    assert all(set(s) == set(LoopClock.PARTS) and min(s.values()) >= 0 for s in steps)
    assert sum(sum(s.values()) for s in steps) <= elapsed
    # the SGD step (forward + backward of AlexNet) outweighs statistics and progress bar together
    assert sum(s["step"] for s in steps) > 5 * sum(s["metrics"] + s["progress"] for s in steps)


PROBE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from alexnet.train import keep_freed_memory
    keep = sys.argv[1] == "keep"
    if keep and not keep_freed_memory():
        print("unsupported")
        sys.exit(0)
    faults = []
    for _ in range(3):   # a 64 MB array, written and freed: the next one faults its pages in again?
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        a = np.ones(1 << 24, np.float32)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        del a
    print(faults[-1])
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc's thresholds are set on Linux only")
def test_keep_freed_memory_serves_the_next_large_array_without_page_faults():
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMPY_MADVISE_HUGEPAGE="0")  # 4 KB pages: 16,384 per 64 MB

    def faults(mode):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, mode],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        return None if out == "unsupported" else int(out)

    kept = faults("keep")
    if kept is None:
        pytest.skip("this C library has no mallopt (not glibc)")
    assert faults("default") > 10_000  # glibc's default: mmap/munmap for each array above 32 MB
    assert kept < 1_000
