"""ONNX export and import: our AlexNet <-> the ecosystem's neutral format.

Export (``python -m alexnet export``) writes the trained network as standard ONNX operators,
one node per layer of §3.5:

    Conv(group) -> Relu -> LRN -> MaxPool      conv1, conv2 (LRN after ReLU, before pooling, §3.3-3.4)
    Conv(group) -> Relu                        conv3, conv4, conv5 (+ MaxPool after conv5)
    Flatten -> Gemm(transB=1) -> Relu          fc6, fc7 (dropout is the identity at test time)
    Gemm                                       fc8: output "logits" (+ "prob" = Softmax with --softmax)

Initializers carry our parameter names (``conv1.weight``, ``fc8.bias``, ...). Two conventions
differ from ours and are converted:

* LRN alpha: ONNX (like Caffe and PyTorch) divides alpha by the window size n, the paper does
  not (§3.3, nn/normalization.py): alpha_onnx = alpha_paper * n, and back on import.
* LRN per tower: ONNX's LRN has no groups, so a model whose LRN keeps each tower's window
  to its own maps (``lrn_groups=2``, the paper's §3.2-3.3) is written as Split (channel
  axis) -> LRN, LRN -> Concat; the cross-tower window (``lrn_groups=1``) is one LRN.

The preprocessing travels in the model's ``metadata_props`` as JSON strings:
``alexnet.preprocessing`` (channel order, mean kind, mean pixel, input scale, S, crop),
``alexnet.mean_image`` (base64 float32 S x S x 3, RGB, when the mean is an image),
``alexnet.class_names``, ``alexnet.wnids`` and ``alexnet.model_config``.

Import (``python -m alexnet import-onnx``) reads a file of the same shape, ours or the model
zoo's ``bvlcalexnet`` (Caffe's BVLC AlexNet via Caffe2: input ``data_0`` 1x3x224x224, weights
``conv1_w_0`` ..., LRN across all maps, Dropout nodes, a Reshape before fc6, Softmax output
``prob_1``), checks it node by node and builds our AlexNet. What it cannot map it refuses,
with a one-line error naming the node and its op type.

Channel order and mean of a foreign file: Caffe-trained models expect BGR, 0..255, minus
a mean pixel. A file without our metadata is recorded as BGR with Caffe's mean pixel
(B, G, R) = (104, 117, 123), and the importer says so; ``--channel-order`` and
``--mean-pixel`` override. See alexnet/preprocessing.py for how predict/evaluate apply it.
"""
import base64
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from nn import Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU

from .imagenet_classes import imagenet_names, imagenet_wnids, readable_names
from .model import CONV_LAYERS, FC_WIDTH, MIN_CROP, AlexNet, scaled_channels, spatial_sizes
from .preprocessing import CAFFE_MEAN_BGR, CHANNEL_ORDERS, InputSpec

DEFAULT_OPSET = 13
META_PREFIX = "alexnet."
MAPPED_OPS = ("Conv", "Relu", "LRN", "Split/LRN/Concat", "MaxPool", "Flatten", "Reshape", "Gemm",
              "Dropout", "Identity", "Softmax")
#: The layer sequence of §3.5 / Figure 2, as the importer sees it.
EXPECTED_LAYERS = ("conv", "relu", "lrn", "pool", "conv", "relu", "lrn", "pool", "conv", "relu", "conv",
                   "relu", "conv", "relu", "pool", "flatten", "fc", "relu", "fc", "relu", "fc")
LAYER_WORDS = {"conv": "Conv", "relu": "Relu", "lrn": "LRN", "pool": "MaxPool", "flatten": "Flatten/Reshape",
               "fc": "Gemm", "softmax": "Softmax"}


class OnnxError(ValueError):
    """A file the importer cannot map (one line, naming the node and its op type)."""


def _require_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise RuntimeError("ONNX export/import needs the onnx package: pip install 'alexnet-from-scratch[onnx]' "
                           "(or pip install onnx onnxruntime)") from None
    return onnx


def _one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _f32(value):
    """The shortest decimal that is the float32 ``value`` (ONNX float attributes are float32)."""
    return float(str(np.float32(value)))


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------
def build_onnx_model(model, spec=None, class_names=None, wnids=None, softmax=False, opset=DEFAULT_OPSET):
    """An ``onnx.ModelProto`` of ``model`` (an AlexNet) in eval mode; float32 weights.

    ``spec`` (an InputSpec), ``class_names`` and ``wnids`` go into ``metadata_props``.
    """
    onnx = _require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    if opset < 13:
        raise ValueError(f"export writes opset 13 or newer (Split takes its sizes as an input), got {opset}")
    nodes, initializers = [], []

    def constant(name, array):
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def parameter(layer_name, param_name, param):
        from nn import asnumpy
        return constant(f"{layer_name}.{param_name}", asnumpy(param.data).astype(np.float32))

    tensor, channels = "input", 3
    children = list(model.named_children())
    last_linear = max(i for i, (_, m) in enumerate(children) if isinstance(m, Linear))
    for index, (name, module) in enumerate(children):
        out = "logits" if index == last_linear else name
        if isinstance(module, Conv2d):
            inputs = [tensor, parameter(name, "weight", module.weight)]
            if module.bias is not None:
                inputs.append(parameter(name, "bias", module.bias))
            (ph, pw), (sh, sw) = module.padding, module.stride
            nodes.append(helper.make_node("Conv", inputs, [out], name=name, kernel_shape=list(module.kernel_size),
                                          strides=[sh, sw], pads=[ph, pw, ph, pw], dilations=[1, 1],
                                          group=module.groups))
            channels = module.out_channels
        elif isinstance(module, ReLU):
            nodes.append(helper.make_node("Relu", [tensor], [out], name=name))
        elif isinstance(module, LocalResponseNorm):
            if module.size % 2 == 0:
                raise ValueError(f"{name}: LRN size {module.size} is even; ONNX centres an even window "
                                 "differently from this project, so only odd sizes are exported")
            attrs = dict(size=int(module.size), alpha=float(module.alpha) * module.size, beta=float(module.beta),
                         bias=float(module.k))
            if module.groups == 1:
                nodes.append(helper.make_node("LRN", [tensor], [out], name=name, **attrs))
            else:  # one window per tower (§3.2-3.3): Split -> LRN per block -> Concat
                per = channels // module.groups
                sizes = constant(f"{name}.split", np.full(module.groups, per, np.int64))
                parts = [f"{name}.tower{g + 1}" for g in range(module.groups)]
                nodes.append(helper.make_node("Split", [tensor, sizes], [p + ".in" for p in parts],
                                              name=f"{name}.split", axis=1))
                for part in parts:
                    nodes.append(helper.make_node("LRN", [part + ".in"], [part], name=part, **attrs))
                nodes.append(helper.make_node("Concat", parts, [out], name=f"{name}.concat", axis=1))
        elif isinstance(module, MaxPool2d):
            nodes.append(helper.make_node("MaxPool", [tensor], [out], name=name,
                                          kernel_shape=list(module.kernel_size), strides=list(module.stride),
                                          pads=[0, 0, 0, 0]))
        elif isinstance(module, Flatten):
            nodes.append(helper.make_node("Flatten", [tensor], [out], name=name, axis=1))
        elif isinstance(module, Linear):
            inputs = [tensor, parameter(name, "weight", module.weight)]
            if module.bias is not None:
                inputs.append(parameter(name, "bias", module.bias))
            nodes.append(helper.make_node("Gemm", inputs, [out], name=name, transB=1, alpha=1.0, beta=1.0))
        elif isinstance(module, Dropout):
            continue  # the identity at test time (inverted dropout, nn/dropout.py)
        else:
            raise ValueError(f"cannot export layer {name} ({type(module).__name__})")
        tensor = out
    crop = int(model.config["crop"])
    num_classes = int(model.config["num_classes"])
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", num_classes])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["prob"], name="softmax", axis=1))
        outputs.append(helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", num_classes]))
    graph = helper.make_graph(
        nodes, "AlexNet", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, crop, crop])],
        outputs, initializer=initializers,
        doc_string="AlexNet (Krizhevsky, Sutskever, Hinton 2012), §3.5 / Figure 2; dropout omitted (identity "
                   "at test time). Input: see metadata 'alexnet.preprocessing'.")
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                                   producer_name="alexnet-from-scratch", producer_version=_version())
    # The oldest IR version that can hold this opset: readable by older runtimes too.
    onnx_model.ir_version = helper.find_min_ir_version_for(list(onnx_model.opset_import))
    onnx_model.doc_string = "AlexNet built by hand in NumPy/CuPy (alexnet-from-scratch); logits, optional softmax."
    meta = {"format": "1", "model_config": json.dumps(model.config)}
    if spec is not None:
        meta["preprocessing"] = json.dumps(spec.to_meta())
        if spec.mean_kind == "image":
            mean = np.ascontiguousarray(spec.mean_image, dtype="<f4")
            meta["mean_image"] = json.dumps({"shape": list(mean.shape), "dtype": "float32", "layout": "HWC",
                                             "channel_order": "rgb", "encoding": "base64",
                                             "data": base64.b64encode(mean.tobytes()).decode("ascii")})
    if class_names is not None:
        meta["class_names"] = json.dumps(list(class_names))
    if wnids is not None:
        meta["wnids"] = json.dumps(list(wnids))
    helper.set_model_props(onnx_model, {META_PREFIX + key: value for key, value in meta.items()})
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def _version():
    try:
        from importlib.metadata import version
        return version("alexnet-from-scratch")
    except Exception:  # not installed: the package runs from PYTHONPATH
        return "0.1.0"


def save_onnx_atomic(onnx_model, path):
    """Serialize to ``path`` through a temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(onnx_model.SerializeToString())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def export_checkpoint(checkpoint_path, onnx_path, softmax=False, opset=DEFAULT_OPSET):
    """Export a checkpoint file to an ONNX file; returns the ModelProto."""
    from .checkpoint import load_checkpoint
    from .preprocessing import checkpoint_spec

    checkpoint = load_checkpoint(checkpoint_path)
    model = checkpoint.build_model("cpu").eval()
    try:
        spec = checkpoint_spec(checkpoint)
    except ValueError as exc:  # e.g. a checkpoint saved without its mean image: export the network anyway
        print(f"note: {checkpoint_path}: {exc}; the ONNX file records no preprocessing", file=sys.stderr)
        spec = None
    onnx_model = build_onnx_model(model, spec, checkpoint.class_names, checkpoint.meta.get("wnids"),
                                  softmax=softmax, opset=opset)
    save_onnx_atomic(onnx_model, onnx_path)
    return onnx_model


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------
def load_onnx_file(path):
    """``onnx.load`` + ``onnx.checker``, every failure as a one-line OnnxError."""
    onnx = _require_onnx()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise OnnxError(f"{path} is not a readable ONNX file (truncated or corrupt?): "
                        f"{type(exc).__name__}: {_one_line(exc)}") from None
    if not model.graph.node:
        raise OnnxError(f"{path} is not a readable ONNX model (no graph nodes; truncated or corrupt?)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise OnnxError(f"{path} fails the ONNX checker (truncated or corrupt?): {_one_line(exc)}") from None
    return model


class _Graph:
    """Constants, producers and consumers of an ONNX graph."""

    def __init__(self, model, path):
        from onnx import numpy_helper
        self.path = path
        graph = model.graph
        self.constants = {}
        for tensor in graph.initializer:
            try:
                self.constants[tensor.name] = numpy_helper.to_array(tensor)
            except Exception as exc:
                raise OnnxError(f"{path}: initializer {tensor.name!r} cannot be read (external data missing? "
                                f"{_one_line(exc)})") from None
        self.nodes = []
        for node in graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise OnnxError(f"{path}: node {node.name or node.output[0]!r} has op type {node.domain}::"
                                f"{node.op_type}, a custom operator this importer cannot map")
            if node.op_type == "Constant":
                self.constants[node.output[0]] = self._constant_value(node)
            else:
                self.nodes.append(node)
        self.consumers = {}
        for node in self.nodes:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        inputs = [v for v in graph.input if v.name not in self.constants]
        if len(inputs) != 1:
            raise OnnxError(f"{path}: expected one image input, found {len(inputs)} "
                            f"({', '.join(v.name for v in inputs) or 'none'})")
        self.input = inputs[0]
        self.outputs = [v.name for v in graph.output]

    def _constant_value(self, node):
        from onnx import helper, numpy_helper
        for attr in node.attribute:
            if attr.name == "value":
                return numpy_helper.to_array(attr.t)
            if attr.name in ("value_ints", "value_floats", "value_int", "value_float"):
                return np.asarray(helper.get_attribute_value(attr))
        raise OnnxError(f"{self.path}: Constant node {node.name!r} has no tensor value this importer can read")

    def const(self, node, index, what):
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.constants:
            raise OnnxError(f"{self.path}: node {_label(node)}: its {what} {name!r} is computed in the graph, "
                            "not a constant (initializer) this importer can read")
        return self.constants[name]

    def only_consumer(self, tensor):
        users = self.consumers.get(tensor, [])
        if len(users) > 1:
            raise OnnxError(f"{self.path}: tensor {tensor!r} feeds {len(users)} nodes "
                            f"({', '.join(_label(n) for n in users)}); AlexNet is a single chain")
        return users[0] if users else None


def _label(node):
    return f"{node.name or node.output[0]!r} ({node.op_type})"


def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _check_attrs(path, node, attrs, allowed):
    extra = sorted(set(attrs) - set(allowed))
    if extra:
        raise OnnxError(f"{path}: node {_label(node)} has attributes {extra} this importer cannot map")


def _walk(graph, opset):
    """The chain of layers from the image input: [(kind, info dict)]."""
    path = graph.path
    layers = []
    tensor = graph.input.name
    seen = set()
    while True:
        node = graph.only_consumer(tensor)
        if node is None:
            break
        if id(node) in seen:  # pragma: no cover - checker rejects cycles
            raise OnnxError(f"{path}: the graph has a cycle at {_label(node)}")
        seen.add(id(node))
        op, attrs = node.op_type, _attrs(node)
        if node.input[0] != tensor:
            raise OnnxError(f"{path}: node {_label(node)} takes the activations as input "
                            f"{list(node.input).index(tensor)}, not as its first input")
        for extra in node.output[1:]:
            if extra and (extra in graph.consumers or extra in graph.outputs) and op != "Split":
                raise OnnxError(f"{path}: node {_label(node)}: its extra output {extra!r} is used; "
                                "only the main output can be mapped")
        if op == "Conv":
            _check_attrs(path, node, attrs, ("kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"))
            weight = graph.const(node, 1, "weight")
            bias = graph.const(node, 2, "bias")
            if weight is None or weight.ndim != 4:
                raise OnnxError(f"{path}: node {_label(node)} needs a 4-D weight initializer")
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            auto_pad = _text(attrs.get("auto_pad", "NOTSET"))
            if auto_pad not in ("NOTSET", "VALID") or (auto_pad == "VALID" and any(pads)):
                raise OnnxError(f"{path}: node {_label(node)} uses auto_pad={auto_pad}; only explicit pads "
                                "are mapped")
            layers.append(("conv", dict(node=node, weight=weight, bias=bias, weight_name=node.input[1],
                                        strides=list(attrs.get("strides", [1, 1])), pads=pads,
                                        dilations=list(attrs.get("dilations", [1, 1])),
                                        group=int(attrs.get("group", 1)),
                                        kernel=list(attrs.get("kernel_shape", weight.shape[2:])))))
        elif op == "Relu":
            layers.append(("relu", dict(node=node)))
        elif op == "LRN":
            layers.append(("lrn", dict(node=node, groups=1, params=_lrn_params(path, node, attrs))))
        elif op == "Split":
            node, layer = _split_lrn(graph, node, attrs, opset)
            layers.append(layer)
        elif op == "MaxPool":
            _check_attrs(path, node, attrs, ("kernel_shape", "strides", "pads", "dilations", "ceil_mode",
                                             "auto_pad", "storage_order"))
            auto_pad = _text(attrs.get("auto_pad", "NOTSET"))
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            if auto_pad not in ("NOTSET", "VALID") or (auto_pad == "VALID" and any(pads)):
                raise OnnxError(f"{path}: node {_label(node)} uses auto_pad={auto_pad}; only explicit pads "
                                "are mapped")
            if any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise OnnxError(f"{path}: node {_label(node)} is a dilated max-pooling; only plain pooling "
                                "(§3.4) is mapped")
            layers.append(("pool", dict(node=node, kernel=list(attrs.get("kernel_shape", [])),
                                        strides=list(attrs.get("strides", [1, 1])), pads=pads,
                                        ceil=int(attrs.get("ceil_mode", 0)))))
        elif op == "Flatten":
            _check_attrs(path, node, attrs, ("axis",))
            if int(attrs.get("axis", 1)) != 1:
                raise OnnxError(f"{path}: node {_label(node)} flattens from axis {attrs['axis']}; AlexNet "
                                "flattens every map of one image (axis 1)")
            layers.append(("flatten", dict(node=node, shape=None)))
        elif op == "Reshape":
            _check_attrs(path, node, attrs, ("allowzero", "shape"))
            shape = attrs.get("shape") if "shape" in attrs else graph.const(node, 1, "shape")
            if shape is None or np.asarray(shape).ndim != 1 or len(shape) != 2:
                raise OnnxError(f"{path}: node {_label(node)} reshapes to {None if shape is None else list(shape)}"
                                "; only the flattening to (batch, features) before fc6 is mapped")
            layers.append(("flatten", dict(node=node, shape=[int(v) for v in shape])))
        elif op == "Gemm":
            _check_attrs(path, node, attrs, ("alpha", "beta", "transA", "transB", "broadcast"))
            if int(attrs.get("transA", 0)) or _f32(attrs.get("alpha", 1.0)) != 1.0 or \
                    _f32(attrs.get("beta", 1.0)) != 1.0:
                raise OnnxError(f"{path}: node {_label(node)} has transA={attrs.get('transA', 0)}, alpha="
                                f"{attrs.get('alpha', 1.0)}, beta={attrs.get('beta', 1.0)}; only y = x W^T + b "
                                "(transA 0, alpha 1, beta 1) is mapped")
            weight = graph.const(node, 1, "weight")
            bias = graph.const(node, 2, "bias")
            if weight is None or weight.ndim != 2:
                raise OnnxError(f"{path}: node {_label(node)} needs a 2-D weight initializer")
            if not int(attrs.get("transB", 0)):
                weight = weight.T  # stored (in, out): ours is (out, in)
            if bias is not None and bias.size not in (1, weight.shape[0]):
                raise OnnxError(f"{path}: node {_label(node)}: bias of shape {bias.shape} for "
                                f"{weight.shape[0]} outputs")
            if bias is not None:
                bias = np.broadcast_to(bias.reshape(-1), (weight.shape[0],))
            layers.append(("fc", dict(node=node, weight=weight, bias=bias, weight_name=node.input[1])))
        elif op in ("Dropout", "Identity"):
            pass  # identity at test time
        elif op == "Softmax":
            _check_attrs(path, node, attrs, ("axis",))
            if int(attrs.get("axis", 1 if opset < 13 else -1)) not in (1, -1):
                raise OnnxError(f"{path}: node {_label(node)} is a softmax over axis {attrs['axis']}, not over "
                                "the classes")
            layers.append(("softmax", dict(node=node)))
        else:
            raise OnnxError(f"{path}: node {_label(node)} has op type {op}, which this importer cannot map to "
                            f"AlexNet's layers (it maps {', '.join(MAPPED_OPS)})")
        tensor = node.output[0]
    return layers, tensor


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _lrn_params(path, node, attrs):
    _check_attrs(path, node, attrs, ("size", "alpha", "beta", "bias"))
    size = int(attrs["size"])
    if size % 2 == 0:
        raise OnnxError(f"{path}: node {_label(node)} has an even LRN size {size}; ONNX centres an even "
                        "window differently from this project's LRN, so only odd sizes are mapped")
    alpha = _f32(attrs.get("alpha", 1e-4))
    # ONNX divides alpha by the size (Caffe's convention); the paper's alpha multiplies the plain sum.
    return {"size": size, "alpha": float(f"{alpha / size:.7g}"), "beta": _f32(attrs.get("beta", 0.75)),
            "k": _f32(attrs.get("bias", 1.0))}


def _split_lrn(graph, split, attrs, opset):
    """Split(axis 1) -> LRN per block -> Concat(axis 1): LRN with one window per tower."""
    path = graph.path
    _check_attrs(path, split, attrs, ("axis", "split", "num_outputs"))
    if int(attrs.get("axis", 0)) != 1:
        raise OnnxError(f"{path}: node {_label(split)} splits axis {attrs.get('axis', 0)}; only the "
                        "Split(channels) -> LRN -> Concat pattern of LRN per tower is mapped")
    sizes = attrs.get("split")
    if sizes is None and len(split.input) > 1 and split.input[1]:
        sizes = graph.const(split, 1, "split sizes")
    sizes = None if sizes is None else [int(v) for v in np.asarray(sizes).reshape(-1)]
    parts = list(split.output)
    if len(parts) != 2:
        raise OnnxError(f"{path}: node {_label(split)} splits into {len(parts)} blocks; AlexNet has 2 towers")
    if sizes is not None and len(set(sizes)) != 1:
        raise OnnxError(f"{path}: node {_label(split)} splits the maps unevenly {sizes}; the towers are halves")
    lrns, params = [], []
    for part in parts:
        node = graph.only_consumer(part)
        if node is None or node.op_type != "LRN":
            raise OnnxError(f"{path}: node {_label(split)} is not followed by one LRN per block "
                            f"({'nothing' if node is None else _label(node)} uses {part!r}); only "
                            "Split -> LRN -> Concat is mapped")
        lrns.append(node)
        params.append(_lrn_params(path, node, _attrs(node)))
    if params[0] != params[1]:
        raise OnnxError(f"{path}: the two towers' LRN nodes {_label(lrns[0])}, {_label(lrns[1])} differ: "
                        f"{params[0]} vs {params[1]}")
    concat = graph.only_consumer(lrns[0].output[0])
    if concat is None or concat.op_type != "Concat" or list(concat.input) != [n.output[0] for n in lrns] \
            or int(_attrs(concat).get("axis", 0)) != 1:
        raise OnnxError(f"{path}: the LRN nodes after {_label(split)} are not joined by Concat(axis=1) in "
                        "tower order")
    return concat, ("lrn", dict(node=lrns[0], groups=2, params=params[0], split=split, split_sizes=sizes))


def _check_sequence(path, layers):
    kinds = [kind for kind, _ in layers]
    expected = list(EXPECTED_LAYERS)
    if kinds and kinds[-1] == "softmax":
        expected = expected + ["softmax"]
    for i, want in enumerate(expected):
        if i >= len(kinds):
            raise OnnxError(f"{path}: non-AlexNet structure: the chain ends after {len(kinds)} layers; expected "
                            f"{LAYER_WORDS[want]} next (AlexNet: 2 x Conv-Relu-LRN-MaxPool, 3 x Conv-Relu, "
                            "MaxPool, Flatten, 2 x Gemm-Relu, Gemm [Softmax])")
        if kinds[i] != want:
            node = layers[i][1]["node"]
            hint = ""
            if want == "lrn" and kinds[i] == "pool" and i + 1 < len(kinds) and kinds[i + 1] == "lrn":
                hint = ("; LRN after max-pooling is CaffeNet's order (bvlc_reference_caffenet), not AlexNet's "
                        "(§3.3-3.4: normalization, then pooling)")
            elif want == "lrn":
                hint = "; a network without LRN (e.g. torchvision's AlexNet) is not the paper's AlexNet"
            raise OnnxError(f"{path}: non-AlexNet structure: layer {i + 1} is node {_label(node)}, expected "
                            f"{LAYER_WORDS[want]}{hint}")
    if len(kinds) > len(expected):
        node = layers[len(expected)][1]["node"]
        raise OnnxError(f"{path}: non-AlexNet structure: node {_label(node)} follows fc8")


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
        raise OnnxError(f"{path}: wrong shapes: fc6 expects {pool5_side} x {pool5_side} maps after pool5 and "
                        "no input size gives that with this project's pooling")
    if input_side is None:
        crop = meta_crop if meta_crop in candidates else candidates[0]
        notes.append(f"the file does not fix the input size; crop {crop} inferred from fc6's input "
                     f"({pool5_side} x {pool5_side} maps after pool5)")
        return crop
    # The file's own sizes at its declared input (Caffe rounds pooling up: extra end pads / ceil_mode).
    side = input_side
    for i, conv in enumerate(convs, 1):
        side = (side + conv["pads"][0] + conv["pads"][2] - conv["kernel"][0]) // conv["strides"][0] + 1
        if i in (1, 2, 5):
            p = pools[(1, 2, 5).index(i)]
            side = _pool_out(side, p["kernel"][0], p["strides"][0], p["pads"][0], p["pads"][2], p["ceil"])
    if side != pool5_side:
        raise OnnxError(f"{path}: wrong shapes: a {input_side} x {input_side} input gives {side} x {side} maps "
                        f"after pool5, but fc6 expects {pool5_side} x {pool5_side}")
    crop = min(candidates, key=lambda c: (abs(c - input_side), -c))
    notes.append(f"the file declares {input_side} x {input_side} inputs with padded (Caffe's rounded-up) "
                 f"max-pooling; this project pools without padding, which gives the same "
                 f"{pool5_side} x {pool5_side} maps for fc6 at {crop} x {crop} (Caffe's original crop for "
                 f"AlexNet is 227), so the checkpoint uses crop {crop}; the weights are unchanged")
    return crop


def _infer_width(path, channels, hidden, groups, hint):
    candidates = ([hint] if hint else []) + [hidden / FC_WIDTH, channels[0] / CONV_LAYERS[0][1]]
    for width in candidates:
        if max(1, int(round(FC_WIDTH * width))) != hidden:
            continue
        if all(scaled_channels(c, width, groups) == got for (_, c, *_), got in zip(CONV_LAYERS, channels)):
            return float(width)
    raise OnnxError(f"{path}: wrong shapes: conv1..conv5 have {channels} maps and fc6/fc7 {hidden} units, which "
                    "is not AlexNet's 96-256-384-384-256 / 4096 at any single width")


def _read_meta(model):
    return {p.key[len(META_PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(META_PREFIX)}


def _json_meta(path, meta, key):
    if key not in meta:
        return None
    try:
        return json.loads(meta[key])
    except ValueError:
        raise OnnxError(f"{path}: metadata {META_PREFIX}{key} is not valid JSON") from None


def _preprocessing(path, meta, crop, channel_order, mean_pixel, input_scale, image_size, notes, ours=False):
    """The InputSpec for the imported model: flags > the file's metadata > Caffe's convention
    (or, for a file written by this project (``ours``) without preprocessing, RGB)."""
    pre = _json_meta(path, meta, "preprocessing")
    mean_image = None
    if pre is not None:
        if not isinstance(pre, dict):
            raise OnnxError(f"{path}: metadata {META_PREFIX}preprocessing is not a JSON object")
        std = pre.get("std")
        if std is not None:
            values = np.atleast_1d(np.asarray(std, np.float64))
            if not np.all(values == values[0]):
                raise OnnxError(f"{path}: the preprocessing divides the channels by different values {list(values)}"
                                "; this project divides all channels by one input scale")
            pre = dict(pre, input_scale=float(values[0]) * float(pre.get("input_scale", 1.0)))
            del pre["std"]
        unknown = sorted(set(pre) - {"channel_order", "mean", "mean_pixel", "mean_source", "input_scale",
                                     "image_size", "crop", "pixel_range"})
        if unknown:
            raise OnnxError(f"{path}: the preprocessing has settings this project cannot express: {unknown}")
        if list(pre.get("pixel_range", [0, 255])) != [0, 255]:
            raise OnnxError(f"{path}: pixel range {pre['pixel_range']} cannot be expressed (this project feeds "
                            "0..255 pixels minus the mean, divided by an input scale)")
        order = pre.get("channel_order", "rgb")
        if order not in CHANNEL_ORDERS:
            raise OnnxError(f"{path}: channel order {order!r} cannot be expressed (rgb or bgr)")
        kind = pre.get("mean", "pixel" if "mean_pixel" in pre else "image")
        if kind == "image":
            mean_image = _mean_image(path, meta)
            pixel, source = None, "the file's mean image"
        elif kind == "pixel":
            pixel = [float(v) for v in pre.get("mean_pixel", [])]
            if len(pixel) != 3:
                raise OnnxError(f"{path}: mean pixel {pre.get('mean_pixel')} does not have 3 values")
            source = pre.get("mean_source", "the file's mean pixel")
        else:
            raise OnnxError(f"{path}: mean kind {kind!r} cannot be expressed (image or pixel)")
        scale = float(pre.get("input_scale", 1.0))
        size = int(pre.get("image_size", 256))
    elif ours:  # written by this project without its mean image: RGB, the mean unknown
        order, pixel, scale, size = "rgb", list(CAFFE_MEAN_BGR[::-1]), 1.0, 256
        source = "assumed: the ImageNet mean pixel R,G,B = 123,117,104 (the file carries no mean)"
        if mean_pixel is None:
            notes.append("the file was written by this project without preprocessing metadata; assuming RGB "
                         "channels (as every model trained here) minus the ImageNet mean pixel R,G,B = "
                         "123,117,104; override with --mean-pixel / --input-scale")
    else:
        order, pixel, scale, size = "bgr", list(CAFFE_MEAN_BGR), 1.0, 256
        source = "assumed: Caffe's ImageNet mean pixel B,G,R = 104,117,123 (the file carries no mean)"
        if channel_order is None or mean_pixel is None:
            notes.append("the file carries no preprocessing metadata; assuming Caffe's convention for BVLC "
                         f"AlexNet: {(channel_order or 'bgr').upper()} channels, 0..255 pixels minus the mean "
                         f"pixel {','.join(f'{v:g}' for v in (mean_pixel or pixel))}"
                         f"{' (B,G,R)' if (channel_order or 'bgr') == 'bgr' else ''}; override with "
                         "--channel-order / --mean-pixel")
    if channel_order is not None:
        if channel_order != order and pre is not None:
            notes.append(f"channel order {channel_order.upper()} from --channel-order replaces the file's "
                         f"{order.upper()}")
        order = channel_order
    if mean_pixel is not None:
        pixel, mean_image = [float(v) for v in mean_pixel], None
        source = "--mean-pixel"
    if input_scale is not None:
        scale = float(input_scale)
    if image_size is not None:
        size = int(image_size)
    if size < crop:
        raise OnnxError(f"{path}: image size {size} is smaller than the crop {crop}")
    if mean_image is not None and mean_image.shape[0] != size:
        raise OnnxError(f"{path}: the mean image is {mean_image.shape[0]} x {mean_image.shape[1]} but images are "
                        f"rescaled to {size}")
    return InputSpec(size, crop, order, scale, mean_image=mean_image,
                     mean_pixel=None if mean_image is not None else tuple(pixel), mean_source=source)


def _mean_image(path, meta):
    info = _json_meta(path, meta, "mean_image")
    if not isinstance(info, dict):
        raise OnnxError(f"{path}: the preprocessing names a mean image but {META_PREFIX}mean_image is missing")
    try:
        shape = tuple(int(v) for v in info["shape"])
        if info.get("dtype", "float32") != "float32" or info.get("layout", "HWC") != "HWC" or \
                info.get("channel_order", "rgb") != "rgb" or len(shape) != 3 or shape[2] != 3 or \
                shape[0] != shape[1]:
            raise ValueError("unsupported layout")
        array = np.frombuffer(base64.b64decode(info["data"]), dtype="<f4").reshape(shape)
    except Exception as exc:
        raise OnnxError(f"{path}: the mean image in the metadata cannot be read ({_one_line(exc)}); expected "
                        "float32 S x S x 3 RGB, base64") from None
    return array.astype(np.float32)


def _input_side(path, value_info):
    """The declared side of the square input (None when not fixed)."""
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise OnnxError(f"{path}: wrong shapes: input {value_info.name!r} has {len(dims)} dimensions, expected "
                        "4 (batch, 3 channels, height, width)")
    values = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if values[1] not in (None, 3):
        raise OnnxError(f"{path}: wrong shapes: input {value_info.name!r} has {values[1]} channels, expected 3")
    if values[2] != values[3]:
        raise OnnxError(f"{path}: wrong shapes: input {value_info.name!r} is {values[2]} x {values[3]}; "
                        "AlexNet takes square crops")
    return values[2]


def _check_convs(path, convs):
    """Kernel, stride and padding of §3.5; returns the groups of conv2, conv4, conv5 (1 or 2, §3.2)."""
    groups_seen = []
    for (name, _, kernel, stride, padding, two_tower_groups), conv in zip(CONV_LAYERS, convs):
        node = conv["node"]
        if list(conv["weight"].shape[2:]) != [kernel, kernel] or conv["kernel"] != [kernel, kernel]:
            raise OnnxError(f"{path}: wrong shapes: {name} node {_label(node)} has {conv['kernel']} kernels "
                            f"(weight {list(conv['weight'].shape)}), expected {kernel} x {kernel}")
        if conv["strides"] != [stride, stride] or conv["pads"] != [padding] * 4 or conv["dilations"] != [1, 1]:
            raise OnnxError(f"{path}: wrong shapes: {name} node {_label(node)} has strides {conv['strides']}, pads "
                            f"{conv['pads']}, dilations {conv['dilations']}; expected stride {stride}, padding "
                            f"{padding} (the paper's AlexNet)")
        if two_tower_groups == 1 and conv["group"] != 1:
            raise OnnxError(f"{path}: non-AlexNet structure: {name} node {_label(node)} has group "
                            f"{conv['group']}; in AlexNet {name} sees all maps (§3.2)")
        if two_tower_groups == 2:
            groups_seen.append(conv["group"])
    if set(groups_seen) not in ({1}, {2}):
        raise OnnxError(f"{path}: non-AlexNet structure: conv2, conv4, conv5 have groups {groups_seen}; "
                        "expected all 1 (one tower) or all 2 (the two GPUs of §3.2)")
    return groups_seen[0]


def _check_lrns(path, lrns, convs, groups):
    """The same LRN settings in both layers; returns lrn_groups (1: across all maps, 2: per tower)."""
    if lrns[0]["params"] != lrns[1]["params"] or lrns[0]["groups"] != lrns[1]["groups"]:
        raise OnnxError(f"{path}: the two LRN layers differ ({lrns[0]['params']}, groups {lrns[0]['groups']} vs "
                        f"{lrns[1]['params']}, groups {lrns[1]['groups']}); this AlexNet uses one setting")
    lrn_groups = lrns[0]["groups"]
    if lrn_groups == 2 and groups != 2:
        raise OnnxError(f"{path}: non-AlexNet structure: LRN per tower (Split/LRN/Concat) in a one-tower network")
    for lrn, conv in zip(lrns, convs[:2]):
        sizes = lrn.get("split_sizes")
        if sizes is not None and sum(sizes) != conv["weight"].shape[0]:
            raise OnnxError(f"{path}: wrong shapes: {_label(lrn['split'])} splits {sum(sizes)} maps, the "
                            f"convolution before it makes {conv['weight'].shape[0]}")
    return lrn_groups


def _check_classifier(path, fcs, flatten, c5):
    """fc6 -> fc7 -> fc8 chain; returns (hidden units, classes, side of the maps after pool5)."""
    hidden, num_classes, fc6_in = (int(fcs[0]["weight"].shape[0]), int(fcs[2]["weight"].shape[0]),
                                   int(fcs[0]["weight"].shape[1]))
    if [list(f["weight"].shape) for f in fcs[1:]] != [[hidden, hidden], [num_classes, hidden]]:
        raise OnnxError(f"{path}: wrong shapes: fc6/fc7/fc8 weights {[list(f['weight'].shape) for f in fcs]} do "
                        "not chain")
    area, rem = divmod(fc6_in, c5)
    pool5_side = math.isqrt(area)
    if rem or pool5_side ** 2 != area or pool5_side < 1:
        raise OnnxError(f"{path}: wrong shapes: fc6 takes {fc6_in} inputs, not {c5} maps of a square size")
    if flatten["shape"] is not None:
        first, second = flatten["shape"]
        if first not in (0, -1, 1) or second not in (-1, fc6_in) or first == second == -1:
            raise OnnxError(f"{path}: wrong shapes: node {_label(flatten['node'])} reshapes to {flatten['shape']}; "
                            f"expected (batch, {fc6_in}) before fc6")
    return hidden, num_classes, pool5_side


def _build_model(path, config, convs, fcs):
    """Our AlexNet with ``config`` and the file's weights (float32)."""
    try:
        model = AlexNet(**config, seed=0)
    except ValueError as exc:
        raise OnnxError(f"{path}: wrong shapes: {_one_line(exc)}") from None
    expected = model.state_dict()
    state = {}
    for name, layer in zip([name for name, *_ in CONV_LAYERS] + ["fc6", "fc7", "fc8"], convs + fcs):
        bias = layer["bias"] if layer["bias"] is not None else np.zeros(layer["weight"].shape[0], np.float32)
        for what, value in (("weight", layer["weight"]), ("bias", bias)):
            key = f"{name}.{what}"
            if tuple(value.shape) != tuple(expected[key].shape):
                raise OnnxError(f"{path}: wrong shapes: {name} ({layer['weight_name']!r}) {what} is "
                                f"{list(value.shape)}, expected {list(expected[key].shape)} for AlexNet with "
                                f"groups={config['groups']}, width={config['width']:g}, "
                                f"{config['num_classes']} classes")
            state[key] = np.asarray(value, np.float32)
    return model.load_state_dict(state)


def _class_names(path, meta_props, num_classes, notes):
    names = _json_meta(path, meta_props, "class_names")
    wnids = _json_meta(path, meta_props, "wnids")
    for what, value in (("class_names", names), ("wnids", wnids)):
        if value is not None and (not isinstance(value, list) or len(value) != num_classes):
            raise OnnxError(f"{path}: metadata {META_PREFIX}{what} does not list {num_classes} classes")
    if wnids is None and names is None and num_classes == 1000:
        wnids, names = imagenet_wnids(), imagenet_names()
        notes.append("1000 classes and no class names in the file: using the ILSVRC-2012 classes in their "
                     "standard order (alexnet/imagenet_classes.txt)")
    names = readable_names(names, wnids) if (names or wnids) else [str(i) for i in range(num_classes)]
    return names, wnids


def import_onnx(path, channel_order=None, mean_pixel=None, input_scale=None, image_size=None, quiet=False):
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
    graph = _Graph(onnx_model, path)
    meta_props = _read_meta(onnx_model)
    saved_config = _json_meta(path, meta_props, "model_config") or {}
    notes = []

    input_side = _input_side(path, graph.input)
    layers, last = _walk(graph, opset)
    _check_sequence(path, layers)
    convs, lrns, pools, fcs, flatten = ([info for kind, info in layers if kind == k]
                                        for k in ("conv", "lrn", "pool", "fc", "flatten"))
    stray = [name for name in graph.outputs if name not in {fcs[-1]["node"].output[0], last}]
    if stray:
        raise OnnxError(f"{path}: non-AlexNet structure: graph output {stray[0]!r} is not the classifier's output")
    for name, pool in zip(("pool1", "pool2", "pool5"), pools):
        if pool["kernel"] != [3, 3] or pool["strides"] != [2, 2]:
            raise OnnxError(f"{path}: wrong shapes: {name} node {_label(pool['node'])} pools {pool['kernel']} with "
                            f"stride {pool['strides']}; AlexNet's overlapping pooling is 3 x 3, stride 2 (§3.4)")
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
    config = {"num_classes": num_classes, "crop": crop, "groups": groups, "width": width,
              "lrn_groups": lrn_groups, "lrn": lrn, "init": saved_config.get("init", "paper"),
              "dropout": float(saved_config.get("dropout", 0.5))}
    model = _build_model(path, config, convs, fcs)

    spec = _preprocessing(path, meta_props, crop, channel_order, mean_pixel, input_scale, image_size, notes,
                          ours=bool(saved_config))
    names, wnids = _class_names(path, meta_props, num_classes, notes)
    meta = {"source": {"onnx": str(path), "sha256": _sha256(path), "producer":
                       f"{onnx_model.producer_name} {onnx_model.producer_version}".strip(),
                       "opset": int(opset), "graph": onnx_model.graph.name, "notes": notes},
            "class_names": names, "wnids": wnids, "image_size": spec.image_size,
            "args": {"input_scale": spec.input_scale}, "preprocessing": spec.to_meta(),
            "epoch": None, "history": []}
    if not quiet:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    return model, spec, meta, notes


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_to_checkpoint(onnx_path, out_path, **kwargs):
    """Import ``onnx_path`` and write a normal checkpoint to ``out_path``; returns (model, spec, meta)."""
    from .checkpoint import save_checkpoint

    model, spec, meta, _ = import_onnx(onnx_path, **kwargs)
    mean_image = spec.mean_image if spec.mean_kind == "image" else None
    save_checkpoint(out_path, model, meta, mean_image=mean_image)
    return model, spec, meta


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def parse_mean_pixel(text):
    try:
        values = [float(v) for v in str(text).replace(" ", "").split(",")]
    except ValueError:
        raise ValueError(f"--mean-pixel {text!r}: expected three numbers like 104,117,123") from None
    if len(values) != 3:
        raise ValueError(f"--mean-pixel {text!r}: expected three numbers like 104,117,123")
    return values


def main_export(args):
    """``python -m alexnet export``."""
    onnx_model = export_checkpoint(args.checkpoint, args.onnx, softmax=args.softmax, opset=args.opset)
    size = Path(args.onnx).stat().st_size
    ops = sorted({n.op_type for n in onnx_model.graph.node})
    print(f"wrote {args.onnx} ({size / 2 ** 20:.1f} MiB, opset {args.opset}, ops: {', '.join(ops)}); "
          f"checked with onnx.checker")
    return 0


def main_import(args):
    """``python -m alexnet import-onnx``."""
    mean_pixel = parse_mean_pixel(args.mean_pixel) if args.mean_pixel is not None else None
    model, spec, meta = import_to_checkpoint(args.onnx, args.out, channel_order=args.channel_order,
                                             mean_pixel=mean_pixel, input_scale=args.input_scale,
                                             image_size=args.image_size)
    config = model.config
    lrn_mode = "per tower" if config["lrn_groups"] == 2 else "across all maps"
    print(f"wrote {args.out}: AlexNet with {config['num_classes']} classes, crop {config['crop']}, groups "
          f"{config['groups']}, width {config['width']:g}, LRN {lrn_mode} "
          f"(n={config['lrn']['size']}, alpha={config['lrn']['alpha']:g} in the paper's convention, "
          f"beta={config['lrn']['beta']:g}, k={config['lrn']['k']:g})")
    print(f"input: {spec.describe()}")
    return 0
