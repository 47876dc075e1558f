"""Import (``python -m alexnet import-onnx``): an AlexNet-shaped ONNX file -> our AlexNet, a checkpoint.

Reads a file of the shape export.py writes, ours or the model zoo's ``bvlcalexnet`` (Caffe's
BVLC AlexNet via Caffe2: input ``data_0`` 1x3x224x224, weights ``conv1_w_0`` ..., LRN across
all maps, Dropout nodes, a Reshape before fc6, Softmax output ``prob_1``). graph.py turns its
nodes into a chain of layers (operators: Conv, Relu, LRN, Split/LRN/Concat, MaxPool, Flatten,
Reshape, Gemm, Dropout, Identity, Softmax; any opset the ONNX checker accepts); this module
checks their shapes against §3.5, infers the configuration (groups, width, crop, LRN per
tower or across all maps), converts the conventions back (ONNX's LRN alpha is divided by the
window size n, the paper's is not: alpha_paper = alpha_onnx / n; Gemm without transB stores
W as (in, out)) and loads the weights into our AlexNet. What it cannot map it refuses, with
a one-line OnnxError naming the node and its op type. Weights must be floating-point (an
integer initializer is refused, not cast) and finite; the ``alexnet.model_config`` metadata
must be an object of the AlexNet constructor's arguments within the checkpoint's bounds
(alexnet/checkpoint.py ``check_model_config``).

Writing the checkpoint into a run folder (one holding ``.lock`` or a run's files) holds the
run's lock (``RunLock``) while it writes, and a training checkpoint (with optimizer state) is
replaced only with ``--overwrite``.

Channel order and mean of a foreign file: Caffe-trained models expect BGR, 0..255, minus
a mean pixel. A file without our metadata is recorded as BGR with Caffe's mean pixel
(B, G, R) = (104, 117, 123), and the importer says so; ``--channel-order`` and
``--mean-pixel`` override (metadata.py). See alexnet/preprocessing.py for how
predict/evaluate apply it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..checkpoint import CheckpointError, check_model_config, npz_headers, save_checkpoint
from ..model import CONV_LAYERS, FC_WIDTH, MIN_CROP, AlexNet, scaled_channels, spatial_sizes
from ..preprocessing import CHANNEL_ORDERS, InputSpec
from ..rundir import LOCK_NAME, RunDirError, RunLock, existing_run_files, saving
from .graph import Graph, check_sequence, label, load_onnx_file, walk
from .metadata import (
    META_PREFIX,
    OnnxError,
    json_metadata,
    one_line,
    read_class_names,
    read_input_spec,
    read_metadata,
)


def import_onnx(
    path: str | Path,
    channel_order: str | None = None,
    mean_pixel: list | None = None,
    input_scale: float | None = None,
    image_size: int | None = None,
    quiet: bool = False,
) -> tuple[AlexNet, InputSpec, dict, list]:
    """Read an AlexNet-shaped ONNX file. Returns ``(model, spec, meta, notes)``: our AlexNet with the
    file's weights, its InputSpec, the checkpoint meta (class names, WordNet IDs, source) and the
    notes printed for the user (what was inferred or assumed)."""
    path = Path(path)
    if channel_order is not None and channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"--channel-order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if mean_pixel is not None and len(mean_pixel) != 3:
        raise ValueError(f"--mean-pixel needs 3 values, got {list(mean_pixel)}")
    onnx_model = load_onnx_file(path)
    opset = next((o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx")), 1)
    graph = Graph(onnx_model, path)
    meta_props = read_metadata(onnx_model)
    saved_config = json_metadata(path, meta_props, "model_config")
    if saved_config is not None:
        try:
            check_model_config(saved_config, f"{path}: metadata {META_PREFIX}model_config", complete=False)
        except CheckpointError as exc:
            raise OnnxError(str(exc)) from None
    saved_config = saved_config or {}
    notes = []

    input_side = _input_side(path, graph.input)
    layers, last = walk(graph, opset)
    check_sequence(path, layers)
    convs, lrns, pools, fcs, flatten = (
        [info for kind, info in layers if kind == k] for k in ("conv", "lrn", "pool", "fc", "flatten")
    )
    stray = [name for name in graph.outputs if name not in {fcs[-1]["node"].output[0], last}]
    if stray:
        raise OnnxError(
            f"{path}: non-AlexNet structure: graph output {stray[0]!r} is not the classifier's output"
        )
    _check_pools(path, pools)
    groups = _check_convs(path, convs)
    lrn_groups = _check_lrns(path, lrns, convs, groups)
    channels = [int(c["weight"].shape[0]) for c in convs]
    hidden, num_classes, pool5_side = _check_classifier(path, fcs, flatten[0], channels[4])
    width = _infer_width(path, channels, hidden, groups, saved_config.get("width"))
    crop = _infer_crop(path, input_side, pools, convs, pool5_side, saved_config.get("crop"), notes)

    lrn = lrns[0]["params"]
    saved_lrn = saved_config.get("lrn")
    if saved_lrn and all(math.isclose(float(saved_lrn[k]), float(lrn[k]), rel_tol=1e-6) for k in lrn):
        lrn = {k: saved_lrn[k] for k in lrn}  # our own file: the exact values its float32 attributes round
    config = {
        "num_classes": num_classes,
        "crop": crop,
        "groups": groups,
        "width": width,
        "lrn_groups": lrn_groups,
        "lrn": lrn,
        "init": saved_config.get("init", "paper"),
        "dropout": float(saved_config.get("dropout", 0.5)),
    }
    model = _build_model(path, config, convs, fcs)

    spec = read_input_spec(
        path,
        meta_props,
        crop,
        channel_order,
        mean_pixel,
        input_scale,
        image_size,
        notes,
        ours=bool(saved_config),
    )
    names, wnids = read_class_names(path, meta_props, num_classes, notes)
    meta = {
        "source": {
            "onnx": str(path),
            "sha256": _sha256(path),
            "producer": f"{onnx_model.producer_name} {onnx_model.producer_version}".strip(),
            "opset": int(opset),
            "graph": onnx_model.graph.name,
            "notes": notes,
        },
        "class_names": names,
        "wnids": wnids,
        "image_size": spec.image_size,
        "args": {"input_scale": spec.input_scale},
        "preprocessing": spec.to_meta(),
        "epoch": None,
        "history": [],
    }
    if not quiet:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    return model, spec, meta, notes


def import_to_checkpoint(
    onnx_path: str | Path, out_path: str | Path, **kwargs
) -> tuple[AlexNet, InputSpec, dict]:
    """Import ``onnx_path`` and write a normal checkpoint to ``out_path``; returns (model, spec, meta)."""
    model, spec, meta, _ = import_onnx(onnx_path, **kwargs)
    mean_image = spec.mean_image if spec.mean_kind == "image" else None
    with saving(out_path):
        save_checkpoint(out_path, model, meta, mean_image=mean_image)
    return model, spec, meta


def _input_side(path, value_info):
    """The declared side of the square input (None when not fixed)."""
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise OnnxError(
            f"{path}: wrong shapes: input {value_info.name!r} has {len(dims)} dimensions, "
            "expected 4 (batch, 3 channels, height, width)"
        )
    values = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if values[1] not in (None, 3):
        raise OnnxError(
            f"{path}: wrong shapes: input {value_info.name!r} has {values[1]} channels, expected 3"
        )
    if values[2] != values[3]:
        raise OnnxError(
            f"{path}: wrong shapes: input {value_info.name!r} is {values[2]} x {values[3]}; "
            "AlexNet takes square crops"
        )
    return values[2]


def _check_pools(path, pools):
    """pool1, pool2, pool5: overlapping 3 x 3 windows, stride 2 (§3.4); padding is checked with the crop."""
    for name, pool in zip(("pool1", "pool2", "pool5"), pools):
        if pool["kernel"] != [3, 3] or pool["strides"] != [2, 2]:
            raise OnnxError(
                f"{path}: wrong shapes: {name} node {label(pool['node'])} pools {pool['kernel']} "
                f"with stride {pool['strides']}; AlexNet's overlapping pooling is 3 x 3, "
                "stride 2 (§3.4)"
            )


def _check_convs(path, convs):
    """Kernel, stride and padding of §3.5; returns the groups of conv2, conv4, conv5 (1 or 2, §3.2)."""
    groups_seen = []
    for (name, _, kernel, stride, padding, two_tower_groups), conv in zip(CONV_LAYERS, convs):
        node = conv["node"]
        if list(conv["weight"].shape[2:]) != [kernel, kernel] or conv["kernel"] != [kernel, kernel]:
            raise OnnxError(
                f"{path}: wrong shapes: {name} node {label(node)} has {conv['kernel']} kernels "
                f"(weight {list(conv['weight'].shape)}), expected {kernel} x {kernel}"
            )
        if (
            conv["strides"] != [stride, stride]
            or conv["pads"] != [padding] * 4
            or conv["dilations"] != [1, 1]
        ):
            raise OnnxError(
                f"{path}: wrong shapes: {name} node {label(node)} has strides {conv['strides']}, "
                f"pads {conv['pads']}, dilations {conv['dilations']}; expected stride {stride}, "
                f"padding {padding} (the paper's AlexNet)"
            )
        if two_tower_groups == 1 and conv["group"] != 1:
            raise OnnxError(
                f"{path}: non-AlexNet structure: {name} node {label(node)} has group "
                f"{conv['group']}; in AlexNet {name} sees all maps (§3.2)"
            )
        if two_tower_groups == 2:
            groups_seen.append(conv["group"])
    if set(groups_seen) not in ({1}, {2}):
        raise OnnxError(
            f"{path}: non-AlexNet structure: conv2, conv4, conv5 have groups {groups_seen}; "
            "expected all 1 (one tower) or all 2 (the two GPUs of §3.2)"
        )
    return groups_seen[0]


def _check_lrns(path, lrns, convs, groups):
    """The same LRN settings in both layers; returns lrn_groups (1: across all maps, 2: per tower)."""
    if lrns[0]["params"] != lrns[1]["params"] or lrns[0]["groups"] != lrns[1]["groups"]:
        raise OnnxError(
            f"{path}: the two LRN layers differ ({lrns[0]['params']}, groups {lrns[0]['groups']} "
            f"vs {lrns[1]['params']}, groups {lrns[1]['groups']}); this AlexNet uses one setting"
        )
    lrn_groups = lrns[0]["groups"]
    if lrn_groups == 2 and groups != 2:
        raise OnnxError(
            f"{path}: non-AlexNet structure: LRN per tower (Split/LRN/Concat) in a one-tower network"
        )
    for lrn, conv in zip(lrns, convs[:2]):
        sizes = lrn.get("split_sizes")
        if sizes is not None and sum(sizes) != conv["weight"].shape[0]:
            raise OnnxError(
                f"{path}: wrong shapes: {label(lrn['split'])} splits {sum(sizes)} maps, the "
                f"convolution before it makes {conv['weight'].shape[0]}"
            )
    return lrn_groups


def _check_classifier(path, fcs, flatten, c5):
    """fc6 -> fc7 -> fc8 chain; returns (hidden units, classes, side of the maps after pool5)."""
    hidden, num_classes, fc6_in = (
        int(fcs[0]["weight"].shape[0]),
        int(fcs[2]["weight"].shape[0]),
        int(fcs[0]["weight"].shape[1]),
    )
    if [list(f["weight"].shape) for f in fcs[1:]] != [[hidden, hidden], [num_classes, hidden]]:
        raise OnnxError(
            f"{path}: wrong shapes: fc6/fc7/fc8 weights {[list(f['weight'].shape) for f in fcs]} do not chain"
        )
    area, rem = divmod(fc6_in, c5)
    pool5_side = math.isqrt(area)
    if rem or pool5_side**2 != area or pool5_side < 1:
        raise OnnxError(f"{path}: wrong shapes: fc6 takes {fc6_in} inputs, not {c5} maps of a square size")
    if flatten["shape"] is not None:
        first, second = flatten["shape"]
        if first not in (0, -1, 1) or second not in (-1, fc6_in) or first == second == -1:
            raise OnnxError(
                f"{path}: wrong shapes: node {label(flatten['node'])} reshapes to "
                f"{flatten['shape']}; expected (batch, {fc6_in}) before fc6"
            )
    return hidden, num_classes, pool5_side


def _infer_width(path, channels, hidden, groups, hint):
    candidates = ([hint] if hint else []) + [hidden / FC_WIDTH, channels[0] / CONV_LAYERS[0][1]]
    for width in candidates:
        if max(1, int(round(FC_WIDTH * width))) != hidden:
            continue
        if all(scaled_channels(c, width, groups) == got for (_, c, *_), got in zip(CONV_LAYERS, channels)):
            return float(width)
    raise OnnxError(
        f"{path}: wrong shapes: conv1..conv5 have {channels} maps and fc6/fc7 {hidden} units, "
        "which is not AlexNet's 96-256-384-384-256 / 4096 at any single width"
    )


def _infer_crop(path, input_side, pools, convs, pool5_side, meta_crop, notes):
    def matches(crop):
        sizes = spatial_sizes(crop)
        if sizes["pool5"] != pool5_side:
            return False
        return all(_pool_matches(p, sizes[f"conv{i}"]) for p, i in zip(pools, (1, 2, 5)))

    candidates = [c for c in range(MIN_CROP, 1200) if matches(c)]
    if input_side is not None and input_side in candidates:
        return input_side
    if not candidates:
        raise OnnxError(
            f"{path}: wrong shapes: fc6 expects {pool5_side} x {pool5_side} maps after pool5 and "
            "no input size gives that with this project's pooling"
        )
    if input_side is None:
        crop = meta_crop if meta_crop in candidates else candidates[0]
        notes.append(
            f"the file does not fix the input size; crop {crop} inferred from fc6's input "
            f"({pool5_side} x {pool5_side} maps after pool5)"
        )
        return crop
    # The file's own sizes at its declared input (Caffe rounds pooling up: extra end pads / ceil_mode).
    side = input_side
    for i, conv in enumerate(convs, 1):
        side = (side + conv["pads"][0] + conv["pads"][2] - conv["kernel"][0]) // conv["strides"][0] + 1
        if i in (1, 2, 5):
            p = pools[(1, 2, 5).index(i)]
            side = _pool_out(side, p["kernel"][0], p["strides"][0], p["pads"][0], p["pads"][2], p["ceil"])
    if side != pool5_side:
        raise OnnxError(
            f"{path}: wrong shapes: a {input_side} x {input_side} input gives {side} x {side} "
            f"maps after pool5, but fc6 expects {pool5_side} x {pool5_side}"
        )
    crop = min(candidates, key=lambda c: (abs(c - input_side), -c))
    notes.append(
        f"the file declares {input_side} x {input_side} inputs with padded (Caffe's rounded-up) "
        f"max-pooling; this project pools without padding, which gives the same "
        f"{pool5_side} x {pool5_side} maps for fc6 at {crop} x {crop} (Caffe's original crop for "
        f"AlexNet is 227), so the checkpoint uses crop {crop}; the weights are unchanged"
    )
    return crop


def _pool_out(size, kernel, stride, pad_begin, pad_end, ceil):
    span = size + pad_begin + pad_end - kernel
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad_begin:  # the last window must start inside
        out -= 1
    return out


def _pool_matches(pool, size):
    """True when ONNX's MaxPool ``pool`` on a ``size`` x ``size`` map is our unpadded floor pooling
    (begin pads 0 and the end padding/ceil never adds a window)."""
    pads = pool["pads"]
    if pads[0] or pads[1]:
        return False
    ours = (size - 3) // 2 + 1
    return all(_pool_out(size, 3, 2, 0, end, pool["ceil"]) == ours for end in (pads[2], pads[3]))


def _build_model(path, config, convs, fcs):
    """Our AlexNet with ``config`` and the file's weights (float32)."""
    try:
        model = AlexNet(**config, seed=0)
    except ValueError as exc:
        raise OnnxError(f"{path}: wrong shapes: {one_line(exc)}") from None
    expected = model.state_dict()
    state = {}
    for name, layer in zip([name for name, *_ in CONV_LAYERS] + ["fc6", "fc7", "fc8"], convs + fcs):
        bias = layer["bias"] if layer["bias"] is not None else np.zeros(layer["weight"].shape[0], np.float32)
        for what, value in (("weight", layer["weight"]), ("bias", bias)):
            key = f"{name}.{what}"
            if tuple(value.shape) != tuple(expected[key].shape):
                raise OnnxError(
                    f"{path}: wrong shapes: {name} ({layer['weight_name']!r}) {what} is "
                    f"{list(value.shape)}, expected {list(expected[key].shape)} for AlexNet with "
                    f"groups={config['groups']}, width={config['width']:g}, "
                    f"{config['num_classes']} classes"
                )
            if np.asarray(value).dtype.kind != "f":
                raise OnnxError(
                    f"{path}: {name} ({layer['weight_name']!r}) {what} holds {np.asarray(value).dtype}, "
                    "expected floating-point values (float32 or float64)"
                )
            if not np.isfinite(value).all():
                raise OnnxError(
                    f"{path}: parameter {key} ({layer['weight_name']!r}) holds NaN or infinite values"
                )
            state[key] = np.asarray(value, np.float32)
    return model.load_state_dict(state)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_mean_pixel(text: str) -> list:
    """``--mean-pixel A,B,C`` -> three floats."""
    try:
        values = [float(v) for v in str(text).replace(" ", "").split(",")]
    except ValueError:
        raise ValueError(f"--mean-pixel {text!r}: expected three numbers like 104,117,123") from None
    if len(values) != 3:
        raise ValueError(f"--mean-pixel {text!r}: expected three numbers like 104,117,123")
    return values


def is_training_checkpoint(path: Path) -> bool:
    """True when ``path`` is a checkpoint with optimizer state (one ``train`` writes to resume from);
    only the .npy headers are read."""
    try:
        return any(key.startswith("optimizer/") for key in npz_headers(path))
    except Exception:  # not a readable checkpoint: nothing training could resume from
        return False


@contextlib.contextmanager
def guarded_checkpoint(out: str | Path, overwrite: bool = False) -> Iterator[None]:
    """Hold the run lock (``RunLock``) while writing ``out`` when its folder holds a training run,
    and refuse to replace a training checkpoint there unless ``overwrite``."""
    out = Path(out)
    folder = out.parent
    in_run = (folder / LOCK_NAME).exists() or bool(existing_run_files(folder))
    lock = RunLock(folder).acquire() if in_run else None
    try:
        if out.is_file() and is_training_checkpoint(out) and not overwrite:
            raise RunDirError(
                f"{out} is a training checkpoint (it holds optimizer state, to resume from); "
                "import-onnx would replace it: give --overwrite, or another --out"
            )
        yield
    finally:
        if lock is not None:
            lock.release()


def main_import(args: argparse.Namespace) -> int:
    """``python -m alexnet import-onnx``."""
    mean_pixel = parse_mean_pixel(args.mean_pixel) if args.mean_pixel is not None else None
    with guarded_checkpoint(args.out, getattr(args, "overwrite", False)):
        model, spec, meta = import_to_checkpoint(
            args.onnx,
            args.out,
            channel_order=args.channel_order,
            mean_pixel=mean_pixel,
            input_scale=args.input_scale,
            image_size=args.image_size,
        )
    config = model.config
    lrn_mode = "per tower" if config["lrn_groups"] == 2 else "across all maps"
    print(
        f"wrote {args.out}: AlexNet with {config['num_classes']} classes, crop {config['crop']}, groups "
        f"{config['groups']}, width {config['width']:g}, LRN {lrn_mode} "
        f"(n={config['lrn']['size']}, alpha={config['lrn']['alpha']:g} in the paper's convention, "
        f"beta={config['lrn']['beta']:g}, k={config['lrn']['k']:g})"
    )
    print(f"input: {spec.describe()}")
    return 0
