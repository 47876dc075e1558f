"""A package's public names, imported on first use (PEP 562), so that importing it loads nothing heavy.

``nn`` and ``alexnet`` use it: ``import nn`` loads no NumPy, which leaves a program the moment
to call ``nn.configure_blas()`` first (nn/blas.py). This module imports nothing but the standard
library.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, module_of: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``package.<name>`` imports ``package.<module_of[name]>``
    (a submodule when ``name`` is one) on first use, and keeps the value as an attribute."""

    def __getattr__(name: str) -> Any:
        module_name = f"{package}.{module_of.get(name, name)}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise  # the module exists but failed to import something
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = module if name not in module_of or module_of[name] == name else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
