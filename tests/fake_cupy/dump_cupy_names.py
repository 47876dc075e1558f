"""Write the real CuPy's public names to cupy_14_names.json (the stand-in's whitelist).

Made with the real wheel, which imports without a GPU once its pure-Python
dependencies are present::

    pip download --no-deps cupy-cuda12x==14.2.0 -d /tmp/cupywheel
    python -m venv /tmp/cupyvenv
    /tmp/cupyvenv/bin/pip install /tmp/cupywheel/cupy_cuda12x-14.2.0-*.whl numpy fastrlock
    /tmp/cupyvenv/bin/python tests/fake_cupy/dump_cupy_names.py tests/fake_cupy/cupy_14_names.json

Never run under the stand-in (it refuses to).
"""

import importlib
import json
import sys

# The namespaces the stand-in models (or may model): each becomes one sorted list.
NAMESPACES = [
    "cupy",
    "cupy.ndarray",
    "cupy.ufunc",
    "cupy.cuda",
    "cupy.cuda.runtime",
    "cupy.cuda.Device",
    "cupy.cuda.Stream",
    "cupy.cuda.Event",
    "cupy.cuda.PinnedMemoryPointer",
    "cupy.lib",
    "cupy.lib.stride_tricks",
    "cupy.random",
    "cupy.linalg",
    "cupyx",
    "cupyx.profiler",
]


def resolve(dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def main(out_path):
    import cupy
    import numpy

    if getattr(cupy, "_IS_STAND_IN", False):
        sys.exit("this is the stand-in, not the real CuPy")
    names = {
        "_made_by": "tests/fake_cupy/dump_cupy_names.py with the real cupy-cuda12x wheel",
        "cupy.__version__": cupy.__version__,
    }
    for dotted in NAMESPACES:
        obj = resolve(dotted)
        keep_dunder = isinstance(obj, type)  # a class's dunders are its operators
        names[dotted] = sorted(n for n in dir(obj) if keep_dunder or not n.startswith("_"))
    names["cupy ufuncs"] = sorted(n for n in names["cupy"] if isinstance(getattr(cupy, n), cupy.ufunc))
    # Names that are NumPy's own objects in CuPy (scalar types, dtype, finfo, constants).
    names["cupy names that are numpy's"] = sorted(
        n for n in names["cupy"] if getattr(cupy, n) is getattr(numpy, n, object())
    )
    with open(out_path, "w") as fh:
        json.dump(names, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
