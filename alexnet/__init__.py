"""``alexnet``: the network of Krizhevsky, Sutskever and Hinton (2012), built from ``nn``,
with training, evaluation, prediction and visualisation from the command line
(``python -m alexnet --help``). See docs/ARCHITECTURE.md and docs/alexnet.md.

Like ``nn``, the package imports its modules on first use (nn/lazy.py), so that
``python -m alexnet`` can call ``nn.configure_blas()`` before NumPy loads."""

from nn.lazy import lazy_getattr

_MODULE_OF = {
    "AlexNet": "model",
    "spatial_sizes": "model",
    "format_summary": "summary",
    "layer_rows": "summary",
}

__all__ = list(_MODULE_OF)

__getattr__ = lazy_getattr(__name__, _MODULE_OF)
