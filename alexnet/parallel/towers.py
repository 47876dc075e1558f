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
``nn.exchange.AllGather`` (forward all-gather, backward reduce-scatter); see there for the bytes.
"""
import numpy as np

from nn import (Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, Module, ReLU, Sequential, asnumpy,
                get_array_module)
from nn.exchange import AllGather, allgather_uneven, rank_slice, split_sizes

from .model import AlexNet

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
def split_state_dict(state, rank, towers=TOWERS):
    """Tower ``rank``'s share of a one-process ``AlexNet(groups=2)`` state dict (or of its SGD state):
    rows ``rank_slice(rows, rank, towers)`` of every array along its first axis. 0-d entries (the
    optimizer's lr, momentum, weight decay) are kept whole."""
    out = {}
    for name, value in state.items():
        value = np.asarray(value)
        out[name] = value.copy() if value.ndim == 0 else value[rank_slice(value.shape[0], rank, towers)].copy()
    return out


def join_state_dicts(states):
    """The inverse of ``split_state_dict``: concatenate the towers' arrays along the first axis in rank
    order (0-d entries must agree and are kept once)."""
    names = list(states[0])
    for rank, state in enumerate(states[1:], start=1):
        if list(state) != names:
            raise KeyError(f"join_state_dicts: tower {rank} has entries {sorted(state)}, tower 0 has {sorted(names)}")
    out = {}
    for name in names:
        values = [np.asarray(state[name]) for state in states]
        if values[0].ndim == 0:
            if any(v != values[0] for v in values[1:]):
                raise ValueError(f"join_state_dicts: the towers disagree on {name}: {[v.item() for v in values]}")
            out[name] = values[0].copy()
        else:
            out[name] = np.concatenate(values, axis=0)
    return out


class ColumnDropout(Module):
    """Dropout on this tower's columns ``columns`` of a ``full_width`` layer, with the mask the
    one-process network draws: the wrapped ``nn.Dropout`` (same generator state on every rank) draws
    the full (N, full_width) mask and this tower keeps its columns (§4.2 on fc6 and fc7)."""

    def __init__(self, p, full_width, columns, rng=None):
        self.full = Dropout(p, rng=rng)
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
            return self.full.forward(x)            # test time does not depend on the width
        xp = get_array_module(x)
        mask = self.full.forward(xp.ones((x.shape[0], self.full_width), dtype=x.dtype))   # = the full mask
        self._mask = xp.ascontiguousarray(mask[:, self.columns])
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

    def __init__(self, comm, reference=None, **alexnet_kwargs):
        if comm.size != TOWERS:
            raise ValueError(f"the two towers of §3.2 need exactly {TOWERS} processes (mpiexec -n {TOWERS}), "
                             f"got {comm.size}")
        if reference is None:
            if alexnet_kwargs.get("groups", 2) != 2:
                raise ValueError("the towers are the two-group network (§3.2): groups must be 2, got "
                                 f"{alexnet_kwargs['groups']!r}")
            alexnet_kwargs["groups"] = 2
            if alexnet_kwargs.get("seed") is None:   # the same weights on both ranks
                drawn = int(np.random.SeedSequence().generate_state(1)[0]) if comm.rank == 0 else 0
                alexnet_kwargs["seed"] = int(comm.allreduce_sum(drawn))
            reference = AlexNet(**alexnet_kwargs)
        elif alexnet_kwargs:
            raise TypeError("TowerAlexNet: pass either reference= or AlexNet keyword arguments, not both")
        if reference.groups != 2:
            raise ValueError("the towers are the two-group network (§3.2); got a one-group AlexNet (groups=1)")
        if reference.config["lrn_groups"] != 2:
            raise ValueError("the towers normalize each tower's own maps (§3.2-3.3); LRN across the towers "
                             "(lrn_groups=1, --lrn-across-towers) would need the other tower's maps")
        self.comm, self.rank = comm, comm.rank
        self.config = dict(reference.config)
        self.num_classes, self.crop, self.groups = reference.num_classes, reference.crop, 2
        self.spatial = reference.spatial
        dtype = np.dtype(self.config["dtype"])
        half = {name: getattr(reference, name).out_channels // TOWERS
                for name in ("conv1", "conv2", "conv3", "conv4", "conv5")}
        hidden, classes = reference.fc6.out_features, reference.num_classes
        hidden_sizes, class_sizes = split_sizes(hidden, TOWERS), split_sizes(classes, TOWERS)
        rng = np.random.default_rng(0)      # placeholder values, replaced by the reference's below
        lrn = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)

        self.conv1 = Conv2d(3, half["conv1"], 11, stride=4, dtype=dtype, rng=rng)
        self.relu1, self.norm1, self.pool1 = ReLU(), LocalResponseNorm(**lrn), MaxPool2d(3, 2)
        self.conv2 = Conv2d(half["conv1"], half["conv2"], 5, padding=2, dtype=dtype, rng=rng)
        self.relu2, self.norm2, self.pool2 = ReLU(), LocalResponseNorm(**lrn), MaxPool2d(3, 2)
        self.gather2 = AllGather(comm, axis=1)
        self.conv3 = Conv2d(2 * half["conv2"], half["conv3"], 3, padding=1, dtype=dtype, rng=rng)
        self.relu3 = ReLU()
        self.conv4 = Conv2d(half["conv3"], half["conv4"], 3, padding=1, dtype=dtype, rng=rng)
        self.relu4 = ReLU()
        self.conv5 = Conv2d(half["conv4"], half["conv5"], 3, padding=1, dtype=dtype, rng=rng)
        self.relu5, self.pool5 = ReLU(), MaxPool2d(3, 2)
        self.gather5 = AllGather(comm, axis=1)
        self.flatten = Flatten()
        self.fc6 = Linear(reference.fc6.in_features, hidden_sizes[self.rank], dtype=dtype, rng=rng)
        self.relu6 = ReLU()
        self.drop6 = ColumnDropout(reference.drop6.p, hidden, rank_slice(hidden, self.rank, TOWERS))
        self.gather6 = AllGather(comm, axis=1, sizes=hidden_sizes)
        self.fc7 = Linear(hidden, hidden_sizes[self.rank], dtype=dtype, rng=rng)
        self.relu7 = ReLU()
        self.drop7 = ColumnDropout(reference.drop7.p, hidden, rank_slice(hidden, self.rank, TOWERS))
        self.gather7 = AllGather(comm, axis=1, sizes=hidden_sizes)
        self.fc8 = Linear(hidden, class_sizes[self.rank], dtype=dtype, rng=rng)
        self.gather8 = AllGather(comm, axis=1, downstream="replicated", sizes=class_sizes)

        #: rows of each parameter in the one-process network (to gather the towers' shares back)
        self.full_rows = {name: value.shape[0] for name, value in reference.named_parameters()}
        self.full_num_parameters = reference.num_parameters()
        self.conv1.input_grad = reference.conv1.input_grad       # the image needs no gradient in training
        self.load_full_state_dict(reference.state_dict())
        self.set_rng_state(reference.rng_state())

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
    def exchanges(self):
        return [(name, getattr(self, name)) for name in EXCHANGES]

    def traffic(self):
        """Per exchange point of the last forward/backward: the bytes this rank sent each way and the
        seconds spent in the collective (a list of dicts, forward order)."""
        return [{"exchange": name, "what": EXCHANGE_WHAT[name], "shape": tuple(layer._out_shape or ()),
                 "bytes_forward": layer.bytes_forward, "bytes_backward": layer.bytes_backward,
                 "seconds": layer.seconds_forward + layer.seconds_backward}
                for name, layer in self.exchanges()]

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


def tower_parameter_table(reference):
    """Rows (layer, one-process shape, tower 0 shape, tower 1 shape, what the tower reads) of every
    parameter of ``reference`` (an ``AlexNet(groups=2)``), for printing what each tower holds."""
    reads = {"conv1": "the whole image", "conv2": "its own conv1 maps", "conv3": "ALL conv2 maps (both towers)",
             "conv4": "its own conv3 maps", "conv5": "its own conv4 maps", "fc6": "both pool5 halves",
             "fc7": "all of fc6", "fc8": "all of fc7"}
    rows = []
    for name, value in reference.state_dict().items():
        shares = [tuple(value[rank_slice(value.shape[0], r, TOWERS)].shape) for r in range(TOWERS)]
        rows.append((name, tuple(value.shape), shares[0], shares[1], reads[name.split(".")[0]]))
    return rows


# -- training the towers: `mpiexec -n 2 python -m alexnet train --towers ...` ------------------------
def check_towers_args(args, comm):
    """Refuse, with the reason, a ``--towers`` run that cannot be the two towers of §3.2."""
    if comm.size != TOWERS:
        raise ValueError(f"--towers runs the two towers of §3.2 as two processes, one tower each: start it with "
                         f"mpiexec -n {TOWERS} python -m alexnet train --towers ... (this run has {comm.size} "
                         f"process{'es' if comm.size != 1 else ''})")
    if getattr(args, "groups", 2) != 2:
        raise ValueError("--towers is the two-group network of §3.2; it cannot be combined with --groups 1")
    if getattr(args, "lrn_across_towers", False):
        raise ValueError("--towers normalizes each tower's own maps (§3.3 on one GPU); --lrn-across-towers would "
                         "need the other tower's maps at every LRN layer")


class TowerSync:
    """What the trainer asks of ``alexnet.parallel.DataParallel``, for the two towers.

    The towers are not data-parallel: both ranks read the WHOLE batch and no gradient is averaged
    (each rank owns its parameters). What the ranks must still agree on is when to stop (a
    SIGTERM may reach them one step apart: one tiny all-reduce per step), and rank 0's running
    sums are the run's (both ranks compute the same loss and logits; after a mid-epoch resume only
    rank 0 holds the epoch's earlier sums)."""

    active = True

    def __init__(self, comm):
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
        from .metrics import RunningStats
        mine = [stats.loss_sum, stats.top1, stats.top5, stats.count] if self.comm.is_root else [0.0, 0, 0, 0]
        total = self.comm.allreduce_sum(np.array(mine, np.float64))
        return RunningStats(loss_sum=total[0], top1=int(total[1]), top5=int(total[2]), count=int(total[3]))


def exchange_bytes(reference, batch, itemsize=4):
    """The bytes ONE rank sends at each exchange point per training step, from the shapes alone:
    a list of dicts (exchange, what, values crossing, bytes_forward, bytes_backward) for a batch of
    ``batch`` images through ``reference`` (an ``AlexNet(groups=2)``) in ``itemsize``-byte floats.

    Each rank sends its half of the gathered tensor forward and receives the other half; backward
    it sends the other tower's share of its gradient (reduce-scatter). The logits need nothing back
    (every rank computes the same loss)."""
    s = reference.spatial
    half = lambda n: split_sizes(n, TOWERS)[0]   # noqa: E731 - the longer share (padded to it)
    values = {"gather2": batch * half(reference.conv2.out_channels) * s["pool2"] ** 2,
              "gather5": batch * half(reference.conv5.out_channels) * s["pool5"] ** 2,
              "gather6": batch * half(reference.fc6.out_features),
              "gather7": batch * half(reference.fc7.out_features),
              "gather8": batch * half(reference.fc8.out_features)}
    return [{"exchange": name, "what": EXCHANGE_WHAT[name], "values": values[name],
             "bytes_forward": values[name] * itemsize,
             "bytes_backward": 0 if name == "gather8" else values[name] * itemsize}
            for name in EXCHANGES]
