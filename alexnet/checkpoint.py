"""Checkpoints that lose nothing: everything needed to continue training exactly.

One ``.npz`` file (written by ``nn.save_npz_atomic``: temporary file, fsync,
rename, so a crash never leaves a half-written checkpoint) holds

* ``model/<name>``: every parameter (``model.state_dict()``);
* ``optimizer/<name>``: the SGD velocities v_i of §5 and the learning rate;
* ``mean_image``: the training set's per-pixel mean (§2), so ``predict`` can
  preprocess a new photograph without the dataset;
* ``meta``: one JSON string with the rest: the model's configuration, the
  command-line arguments, the epoch (and step, for a checkpoint written on
  Ctrl-C/SIGTERM in the middle of an epoch), the learning-rate schedule's state,
  the dropout generators' ``bit_generator.state``, the loader's (seed, epoch),
  the class names and the history of per-epoch metrics; for a model imported from ONNX
  (alexnet/onnx_io/) also ``preprocessing``: the channel order and the mean pixel or
  image it expects (alexnet/preprocessing.py; Caffe's models want BGR minus a mean pixel).

The data loader's order and augmentation are functions of (seed, epoch, batch)
(see data/loader.py), so storing the epoch is storing its random state.

Loading is bounded and checked (``Checkpoint``): the model configuration must lie within sane
bounds (``check_model_config``) and every array's ``.npy`` header, read from the zip member
without touching its data, must declare the shape and dtype that configuration implies
(``parameter_shapes``) before anything is decompressed; a file that declares 10^9 values for
fc6 is refused in milliseconds. Parameters must be finite, on load and on save. Pickled
objects are never loaded (``allow_pickle=False``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from nn import save_npz_atomic

from .config import MAX_CLASSES, MAX_CROP, MAX_WIDTH
from .model import INITS, LRN_PAPER, MIN_CROP, AlexNet, check_size, parameter_shapes

FORMAT_VERSION = 1

#: The largest mean image (S x S x 3) and JSON meta a checkpoint may declare.
MAX_IMAGE_SIZE = 4096
MAX_META_CHARS = 64 * 2**20
CONFIG_KEYS = ("num_classes", "crop", "groups", "init", "width", "dropout", "dtype", "lrn_groups", "lrn")
DTYPES = ("float32", "float64")
OPTIMIZER_SCALARS = ("lr", "momentum", "weight_decay")


class CheckpointError(ValueError):
    """A checkpoint that is refused; the message is one line naming the file and the key."""


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_class_list(value: object, num_classes: int) -> bool:
    """True for a list of ``num_classes`` strings (class names or WordNet IDs, one per output)."""
    return isinstance(value, list) and len(value) == num_classes and all(isinstance(v, str) for v in value)


def check_model_config(config: object, where: str, complete: bool = True) -> dict:
    """``config`` (the AlexNet constructor's arguments, ``model.config``) if every value is of
    the right type and within sane bounds, else CheckpointError naming ``where`` and the key.
    ``complete``: num_classes and crop must be present (a checkpoint's config); otherwise any
    subset of the keys is accepted (the hints in an ONNX file's metadata)."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: model_config is a JSON {type(config).__name__}, expected an object")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise CheckpointError(
            f"{where}: model_config has unknown keys {unknown}; expected some of {list(CONFIG_KEYS)}"
        )
    required = ("num_classes", "crop") if complete else ()
    missing = [key for key in required if key not in config]
    if missing:
        raise CheckpointError(f"{where}: model_config lacks {missing}")

    def bad(key, expected):
        return CheckpointError(f"{where}: model_config {key} is {config[key]!r}, expected {expected}")

    checks = {
        "num_classes": (lambda v: _is_int(v) and 1 <= v <= MAX_CLASSES, f"an integer in 1..{MAX_CLASSES}"),
        "crop": (lambda v: _is_int(v) and MIN_CROP <= v <= MAX_CROP, f"an integer in {MIN_CROP}..{MAX_CROP}"),
        "groups": (lambda v: _is_int(v) and v in (1, 2), "1 or 2"),
        "init": (lambda v: v in INITS, f"one of {list(INITS)}"),
        "width": (lambda v: _is_number(v) and 0 < v <= MAX_WIDTH, f"a number in (0, {MAX_WIDTH:g}]"),
        "dropout": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
        "dtype": (lambda v: v in DTYPES, f"one of {list(DTYPES)}"),
        "lrn_groups": (lambda v: _is_int(v) and v in (1, 2), "1 or 2"),
        "lrn": (
            lambda v: (
                isinstance(v, dict)
                and set(v) <= set(LRN_PAPER)
                and all(_is_number(x) and np.isfinite(x) for x in v.values())
            ),
            f"an object with numbers for some of {sorted(LRN_PAPER)}",
        ),
    }
    for key, (ok, expected) in checks.items():
        if key in config and not ok(config[key]):
            raise bad(key, expected)
    if config.get("lrn_groups", 1) == 2 and config.get("groups", 2) != 2:
        raise bad("lrn_groups", "1 with groups 1")
    if complete:
        try:
            check_size(config)
        except ValueError as exc:
            raise CheckpointError(f"{where}: model_config: {exc}") from None
    return config


def npz_headers(path: str | Path) -> dict:
    """``{key: (shape, dtype)}`` of every array in an .npz, from the .npy headers alone: no data
    is read or decompressed, so a member that declares 10^9 values costs nothing to inspect."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            key = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else info.filename
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"entry {key!r} has .npy format {version}, expected 1.0 or 2.0")
            headers[key] = (tuple(int(n) for n in shape), np.dtype(dtype))
    return headers


def expected_entries(meta: dict, headers: dict) -> dict:
    """``{key: (shape, dtype)}`` of the arrays the checkpoint's config allows: the parameters in
    the config's dtype, the optimizer's scalars and velocities (``"f"``: any float), the mean
    image (S x S x 3 with crop <= S <= MAX_IMAGE_SIZE). A key absent here is not expected."""
    config = meta["model_config"]
    dtype = np.dtype(config.get("dtype", "float32"))
    shapes = parameter_shapes(config)
    expected = {f"model/{name}": (shape, dtype) for name, shape in shapes.items()}
    expected.update({f"optimizer/{name}": ((), "f") for name in OPTIMIZER_SCALARS})
    for index, shape in enumerate(shapes.values()):
        expected[f"optimizer/velocity.{index}"] = (shape, "f")
    mean = headers.get("mean_image")
    if mean is not None:
        side = mean[0][0] if mean[0] else 0
        if config["crop"] <= side <= MAX_IMAGE_SIZE:
            expected["mean_image"] = ((side, side, 3), "f")
        else:
            expected["mean_image"] = ((f"S in {config['crop']}..{MAX_IMAGE_SIZE}",) * 2 + (3,), "f")
    return expected


def check_finite(arrays: dict, where: str) -> None:
    """CheckpointError naming the first array of ``arrays`` that holds NaN or an infinity."""
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(
                f"{where}: parameter {key} holds NaN or infinite values; a network with them "
                "computes nothing meaningful"
            )


def save_checkpoint(
    path: str | Path, model: AlexNet, meta: dict, optimizer=None, mean_image: np.ndarray | None = None
) -> str:
    """Write ``model`` (+ ``optimizer``) and the JSON-serialisable ``meta`` dict to ``path``
    atomically. Non-finite parameters are refused before anything is written, so a diverged
    update never replaces a good checkpoint."""
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    if optimizer is not None:
        arrays.update(
            {f"optimizer/{name}": np.asarray(value) for name, value in optimizer.state_dict().items()}
        )
    if mean_image is not None:
        arrays["mean_image"] = np.asarray(mean_image, np.float32)
    check_finite({k: v for k, v in arrays.items() if k.startswith("model/")}, f"not writing {path}")
    meta = dict(meta, format_version=FORMAT_VERSION, model_config=model.config, dropout_rng=model.rng_state())
    arrays["meta"] = np.array(json.dumps(meta))
    return save_npz_atomic(path, arrays)


class Checkpoint:
    """A loaded checkpoint: ``.meta`` (dict), ``.model_state``, ``.optimizer_state``, ``.mean_image``.

    Reads the ``meta`` entry first, checks it (``check_meta``), then compares every array's
    header with what its configuration implies, and only then reads the arrays."""

    def __init__(self, path: str | Path):
        self.path = path
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        try:
            headers = npz_headers(path)
        except Exception as exc:
            raise CheckpointError(
                f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})"
            ) from exc
        if "meta" not in headers:
            raise CheckpointError(f"{path} is not an alexnet checkpoint (no 'meta' entry)")
        for key, (_, dtype) in headers.items():
            if dtype.hasobject:
                raise CheckpointError(
                    f"{path}: entry {key!r} holds Python objects (dtype {dtype}); a checkpoint holds "
                    "only numbers and text (such an entry is never loaded)"
                )
        shape, dtype = headers["meta"]
        if shape != () or dtype.kind != "U" or dtype.itemsize // 4 > MAX_META_CHARS:
            raise CheckpointError(
                f"{path}: entry 'meta' is declared as {dtype} of shape {shape}, expected one JSON "
                f"string of at most {MAX_META_CHARS} characters"
            )
        try:
            with np.load(path, allow_pickle=False) as archive:
                text = str(archive["meta"])
                try:
                    meta = json.loads(text)
                except ValueError as exc:
                    raise CheckpointError(f"{path}: entry 'meta' is not valid JSON ({exc})") from None
                self.meta = check_meta(meta, str(path))
                self._check_headers(headers)
                arrays = {key: archive[key] for key in headers if key != "meta"}
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(
                f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})"
            ) from exc
        check_finite(arrays, str(path))
        self.model_state = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
        self.optimizer_state = {
            k[len("optimizer/") :]: v for k, v in arrays.items() if k.startswith("optimizer/")
        }
        self.mean_image = arrays.get("mean_image")

    def _check_headers(self, headers):
        """Every array's declared (shape, dtype) against the configuration's, before reading data."""
        expected = expected_entries(self.meta, headers)
        for key, (shape, dtype) in headers.items():
            if key == "meta":
                continue
            if key not in expected:
                raise CheckpointError(
                    f"{self.path}: unexpected entry {key!r} (declared {dtype} {list(shape)})"
                )
            want_shape, want_dtype = expected[key]
            dtype_ok = dtype == want_dtype if isinstance(want_dtype, np.dtype) else dtype.kind == want_dtype
            if shape != want_shape or not dtype_ok:
                wanted = want_dtype if isinstance(want_dtype, np.dtype) else "float"
                raise CheckpointError(
                    f"{self.path}: {key} is declared as {dtype} {list(shape)}, expected {wanted} "
                    f"{list(want_shape)} for its model_config; refused before reading its data"
                )
        missing = sorted(k for k in expected if k.startswith("model/") and k not in headers)
        if missing:
            raise CheckpointError(f"{self.path}: parameters {missing} are missing")

    @property
    def config(self) -> dict:
        return self.meta["model_config"]

    @property
    def class_names(self) -> list:
        """Names to print: a name that is only a WordNet ID becomes its ILSVRC-2012 words."""
        from .imagenet_classes import readable_names

        names = readable_names(self.meta.get("class_names"), self.meta.get("wnids"))
        return names or [str(i) for i in range(self.config["num_classes"])]

    def build_model(self, device: str = "cpu") -> AlexNet:
        """An AlexNet with this checkpoint's configuration, weights and dropout generators."""
        config = dict(self.config)
        config["dtype"] = np.dtype(config.get("dtype", "float32"))
        # Checkpoints written before LRN had groups normalized across all maps.
        config.setdefault("lrn_groups", 1)
        model = AlexNet(**config)
        model.load_state_dict(self.model_state)
        try:
            model.set_rng_state(self.meta["dropout_rng"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{self.path}: meta dropout_rng cannot restore the dropout generators "
                f"({type(exc).__name__}: {exc}); expected {{'drop6': state, 'drop7': state}} as written "
                "by save_checkpoint"
            ) from None
        return model.to(device)


def check_meta(meta: object, where: str) -> dict:
    """``meta`` if it is a JSON object whose model_config, dropout_rng, class names and WordNet
    IDs are well formed; otherwise CheckpointError naming ``where`` and the key."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: meta is a JSON {type(meta).__name__}, expected an object")
    if "model_config" not in meta:
        raise CheckpointError(f"{where}: meta has no model_config (the AlexNet constructor's arguments)")
    check_model_config(meta["model_config"], where)
    version = meta.get("format_version", FORMAT_VERSION)
    if not _is_int(version) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: meta format_version is {version!r}, expected at most {FORMAT_VERSION} (written by a "
            "newer version of this project?)"
        )
    rng = meta.get("dropout_rng")
    if not isinstance(rng, dict) or sorted(rng) != ["drop6", "drop7"]:
        found = sorted(rng) if isinstance(rng, dict) else type(rng).__name__
        raise CheckpointError(
            f"{where}: meta dropout_rng is {found}, expected an object with the keys ['drop6', 'drop7']"
        )
    num_classes = meta["model_config"]["num_classes"]
    for key in ("class_names", "wnids"):
        value = meta.get(key)
        if value is not None and not is_class_list(value, num_classes):
            raise CheckpointError(
                f"{where}: meta {key} is not a list of {num_classes} strings (one per class)"
            )
    return meta


def load_checkpoint(path: str | Path) -> Checkpoint:
    return Checkpoint(path)
