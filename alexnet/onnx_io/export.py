"""Export (``python -m alexnet export``): our AlexNet -> an ONNX graph of standard operators.

Opset 13 or newer (default 13; Split takes its sizes as an input from 13 on), default domain
only, one node per layer of §3.5 / Figure 2, in the network's order:

    Conv(group) -> Relu -> LRN -> MaxPool      conv1, conv2 (LRN after ReLU, before pooling, §3.3-3.4)
    Conv(group) -> Relu                        conv3, conv4, conv5 (+ MaxPool after conv5)
    Flatten -> Gemm(transB=1) -> Relu          fc6, fc7 (dropout is the identity at test time)
    Gemm                                       fc8: output "logits" (+ "prob" = Softmax with --softmax)

Initializers carry our parameter names (``conv1.weight``, ``fc8.bias``, ...), float32. Two
conventions differ from ours and are converted:

* LRN alpha: ONNX (like Caffe and PyTorch) divides alpha by the window size n, the paper does
  not (§3.3, nn/normalization.py): alpha_onnx = alpha_paper * n.
* LRN per tower: ONNX's LRN has no groups, so a model whose LRN keeps each tower's window
  to its own maps (``lrn_groups=2``, the paper's §3.2-3.3) is written as Split (channel
  axis) -> LRN, LRN -> Concat; the cross-tower window (``lrn_groups=1``) is one LRN.

The preprocessing, class names and model configuration go into ``metadata_props``
(metadata.py). The file is written atomically (``nn.atomic_write``) and checked by
``onnx.checker`` before it is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from nn import Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, asnumpy, atomic_write

from ..checkpoint import load_checkpoint
from ..model import AlexNet
from ..preprocessing import InputSpec, checkpoint_spec
from ..rundir import saving
from .metadata import metadata_props, require_onnx

DEFAULT_OPSET = 13


class _GraphWriter:
    """The nodes and initializers (constant tensors) of the graph being written."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def node(self, op_type, inputs, outputs, name, **attrs):
        """One node; ``outputs`` is a tensor name, or a list of them."""
        outputs = [outputs] if isinstance(outputs, str) else outputs
        self.nodes.append(self._helper.make_node(op_type, inputs, outputs, name=name, **attrs))

    def constant(self, name, array):
        """An initializer ``name`` holding ``array``; returns its name, to use as a node's input."""
        self.initializers.append(self._numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def parameters(self, name, layer):
        """The names of ``layer``'s weight (and bias, when it has one), written as float32 initializers."""
        params = [("weight", layer.weight)] + ([("bias", layer.bias)] if layer.bias is not None else [])
        return [self.constant(f"{name}.{what}", asnumpy(p.data).astype(np.float32)) for what, p in params]


# One helper per layer kind: ``x`` is the layer's input tensor, ``out`` the name of its output.
def _conv(graph, name, conv, x, out):
    (ph, pw), (sh, sw) = conv.padding, conv.stride
    graph.node(
        "Conv",
        [x, *graph.parameters(name, conv)],
        out,
        name,
        kernel_shape=list(conv.kernel_size),
        strides=[sh, sw],
        pads=[ph, pw, ph, pw],
        dilations=[1, 1],
        group=conv.groups,
    )


def _relu(graph, name, x, out):
    graph.node("Relu", [x], out, name)


def _lrn(graph, name, lrn, x, out, channels):
    """LRN (§3.3); per tower (§3.2) as Split -> one LRN per block -> Concat."""
    if lrn.size % 2 == 0:
        raise ValueError(
            f"{name}: LRN size {lrn.size} is even; ONNX centres an even window "
            "differently from this project, so only odd sizes are exported"
        )
    # ONNX divides alpha by the window size n (Caffe's convention); the paper's alpha multiplies the sum.
    attrs = dict(
        size=int(lrn.size), alpha=float(lrn.alpha) * lrn.size, beta=float(lrn.beta), bias=float(lrn.k)
    )
    if lrn.groups == 1:
        graph.node("LRN", [x], out, name, **attrs)
        return
    sizes = graph.constant(f"{name}.split", np.full(lrn.groups, channels // lrn.groups, np.int64))
    parts = [f"{name}.tower{g + 1}" for g in range(lrn.groups)]
    graph.node("Split", [x, sizes], [p + ".in" for p in parts], f"{name}.split", axis=1)
    for part in parts:
        graph.node("LRN", [part + ".in"], part, part, **attrs)
    graph.node("Concat", parts, out, f"{name}.concat", axis=1)


def _max_pool(graph, name, pool, x, out):
    graph.node(
        "MaxPool",
        [x],
        out,
        name,
        kernel_shape=list(pool.kernel_size),
        strides=list(pool.stride),
        pads=[0, 0, 0, 0],
    )


def _flatten(graph, name, x, out):
    graph.node("Flatten", [x], out, name, axis=1)


def _linear(graph, name, linear, x, out):
    """y = x W^T + b: Gemm with transB, since our W is (out, in)."""
    graph.node("Gemm", [x, *graph.parameters(name, linear)], out, name, transB=1, alpha=1.0, beta=1.0)


def build_onnx_model(
    model: AlexNet,
    spec: InputSpec | None = None,
    class_names: list | None = None,
    wnids: list | None = None,
    softmax: bool = False,
    opset: int = DEFAULT_OPSET,
):
    """An ``onnx.ModelProto`` of ``model`` (an AlexNet) in eval mode; float32 weights.

    ``spec`` (an InputSpec), ``class_names`` and ``wnids`` go into ``metadata_props``.
    """
    onnx = require_onnx()
    from onnx import TensorProto, helper

    if opset < 13:
        raise ValueError(f"export writes opset 13 or newer (Split takes its sizes as an input), got {opset}")
    graph = _GraphWriter()
    x, channels = "input", 3
    children = list(model.named_children())
    last_linear = max(i for i, (_, m) in enumerate(children) if isinstance(m, Linear))
    for index, (name, layer) in enumerate(children):
        out = "logits" if index == last_linear else name
        if isinstance(layer, Conv2d):
            _conv(graph, name, layer, x, out)
            channels = layer.out_channels
        elif isinstance(layer, ReLU):
            _relu(graph, name, x, out)
        elif isinstance(layer, LocalResponseNorm):
            _lrn(graph, name, layer, x, out, channels)
        elif isinstance(layer, MaxPool2d):
            _max_pool(graph, name, layer, x, out)
        elif isinstance(layer, Flatten):
            _flatten(graph, name, x, out)
        elif isinstance(layer, Linear):
            _linear(graph, name, layer, x, out)
        elif isinstance(layer, Dropout):
            continue  # the identity at test time (inverted dropout, nn/dropout.py)
        else:
            raise ValueError(f"cannot export layer {name} ({type(layer).__name__})")
        x = out
    crop = int(model.config["crop"])
    num_classes = int(model.config["num_classes"])
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", num_classes])]
    if softmax:
        graph.node("Softmax", ["logits"], "prob", "softmax", axis=1)
        outputs.append(helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", num_classes]))
    onnx_graph = helper.make_graph(
        graph.nodes,
        "AlexNet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, crop, crop])],
        outputs,
        initializer=graph.initializers,
        doc_string="AlexNet (Krizhevsky, Sutskever, Hinton 2012), §3.5 / Figure 2; dropout omitted (identity "
        "at test time). Input: see metadata 'alexnet.preprocessing'.",
    )
    onnx_model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", int(opset))],
        producer_name="alexnet-from-scratch",
        producer_version=_version(),
    )
    # The oldest IR version that can hold this opset: readable by older runtimes too.
    onnx_model.ir_version = helper.find_min_ir_version_for(list(onnx_model.opset_import))
    onnx_model.doc_string = (
        "AlexNet built by hand in NumPy/CuPy (alexnet-from-scratch); logits, optional softmax."
    )
    helper.set_model_props(onnx_model, metadata_props(model.config, spec, class_names, wnids))
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def _version():
    try:
        from importlib.metadata import version

        return version("alexnet-from-scratch")
    except Exception:  # not installed: the package runs from PYTHONPATH
        return "0.1.0"


def save_onnx_atomic(onnx_model, path: str | Path) -> Path:
    """Serialize ``onnx_model`` to ``path`` through ``nn.atomic_write`` (temporary file, fsync, rename)."""
    with atomic_write(path) as handle:
        handle.write(onnx_model.SerializeToString())
    return Path(path)


def export_checkpoint(
    checkpoint_path: str | Path, onnx_path: str | Path, softmax: bool = False, opset: int = DEFAULT_OPSET
):
    """Export a checkpoint file to an ONNX file; returns the ModelProto."""
    checkpoint = load_checkpoint(checkpoint_path)
    model = checkpoint.build_model("cpu").eval()
    try:
        spec = checkpoint_spec(checkpoint)
    except ValueError as exc:  # e.g. a checkpoint saved without its mean image: export the network anyway
        print(f"note: {checkpoint_path}: {exc}; the ONNX file records no preprocessing", file=sys.stderr)
        spec = None
    onnx_model = build_onnx_model(
        model, spec, checkpoint.class_names, checkpoint.meta.get("wnids"), softmax=softmax, opset=opset
    )
    with saving(onnx_path):  # a folder, a read-only place, a full disk: one line (SaveFailed)
        save_onnx_atomic(onnx_model, onnx_path)
    return onnx_model


def main_export(args: argparse.Namespace) -> int:
    """``python -m alexnet export``."""
    onnx_model = export_checkpoint(args.checkpoint, args.onnx, softmax=args.softmax, opset=args.opset)
    size = Path(args.onnx).stat().st_size
    ops = sorted({n.op_type for n in onnx_model.graph.node})
    print(
        f"wrote {args.onnx} ({size / 2**20:.1f} MiB, opset {args.opset}, ops: {', '.join(ops)}); "
        f"checked with onnx.checker"
    )
    return 0
