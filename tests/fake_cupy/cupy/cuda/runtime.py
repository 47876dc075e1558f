"""``cupy.cuda.runtime`` for one stand-in device."""

from .. import _NAMES, _not_modelled, _not_real, _stand_in

_REAL = frozenset(_NAMES["cupy.cuda.runtime"])


class CUDARuntimeError(RuntimeError):
    pass


def getDeviceCount():  # noqa: N802  (CUDA's names)
    return 1


def getDevice():  # noqa: N802
    return 0


def setDevice(device):  # noqa: N802
    if device != 0:
        raise CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {device}")


def runtimeGetVersion():  # noqa: N802
    return 12080


def driverGetVersion():  # noqa: N802
    return 12080


def getDeviceProperties(device):  # noqa: N802
    setDevice(device)
    return {"name": b"stand-in", "major": 9, "minor": 0, "totalGlobalMem": 0, "multiProcessorCount": 0}


def deviceSynchronize():  # noqa: N802
    _stand_in.count_sync()


is_hip = False


def __getattr__(name):
    if name in _REAL:
        raise _not_modelled("cupy.cuda.runtime", name)
    raise _not_real("module 'cupy.cuda.runtime'", name)
