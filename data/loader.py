"""Batches for training and evaluation, prepared in background threads (§4.1: augmentation is
computed on the CPU while the accelerator works on the previous batch).

Where each part runs (data/augment.py splits a batch where it becomes float):

* the host's threads draw the randomness and cut the uint8 crops and reflections of the stored
  images;
* the mean patches, the PCA lighting and the input scale (``augment.normalize``) run where the
  batch is used: in the same threads on the CPU, on the GPU with ``device="cuda"``, where the
  threads write the uint8 batch straight into pinned (page-locked) host memory, and the main
  thread copies it to the GPU on a stream of its own (so the copy overlaps the previous step's
  kernels), makes the consumer's stream wait for the copy (an event, not a host wait), and queues
  the float part there (:class:`PinnedUploads`). One copy per batch: pixels, labels and the
  windows and lighting of the mean and shift, packed in one buffer.

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

from nn.backend import array_module, to_device

from .augment import (
    center_mean_patch,
    center_pixels,
    mean_patches,
    normalize,
    ten_crop_mean_patches,
    ten_crop_pixels,
    train_pixels,
)
from .shards import shard_rows

ALIGN = 256  # bytes: every field of an upload starts at a multiple (any dtype's alignment)


class PinnedUploads:
    """A ring of ``slots`` upload buffers, each holding one batch's fields (``fields``: name ->
    (shape, dtype) of the largest batch) in one block of pinned host memory and one device array.

    Batch ``k`` uses slot ``k % slots``. A slot's host block is written again only once its last
    copy has finished (``host``, which waits for that copy's event, if ever it has not finished),
    and its device block only once the consumer's stream has run past the kernels that read it
    (the copy waits for ``release``'s event, on the device). ``upload`` queues the copy on this
    object's non-blocking stream and makes the consumer's current stream wait for it, so no step
    waits on the host for data."""

    def __init__(self, xp, fields: dict, slots: int):
        self.xp, self.slots = xp, int(slots)
        self.layout, offset = {}, 0
        for name, (shape, dtype) in fields.items():
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            self.layout[name] = (offset, tuple(shape), np.dtype(dtype))
            offset += -(-nbytes // ALIGN) * ALIGN
        self.nbytes = offset
        self._pinned = [xp.cuda.alloc_pinned_memory(offset) for _ in range(self.slots)]
        self._host = [np.frombuffer(block, np.uint8, offset) for block in self._pinned]
        self._device = [xp.empty(offset, xp.uint8) for _ in range(self.slots)]
        self._copied = [xp.cuda.Event(disable_timing=True) for _ in range(self.slots)]
        self._used = [xp.cuda.Event(disable_timing=True) for _ in range(self.slots)]
        self.stream = xp.cuda.Stream(non_blocking=True)

    def _views(self, block):
        views = {}
        for name, (offset, shape, dtype) in self.layout.items():
            nbytes = int(np.prod(shape)) * dtype.itemsize
            views[name] = block[offset : offset + nbytes].view(dtype).reshape(shape)
        return views

    def host(self, k: int) -> dict:
        """NumPy views of slot ``k % slots``'s pinned block, free to be written (any thread)."""
        slot = k % self.slots
        if not self._copied[slot].done:  # the GPU is a whole ring behind: wait for it
            self._copied[slot].synchronize()
        return self._views(self._host[slot])

    def upload(self, k: int) -> dict:
        """Copy slot ``k % slots`` to the device on this stream; returns device views of it, which
        the current stream may use at once (it waits for the copy on the device)."""
        slot = k % self.slots
        self.stream.wait_event(self._used[slot])
        self._device[slot].set(self._host[slot], stream=self.stream)
        self._copied[slot].record(self.stream)
        self.xp.cuda.get_current_stream().wait_event(self._copied[slot])
        return self._views(self._device[slot])

    def release(self, k: int) -> None:
        """The current stream's kernels that read slot ``k % slots`` are queued: once they have run,
        the slot's device block may be overwritten."""
        self._used[k % self.slots].record(self.xp.cuda.get_current_stream())


class Loader:
    """Iterate over a :class:`data.PreparedDataset` in batches ``(x, y)``.

    ``x``: float32 NCHW ``(B, 3, crop, crop)`` (``ten_crop``: ``(B, 10, 3, crop, crop)``, §4.1),
    ``y``: int64 ``(B,)``; NumPy arrays, or CuPy arrays when ``device="cuda"``.
    ``train=True``: random crops, reflections and PCA lighting (``lighting_std``, §4.1);
    ``train=False``: the centre crop (or ten crops). The mean image is subtracted (§2) and the
    result divided by ``input_scale``.  ``shuffle`` defaults to ``train``.  ``prefetch`` batches are
    built ahead by ``workers`` threads (NumPy releases the GIL in its big copies). With
    ``device="cuda"`` the threads build only the uint8 part and the float part runs on the GPU
    (module docstring); the batches are the same as on the CPU, computed elsewhere.

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
        mean = dataset.mean_image
        self._mean_image = None if mean is None else np.asarray(mean, np.float32)
        self._host_means = self._fixed_means(self._mean_image)
        self._device_means = None  # the mean image (train) or fixed patches (eval), on the GPU
        self._uploads = None  # PinnedUploads, made on the first pass with device="cuda"

    def _fixed_means(self, mean_image):
        """What the float part subtracts: the mean image (train: cut at each window), or the one
        centre patch / the ten patches, broadcast over every batch (eval)."""
        if mean_image is None or self.train and not self.ten_crop:
            return mean_image
        size = self.dataset.size
        if self.ten_crop:
            return ten_crop_mean_patches(mean_image, size, self.crop)
        return center_mean_patch(mean_image, size, self.crop)

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

    @property
    def _random(self) -> bool:
        return self.train and not self.ten_crop

    def host_part(self, epoch: int, k: int, indices: np.ndarray, out=None) -> dict:
        """The host's (uint8) part of batch ``k`` of ``epoch`` from dataset ``indices`` (with
        ``shard``: only this process's rows of it): a dict of ``pixels`` (uint8 patches, written
        into ``out`` when given), ``labels`` (int64) and, for training, the windows ``ys, xs,
        flips`` and the lighting ``shift`` (float32, or None) of data.augment.train_pixels."""
        ds = self.dataset
        rows = shard_rows(len(indices), *self.shard) if self.shard[1] > 1 else None
        if self._random:
            rng = np.random.default_rng([self.seed, epoch, k])
            part = train_pixels(
                ds.images,
                ds.eigvals,
                ds.eigvecs,
                self.crop,
                rng,
                indices=indices,
                lighting_std=self.lighting_std,
                rows=rows,
                out=out,
            )
        if rows is not None:
            indices = indices[rows[0] : rows[1]]
        if not self._random:
            make = ten_crop_pixels if self.ten_crop else center_pixels
            part = {"pixels": make(ds.images, self.crop, indices, out=out)}
        part["labels"] = np.asarray(ds.labels[indices], np.int64)
        return part

    def float_part(self, part: dict, means):
        """``x`` from a host part (NumPy, or its device copy): data.augment.normalize with the
        mean patches of ``means`` (see ``_fixed_means``), on the part's device."""
        if self._random and means is not None:
            means = mean_patches(means, part["ys"], part["xs"], part["flips"], self.crop)
        return normalize(part["pixels"], means, part.get("shift"), self.input_scale)

    def make_batch(self, epoch: int, k: int, indices: np.ndarray):
        """Build batch ``k`` of ``epoch`` (NumPy ``(x, y)``, on the CPU) from dataset ``indices``
        (with ``shard``: only this process's rows of it)."""
        part = self.host_part(epoch, k, indices)
        return self.float_part(part, self._host_means), part["labels"]

    # -- device="cuda": uint8 uploads through pinned memory -------------------------------------
    def _upload_fields(self) -> dict:
        """name -> (shape, dtype) of the largest batch of this process (the ring's slot layout)."""
        rows = shard_rows(self.batch_size, *self.shard)
        b, c = rows[1] - rows[0], self.crop
        fields = {
            "pixels": ((b * (10 if self.ten_crop else 1), 3, c, c), np.uint8),
            "labels": ((b,), np.int64),
        }
        if self._random:
            fields.update({"ys": ((b,), np.int64), "xs": ((b,), np.int64), "flips": ((b,), np.int64)})
            fields["shift"] = ((b, 3), np.float32)
        return fields

    def _build_into_slot(self, epoch: int, k: int, indices: np.ndarray) -> int:
        """A worker's job with device="cuda": batch ``k``'s host part, written into its pinned slot;
        returns its number of rows."""
        start, stop = shard_rows(len(indices), *self.shard)
        b = stop - start
        views = self._uploads.host(k)
        pixels = views["pixels"][: b * (10 if self.ten_crop else 1)]
        part = self.host_part(epoch, k, indices, out=pixels)
        views["labels"][:b] = part["labels"]
        if self._random:
            for name in ("ys", "xs", "flips"):
                views[name][:b] = part[name]
            if part["shift"] is not None:
                views["shift"][:b] = part["shift"]
        return b

    def _on_device(self, k: int, b: int):
        """Upload batch ``k`` (``b`` rows, in its slot) and queue its float part on the GPU."""
        views = self._uploads.upload(k)
        c = self.crop
        pixels = views["pixels"][: b * (10 if self.ten_crop else 1)]
        part = {"pixels": pixels.reshape((b, 10, 3, c, c)) if self.ten_crop else pixels}
        if self._random:
            part.update({name: views[name][:b] for name in ("ys", "xs", "flips")})
            part["shift"] = views["shift"][:b] if self.lighting_std else None
        x = self.float_part(part, self._device_means)
        y = views["labels"][:b].copy()  # its own array: the slot is written again later
        self._uploads.release(k)
        return x, y

    def _start_device(self):
        if self._uploads is None:
            slots = max(self.prefetch, self.workers) + 2  # see __iter__
            self._uploads = PinnedUploads(array_module("cuda"), self._upload_fields(), slots)
            if self._host_means is not None:
                self._device_means = to_device(self._host_means, "cuda")

    def __iter__(self):
        epoch, start = self.epoch, self.start_batch
        self.start_batch = 0
        batches = list(enumerate(self._batches(epoch)))[start:]
        cuda = self.device == "cuda"
        if cuda:
            self._start_device()
            job = self._build_into_slot
        else:
            job = self.make_batch

        def deliver(k, result):
            return self._on_device(k, result) if cuda else result

        if self.workers == 0 or self.prefetch == 0:
            for k, idx in batches:
                yield deliver(k, job(epoch, k, idx))
            self.epoch = epoch + 1
            return
        # A slot is written for batch k + ahead + 1 at the earliest while batch k is delivered:
        # the ring's ahead + 2 slots never hand out one whose batch has not been uploaded.
        ahead = max(self.prefetch, self.workers)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="data-loader") as pool:
            pending = []
            try:
                for k, idx in batches:
                    pending.append((k, pool.submit(job, epoch, k, idx)))
                    if len(pending) > ahead:
                        k_done, future = pending.pop(0)
                        yield deliver(k_done, future.result())
                while pending:
                    k_done, future = pending.pop(0)
                    yield deliver(k_done, future.result())
            finally:
                for _, future in pending:
                    future.cancel()
        self.epoch = epoch + 1
