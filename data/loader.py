"""Batches for training and evaluation, prepared in background threads (§4.1: augmentation is
computed on the CPU while the accelerator works on the previous batch).

Reproducibility: everything an epoch does (its order and its augmentation) depends only on
``(seed, epoch)``: the order comes from ``default_rng([seed, epoch])`` and batch ``k``'s
augmentation from ``default_rng([seed, epoch, k])``.  So a resumed run that calls
``loader.set_epoch(e)`` (or ``load_state_dict``) sees exactly the batches of an uninterrupted run,
however many threads build them.

Data-parallel training (``shard=(rank, size)``): batch ``k`` stays the GLOBAL batch ``k`` of the
epoch, and this process builds only its rows ``shard_rows(len(batch), rank, size)`` (data/shards.py:
contiguous blocks in rank order). The augmentation is still drawn for the whole batch from
``default_rng([seed, epoch, k])``, so a rank's rows equal the same rows of the one-process batch.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nn.backend import to_device

from .augment import center_crop_batch, ten_crop_batch, train_batch
from .shards import shard_rows


def _to_device(x, y, device):
    if device == "cpu":
        return x, y
    if device != "cuda":
        raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
    return to_device(x, device), to_device(y, device)


class Loader:
    """Iterate over a :class:`data.PreparedDataset` in batches ``(x, y)``.

    ``x``: float32 NCHW ``(B, 3, crop, crop)`` (``ten_crop``: ``(B, 10, 3, crop, crop)``, §4.1),
    ``y``: int64 ``(B,)``; NumPy arrays, or CuPy arrays when ``device="cuda"``.
    ``train=True``: random crops, reflections and PCA lighting (``lighting_std``, §4.1);
    ``train=False``: the centre crop (or ten crops). The mean image is subtracted (§2) and the
    result divided by ``input_scale``.  ``shuffle`` defaults to ``train``.  ``prefetch`` batches are
    built ahead by ``workers`` threads (NumPy releases the GIL in its big copies).

    Each ``iter()`` runs the current epoch and then advances the epoch counter; ``set_epoch(e)``
    chooses the epoch explicitly.  ``(seed, epoch)`` determine everything (see module docstring).
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        crop: int = 224,
        train: bool = True,
        ten_crop: bool = False,
        shuffle=None,
        seed: int = 0,
        device: str = "cpu",
        input_scale: float = 1.0,
        lighting_std: float = 0.1,
        drop_last: bool = False,
        prefetch: int = 2,
        workers=None,
        shard=(0, 1),
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if crop > dataset.size:
            raise ValueError(f"crop {crop} is larger than the prepared images (S={dataset.size})")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.crop = int(crop)
        self.train = bool(train)
        self.ten_crop = bool(ten_crop)
        self.shuffle = self.train if shuffle is None else bool(shuffle)
        self.seed = int(seed)
        self.device = device
        self.input_scale = float(input_scale)
        self.lighting_std = float(lighting_std)
        self.drop_last = bool(drop_last)
        self.prefetch = max(int(prefetch), 0)
        self.workers = min(2, os.cpu_count() or 1) if workers is None else max(int(workers), 0)
        self.epoch = 0
        self.start_batch = 0
        rank, size = (int(v) for v in shard)
        if not 0 <= rank < size:
            raise ValueError(f"shard must be (rank, size) with 0 <= rank < size, got {shard!r}")
        self.shard = (rank, size)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int, start_batch: int = 0):
        """The next iteration runs epoch ``epoch`` (its order and augmentation), from batch
        ``start_batch`` on (a resumed run skips the batches it already trained on without building
        them; batch k is the same batch k either way)."""
        self.epoch = int(epoch)
        self.start_batch = int(start_batch)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict):
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The image order of ``epoch`` (a permutation when shuffling)."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def _batches(self, epoch):
        order = self.epoch_order(epoch)
        return [order[k * self.batch_size : (k + 1) * self.batch_size] for k in range(len(self))]

    def batch_size_of(self, k: int) -> int:
        """How many images global batch ``k`` holds (all ranks together)."""
        return max(0, min(self.batch_size, len(self.dataset) - k * self.batch_size))

    def rows_of(self, k: int):
        """``(start, stop, total)``: this process's rows of global batch ``k`` (data-parallel)."""
        total = self.batch_size_of(k)
        return (*shard_rows(total, *self.shard), total)

    def make_batch(self, epoch: int, k: int, indices: np.ndarray):
        """Build batch ``k`` of ``epoch`` (NumPy) from dataset ``indices`` (with ``shard``: only
        this process's rows of it)."""
        ds = self.dataset
        rows = shard_rows(len(indices), *self.shard) if self.shard[1] > 1 else None
        if self.train and not self.ten_crop:
            rng = np.random.default_rng([self.seed, epoch, k])
            x = train_batch(
                ds.images,
                ds.mean_image,
                ds.eigvals,
                ds.eigvecs,
                self.crop,
                rng,
                indices=indices,
                lighting_std=self.lighting_std,
                input_scale=self.input_scale,
                rows=rows,
            )
            if rows is not None:
                indices = indices[rows[0] : rows[1]]
            return x, np.asarray(ds.labels[indices], np.int64)
        if rows is not None:
            indices = indices[rows[0] : rows[1]]
        if self.ten_crop:
            x = ten_crop_batch(ds.images, ds.mean_image, self.crop, indices, self.input_scale)
        else:
            x = center_crop_batch(ds.images, ds.mean_image, self.crop, indices, self.input_scale)
        return x, np.asarray(ds.labels[indices], np.int64)

    def __iter__(self):
        epoch, start = self.epoch, self.start_batch
        self.start_batch = 0
        batches = list(enumerate(self._batches(epoch)))[start:]
        if self.workers == 0 or self.prefetch == 0:
            for k, idx in batches:
                x, y = self.make_batch(epoch, k, idx)
                yield _to_device(x, y, self.device)
            self.epoch = epoch + 1
            return
        ahead = max(self.prefetch, self.workers)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="data-loader") as pool:
            pending = []
            try:
                for k, idx in batches:
                    pending.append(pool.submit(self.make_batch, epoch, k, idx))
                    if len(pending) > ahead:
                        x, y = pending.pop(0).result()
                        yield _to_device(x, y, self.device)
                while pending:
                    x, y = pending.pop(0).result()
                    yield _to_device(x, y, self.device)
            finally:
                for fut in pending:
                    fut.cancel()
        self.epoch = epoch + 1
