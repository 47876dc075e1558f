"""Several processes (or threads) computing one AlexNet together: everything parallel lives here.

    communicator.py   the Communicator interface and its three implementations: one process, MPI
                      (``mpiexec -n N``), and ranks as threads of one process (ThreadGroup)
    exchange.py       AllGather: the towers' exchange as a layer (all-gather forward, reduce-scatter back)
    data_parallel.py  data-parallel training: N processes, one model, the same global batches
    towers.py         the two towers of §3.2 (model-parallel), one per process
    watchdog.py       StopWatchdog: after a stop request, a frozen rank cannot hang the job

How a batch's rows (or a layer's kernels) are split over the ranks is ``data.shards`` (re-exported here).
"""

from data.shards import rank_slice, shard_rows, split_sizes

from .communicator import (
    AgreedError,
    Communicator,
    MPICommunicator,
    SingleProcessCommunicator,
    ThreadCommunicator,
    ThreadGroup,
    abort_on_error,
    check_same_everywhere,
    get_communicator,
    launcher_size,
)
from .data_parallel import BatchRowsMask, DataParallel, check_global_batch, dropout_feature_shapes, select_gpu
from .exchange import AllGather, allgather_uneven, reduce_scatter_uneven
from .towers import (
    EXCHANGE_WHAT,
    EXCHANGES,
    TOWERS,
    ColumnDropout,
    TowerAlexNet,
    TowerSync,
    check_towers_args,
    exchange_bytes,
    join_state_dicts,
    split_state_dict,
    tower_parameter_table,
)
from .watchdog import STOP_TIMEOUT_SECONDS, STOP_TIMEOUT_VARIABLE, StopWatchdog, stop_timeout

__all__ = [
    "rank_slice",
    "shard_rows",
    "split_sizes",
    "AgreedError",
    "Communicator",
    "MPICommunicator",
    "SingleProcessCommunicator",
    "ThreadCommunicator",
    "ThreadGroup",
    "abort_on_error",
    "check_same_everywhere",
    "get_communicator",
    "launcher_size",
    "BatchRowsMask",
    "DataParallel",
    "check_global_batch",
    "dropout_feature_shapes",
    "select_gpu",
    "AllGather",
    "allgather_uneven",
    "reduce_scatter_uneven",
    "EXCHANGE_WHAT",
    "EXCHANGES",
    "TOWERS",
    "ColumnDropout",
    "TowerAlexNet",
    "TowerSync",
    "check_towers_args",
    "exchange_bytes",
    "join_state_dicts",
    "split_state_dict",
    "tower_parameter_table",
    "STOP_TIMEOUT_SECONDS",
    "STOP_TIMEOUT_VARIABLE",
    "StopWatchdog",
    "stop_timeout",
]
