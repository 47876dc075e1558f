"""The paper's two GPUs (§3.2) as two processes: rank g holds tower g of Figure 2.

"We spread the net across two GPUs ... puts half of the kernels (or neurons) on each GPU, with one
additional trick: the GPUs communicate only in certain layers." Rank g (g = 0, 1) holds

    conv1  48 of the 96 kernels (11x11x3; each sees the whole image)   -> ReLU -> LRN -> pool
    conv2  group g: 128 kernels 5x5x48 on its own 48 maps              -> ReLU -> LRN -> pool
                         ==== exchange: all of conv2's maps (pool2, both towers) ====
    conv3  192 of the 384 kernels, 3x3x256 (reading ALL 256 maps)      -> ReLU
    conv4  group g: 192 kernels 3x3x192 on its own 192 maps            -> ReLU
    conv5  group g: 128 kernels 3x3x192                                -> ReLU -> pool
                         ==== exchange: both pool5 halves (fc6's input) ====
    fc6    2048 of the 4096 neurons                                    -> ReLU -> dropout
                         ==== exchange: all 4096 (fc7's input) ====
    fc7    2048 of the 4096 neurons                                    -> ReLU -> dropout
                         ==== exchange: all 4096 (fc8's input) ====
    fc8    half of the class scores
                         ==== exchange: the logits, for the loss (every rank computes the same loss) ====

so that every parameter of the one-process ``AlexNet(groups=2)`` lives on exactly one rank, cut
along its first (output) axis: tower g holds rows ``rank_slice(rows, g, 2)`` of every weight and
bias. Channel order is the one-process network's: its grouped conv2/4/5 give group g the output
channels [g*C/2, (g+1)*C/2) and read input channels [g*C'/2, (g+1)*C'/2); conv1's and conv3's
halves are taken from the same ranges, so each tower's maps are where the next grouped layer of the
one-process network reads them, and the all-gathers concatenate in rank order (tower 0 first).

LRN: each tower normalizes its own maps (``LocalResponseNorm`` on its 48 / 128 maps), which is
``LocalResponseNorm(groups=2)`` of the one-process network; a window across the towers (Caffe's
BVLC AlexNet, ``lrn_groups=1``) would need the neighbouring tower's edge maps and is refused.

Dropout: every rank draws the full-width fc6/fc7 mask from the same generator as the one-process
network (same seed) and keeps its own columns (``ColumnDropout``), so the two-process network is the
one-process network computation for computation, masks included.

Both ranks read the same batch (§3.2: each GPU sees the whole image). The exchange layers are
``AllGather`` (alexnet/parallel/exchange.py: forward all-gather, backward reduce-scatter); see there
for the bytes.

The towers are built from a one-process reference network, layer by layer in its order, taking every
setting from it (kernels, strides, paddings, LRN constants, dropout, widths), so they compute the
reference's function whatever it was configured with.
"""

from __future__ import annotations

import numpy as np

from data.shards import rank_slice, split_sizes
from nn import (
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    Module,
    ReLU,
    Sequential,
    asnumpy,
    get_array_module,
)

from ..metrics import RunningStats
from ..model import AlexNet
from .communicator import Communicator
from .exchange import AllGather, allgather_uneven

TOWERS = 2
#: The points where the towers exchange activations, in forward order (the AllGather layers' names).
EXCHANGES = ("gather2", "gather5", "gather6", "gather7", "gather8")
EXCHANGE_WHAT = {
    "gather2": "conv3's input: all of conv2's maps (pool2)",
    "gather5": "fc6's input: both pool5 halves",
    "gather6": "fc7's input: all of fc6",
    "gather7": "fc8's input: all of fc7",
    "gather8": "the logits, for the loss",
}


# -- the state of the one-process network, cut into towers and put back together --------------------
def split_state_dict(state: dict, rank: int, towers: int = TOWERS) -> dict:
    """Tower ``rank``'s share of a one-process ``AlexNet(groups=2)`` state dict (or of its SGD state):
    rows ``rank_slice(rows, rank, towers)`` of every array along its first axis. 0-d entries (the
    optimizer's lr, momentum, weight decay) are kept whole."""
    out = {}
    for name, value in state.items():
        value = np.asarray(value)
        share = value if value.ndim == 0 else value[rank_slice(value.shape[0], rank, towers)]
        out[name] = share.copy()
    return out


def join_state_dicts(states: list) -> dict:
    """The inverse of ``split_state_dict``: concatenate the towers' arrays along the first axis in rank
    order (0-d entries must agree and are kept once)."""
    names = list(states[0])
    for rank, state in enumerate(states[1:], start=1):
        if list(state) != names:
            raise KeyError(
                f"join_state_dicts: tower {rank} has entries {sorted(state)}, tower 0 has {sorted(names)}"
            )
    out = {}
    for name in names:
        values = [np.asarray(state[name]) for state in states]
        if values[0].ndim == 0:
            if any(v != values[0] for v in values[1:]):
                raise ValueError(
                    f"join_state_dicts: the towers disagree on {name}: {[v.item() for v in values]}"
                )
            out[name] = values[0].copy()
        else:
            out[name] = np.concatenate(values, axis=0)
    return out


class ColumnDropout(Module):
    """Dropout on this tower's columns ``columns`` of a ``full_width`` layer, with the mask the
    one-process network draws: the wrapped ``nn.Dropout`` (same generator state on every rank) draws
    the full (N, full_width) mask with ``draw_mask`` and this tower keeps its columns (§4.2 on fc6
    and fc7)."""

    def __init__(
        self,
        p: float,
        full_width: int,
        columns: slice,
        mode: str = "inverted",
        rng: np.random.Generator | None = None,
    ) -> None:
        self.full = Dropout(p, mode=mode, rng=rng)
        self.full_width, self.columns = int(full_width), columns
        self._mask = None

    @property
    def generator(self):
        return self.full.generator

    def extra_repr(self):
        return f"p={self.full.p}, columns={self.columns.start}:{self.columns.stop} of {self.full_width}"

    def forward(self, x):
        if not self.training:
            self._mask = None
            return self.full.forward(x)  # test time does not depend on the width
        xp = get_array_module(x)
        full = self.full.draw_mask((x.shape[0], self.full_width), x.dtype)
        self._mask = xp.asarray(np.ascontiguousarray(full[:, self.columns]))
        return x * self._mask

    def backward(self, grad_out):
        if self._mask is None:
            return self.full.backward(grad_out)
        self._check_grad(grad_out, self._mask.shape)
        return grad_out * self._mask


class TowerAlexNet(Sequential):
    """Tower ``comm.rank`` of the two-tower AlexNet (§3.2, Figure 2); run one per MPI process.

    ``forward(x)`` returns the FULL logits on every rank (the last exchange gathers them), so the
    loss, its gradient and the metrics are computed as in one process; ``backward(dlogits)``
    accumulates the gradients of this tower's parameters.

    Built from a one-process ``AlexNet(groups=2, ...)``: pass ``reference=`` an existing one, or the
    AlexNet keyword arguments (``num_classes``, ``crop``, ``init``, ``width``, ``dropout``, ``dtype``,
    ``seed``), from which every rank builds the same reference network and keeps its share; so a
    given seed gives the one-process network's weights and dropout masks. With ``seed=None`` rank 0
    draws one and shares it.
    """

    def __init__(self, comm: Communicator, reference: AlexNet | None = None, **alexnet_kwargs) -> None:
        if comm.size != TOWERS:
            raise ValueError(
                f"the two towers of §3.2 need exactly {TOWERS} processes (mpiexec -n {TOWERS}), "
                f"got {comm.size}"
            )
        if reference is None:
            if alexnet_kwargs.get("groups", 2) != 2:
                raise ValueError(
                    "the towers are the two-group network (§3.2): groups must be 2, got "
                    f"{alexnet_kwargs['groups']!r}"
                )
            alexnet_kwargs["groups"] = 2
            if alexnet_kwargs.get("seed") is None:  # the same weights on both ranks
                drawn = int(np.random.SeedSequence().generate_state(1)[0]) if comm.rank == 0 else 0
                alexnet_kwargs["seed"] = int(comm.allreduce_sum(drawn))
            reference = AlexNet(**alexnet_kwargs)
        elif alexnet_kwargs:
            raise TypeError("TowerAlexNet: pass either reference= or AlexNet keyword arguments, not both")
        if reference.groups != 2:
            raise ValueError(
                "the towers are the two-group network (§3.2); got a one-group AlexNet (groups=1)"
            )
        if reference.config["lrn_groups"] != 2:
            raise ValueError(
                "the towers normalize each tower's own maps (§3.2-3.3); LRN across the towers "
                "(lrn_groups=1, --lrn-across-towers) would need the other tower's maps"
            )
        self.comm, self.rank = comm, comm.rank
        self.config = dict(reference.config)
        self.num_classes, self.crop, self.groups = reference.num_classes, reference.crop, 2
        self.spatial = reference.spatial
        dtype = np.dtype(self.config["dtype"])
        self._build_from(reference, dtype)

        #: rows of each parameter in the one-process network (to gather the towers' shares back)
        self.full_rows = {name: value.shape[0] for name, value in reference.named_parameters()}
        self.full_num_parameters = reference.num_parameters()
        self.load_full_state_dict(reference.state_dict())
        self.set_rng_state(reference.rng_state())

    def _build_from(self, reference: AlexNet, dtype: np.dtype) -> None:
        """This tower's layers: the reference's, in its order, each cut to this rank's share, with an
        all-gather wherever the next layer reads what both towers computed (§3.2)."""
        rank, comm = self.rank, self.comm
        rng = np.random.default_rng(0)  # placeholder values, replaced by the reference's weights
        # each tower normalizes its own maps: LRN(groups=2) of the reference is LRN(groups=1) here
        lrn = dict(self.config["lrn"], groups=self.config["lrn_groups"] // TOWERS)
        sizes = None  # the towers' shares of the last activation; None: whole
        last = None
        for name, layer in reference.named_children():
            # an ungrouped conv or fc layer reads both towers' outputs; the gather comes before
            # Flatten, so that pool5's maps are gathered along the channel axis
            reads_everything = (isinstance(layer, Conv2d) and layer.groups == 1) or isinstance(
                layer, (Flatten, Linear)
            )
            if sizes is not None and reads_everything:  # named after the block it ends (pool2: gather2)
                setattr(self, "gather" + last[-1], AllGather(comm, axis=1, sizes=sizes))
                sizes = None
            if isinstance(layer, Conv2d):  # grouped: its own maps; ungrouped: all of them
                sizes = split_sizes(layer.out_channels, TOWERS)
                tower = Conv2d(
                    layer.in_channels // layer.groups,
                    sizes[rank],
                    layer.kernel_size,
                    stride=layer.stride,
                    padding=layer.padding,
                    dtype=dtype,
                    rng=rng,
                    input_grad=layer.input_grad,
                )
            elif isinstance(layer, Linear):
                sizes = split_sizes(layer.out_features, TOWERS)
                tower = Linear(layer.in_features, sizes[rank], dtype=dtype, rng=rng)
            elif isinstance(layer, LocalResponseNorm):
                tower = LocalResponseNorm(**lrn)
            elif isinstance(layer, Dropout):
                width = sum(sizes)
                tower = ColumnDropout(layer.p, width, rank_slice(width, rank, TOWERS), mode=layer.mode)
            elif isinstance(layer, MaxPool2d):
                tower = MaxPool2d(layer.kernel_size, layer.stride)
            elif isinstance(layer, (ReLU, Flatten)):
                tower = type(layer)()
            else:
                raise TypeError(f"TowerAlexNet: no tower share defined for {name} ({type(layer).__name__})")
            setattr(self, name, tower)
            last = name
        # every rank computes the loss on the full logits: nothing to sum backward
        setattr(self, "gather" + last[-1], AllGather(comm, axis=1, downstream="replicated", sizes=sizes))
        gathers = tuple(name for name, layer in self.named_children() if isinstance(layer, AllGather))
        if gathers != EXCHANGES:  # EXCHANGES and EXCHANGE_WHAT describe the paper's layout
            raise ValueError(f"TowerAlexNet: the reference gives exchanges {gathers}, not {EXCHANGES}")

    # -- the one-process network's state <-> this tower's share --------------------------------------
    def load_full_state_dict(self, state):
        """Load this tower's rows of a one-process ``AlexNet(groups=2)`` state dict."""
        return self.load_state_dict(split_state_dict(state, self.rank))

    def gather_rows(self, arrays):
        """Collective: {name: this tower's rows} -> {name: the one-process array}, on every rank.
        Names are parameter names, or ``velocity.i`` for the i-th parameter's SGD velocity."""
        names = list(self.full_rows)
        out = {}
        for key, value in arrays.items():
            value = asnumpy(value)
            if value.ndim == 0:
                out[key] = value.copy()
                continue
            name = names[int(key.split(".")[1])] if key.startswith("velocity.") else key
            sizes = split_sizes(self.full_rows[name], TOWERS)
            out[key] = allgather_uneven(self.comm, np.ascontiguousarray(value), 0, sizes)
        return out

    def full_state_dict(self):
        """Collective: the one-process network's state dict (every tower's rows), on every rank."""
        return self.gather_rows(self.state_dict())

    def full_model_view(self):
        """Collective: an object ``alexnet.checkpoint.save_checkpoint`` writes as a NORMAL one-process
        checkpoint (one-process tools load it; ``train --towers --resume`` splits it again)."""
        return _FullModelView(self.full_state_dict(), self.config, self.rng_state())

    def full_optimizer_view(self, optimizer):
        """Collective: the SGD state of the whole network, as one process's ``SGD.state_dict()``."""
        return _FullOptimizerView(self.gather_rows(optimizer.state_dict()))

    # -- dropout generators (identical on both ranks) -----------------------------------------------
    def dropout_layers(self):
        return [("drop6", self.drop6.full), ("drop7", self.drop7.full)]

    def rng_state(self):
        return {name: layer.generator.bit_generator.state for name, layer in self.dropout_layers()}

    def set_rng_state(self, states):
        for name, layer in self.dropout_layers():
            layer.generator.bit_generator.state = states[name]

    # -- what crosses -------------------------------------------------------------------------------
    def exchanges(self) -> list:
        return [(name, getattr(self, name)) for name in EXCHANGES]

    def traffic(self) -> list:
        """Per exchange point of the last forward/backward: the gathered shape and the bytes this rank
        sent each way (a list of dicts, forward order)."""
        return [
            {
                "exchange": name,
                "what": EXCHANGE_WHAT[name],
                "shape": tuple(layer._out_shape or ()),
                "bytes_forward": layer.bytes_forward,
                "bytes_backward": layer.bytes_backward,
            }
            for name, layer in self.exchanges()
        ]

    def extra_repr(self):
        return f"tower {self.rank} of {TOWERS}, " + ", ".join(f"{k}={v!r}" for k, v in self.config.items())


class _FullModelView:
    """What ``save_checkpoint`` needs of a model: ``state_dict()``, ``config``, ``rng_state()``."""

    def __init__(self, state, config, rng_state):
        self._state, self.config, self._rng_state = state, config, rng_state

    def state_dict(self):
        return self._state

    def rng_state(self):
        return self._rng_state


class _FullOptimizerView:
    def __init__(self, state):
        self._state = state

    def state_dict(self):
        return self._state


def tower_parameter_table(reference: AlexNet) -> list:
    """Rows (layer, one-process shape, tower 0 shape, tower 1 shape, what the tower reads) of every
    parameter of ``reference`` (an ``AlexNet(groups=2)``), for printing what each tower holds."""
    reads = {
        "conv1": "the whole image",
        "conv2": "its own conv1 maps",
        "conv3": "ALL conv2 maps (both towers)",
        "conv4": "its own conv3 maps",
        "conv5": "its own conv4 maps",
        "fc6": "both pool5 halves",
        "fc7": "all of fc6",
        "fc8": "all of fc7",
    }
    rows = []
    for name, value in reference.state_dict().items():
        shares = [tuple(value[rank_slice(value.shape[0], r, TOWERS)].shape) for r in range(TOWERS)]
        rows.append((name, tuple(value.shape), shares[0], shares[1], reads[name.split(".")[0]]))
    return rows


# -- training the towers: `mpiexec -n 2 python -m alexnet train --towers ...` ------------------------
def check_towers_args(args, comm: Communicator) -> None:
    """Refuse, with the reason, a ``--towers`` run that cannot be the two towers of §3.2."""
    if comm.size != TOWERS:
        raise ValueError(
            f"--towers runs the two towers of §3.2 as two processes, one tower each: start it "
            f"with mpiexec -n {TOWERS} python -m alexnet train --towers ... (this run has "
            f"{comm.size} process{'es' if comm.size != 1 else ''})"
        )
    if getattr(args, "groups", 2) != 2:
        raise ValueError("--towers is the two-group network of §3.2; it cannot be combined with --groups 1")
    if getattr(args, "lrn_across_towers", False):
        raise ValueError(
            "--towers normalizes each tower's own maps (§3.3 on one GPU); --lrn-across-towers "
            "would need the other tower's maps at every LRN layer"
        )


class TowerSync:
    """What the trainer asks of :class:`~alexnet.parallel.DataParallel`, for the two towers.

    The towers are not data-parallel: both ranks read the WHOLE batch and no gradient is averaged
    (each rank owns its parameters). What the ranks must still agree on is when to stop (a
    SIGTERM may reach them one step apart: one tiny all-reduce per step), and rank 0's running
    sums are the run's (both ranks compute the same loss and logits; after a mid-epoch resume only
    rank 0 holds the epoch's earlier sums)."""

    active = True

    def __init__(self, comm: Communicator) -> None:
        self.comm = comm
        self.stop_seen = False

    def broadcast_state(self):
        """Nothing to broadcast: each rank holds a different tower (built from the same seed)."""

    def step(self, model_step, x, y, rows, stop_requested):
        loss, logits = model_step(x, y)
        self.stop_seen = self.any(stop_requested)
        return loss, logits, loss

    def any(self, flag):
        return bool(self.comm.allreduce_sum(int(bool(flag))))

    def global_stats(self, stats):
        """Rank 0's running sums, on every rank."""
        mine = [stats.loss_sum, stats.top1, stats.top5, stats.count] if self.comm.is_root else [0.0, 0, 0, 0]
        total = self.comm.allreduce_sum(np.array(mine, np.float64))
        return RunningStats(loss_sum=total[0], top1=int(total[1]), top5=int(total[2]), count=int(total[3]))


def exchange_bytes(reference: AlexNet, batch: int, itemsize: int = 4) -> list:
    """The bytes ONE rank sends at each exchange point per training step, from the shapes alone:
    a list of dicts (exchange, what, values crossing, bytes_forward, bytes_backward) for a batch of
    ``batch`` images through ``reference`` (an ``AlexNet(groups=2)``) in ``itemsize``-byte floats.

    Each rank sends its half of the gathered tensor forward and receives the other half; backward
    it sends the other tower's share of its gradient (reduce-scatter). The logits need nothing back
    (every rank computes the same loss)."""
    s = reference.spatial
    half = lambda n: split_sizes(n, TOWERS)[0]  # noqa: E731 - the longer share (padded to it)
    values = {
        "gather2": batch * half(reference.conv2.out_channels) * s["pool2"] ** 2,
        "gather5": batch * half(reference.conv5.out_channels) * s["pool5"] ** 2,
        "gather6": batch * half(reference.fc6.out_features),
        "gather7": batch * half(reference.fc7.out_features),
        "gather8": batch * half(reference.fc8.out_features),
    }
    return [
        {
            "exchange": name,
            "what": EXCHANGE_WHAT[name],
            "values": values[name],
            "bytes_forward": values[name] * itemsize,
            "bytes_backward": 0 if name == "gather8" else values[name] * itemsize,
        }
        for name in EXCHANGES
    ]
