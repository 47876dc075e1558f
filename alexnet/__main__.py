"""``python -m alexnet``: see alexnet/cli.py."""

import sys

import nn

if __name__ == "__main__":
    nn.configure_blas()  # first, before anything loads NumPy (nn/blas.py)
    from .cli import main

    sys.exit(main())
