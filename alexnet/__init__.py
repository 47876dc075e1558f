"""``alexnet``: the network of Krizhevsky, Sutskever and Hinton (2012), built from ``nn``,
with training, evaluation, prediction and visualisation from the command line
(``python -m alexnet --help``). See docs/ARCHITECTURE.md and docs/alexnet.md."""
import nn  # noqa: F401  (before anything loads NumPy: nn then makes OpenBLAS's idle threads sleep, see nn/__init__.py)

from .model import AlexNet, spatial_sizes
from .summary import format_summary, layer_rows

__all__ = ["AlexNet", "spatial_sizes", "format_summary", "layer_rows"]
