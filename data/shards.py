"""The one rule for splitting ``length`` items over ``parts`` ranks: contiguous blocks in rank
order, as even as possible (the first ``length % parts`` ranks get one more).

Data-parallel training splits a batch's rows with it (``data.Loader(shard=...)`` builds only this
rank's rows), and the two towers of §3.2 split every layer's kernels and the classes with it
(``alexnet.parallel``). It lives in ``data`` because data flows files -> data -> alexnet: the
loader cannot import ``alexnet``, while ``alexnet`` may import ``data``.
"""

from __future__ import annotations


def split_sizes(length: int, parts: int) -> list[int]:
    """Lengths of ``parts`` consecutive blocks of ``length`` items (the first ones one longer)."""
    base, extra = divmod(int(length), int(parts))
    return [base + (1 if index < extra else 0) for index in range(int(parts))]


def rank_slice(length: int, rank: int, parts: int) -> slice:
    """The block of ``[0, length)`` that rank ``rank`` of ``parts`` holds (see ``split_sizes``)."""
    sizes = split_sizes(length, parts)
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def shard_rows(total: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``(start, stop)`` of a batch of ``total`` that ``rank`` of ``size`` holds."""
    block = rank_slice(total, rank, size)
    return block.start, block.stop
