"""Reading an ONNX graph as AlexNet's chain of layers: nodes -> ``[(kind, info)]``.

``load_onnx_file`` loads and checks a file (``onnx.checker`` with ``full_check``, i.e. with
shape inference; an opset newer than the installed onnx knows is refused, as it cannot be
checked); ``walk`` follows the single
chain of nodes from the image input and turns each node, or the Split -> LRN, LRN -> Concat
pattern of LRN per tower, into one layer of a kind in ``EXPECTED_LAYERS`` with its
attributes and constant weights; ``check_sequence`` checks the kinds against §3.5's order.
Shapes and sizes are checked afterwards (importer.py).

Operators read (default domain, any opset the checker accepts): Conv, Relu, LRN,
Split/LRN/Concat, MaxPool, Flatten, Reshape, Gemm, Softmax; Dropout and Identity are skipped
(the identity at test time) and Constant nodes are read as constants. Anything else is
refused with a one-line OnnxError naming the node and its op type.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .metadata import OnnxError, one_line, require_onnx

MAPPED_OPS = (
    "Conv",
    "Relu",
    "LRN",
    "Split/LRN/Concat",
    "MaxPool",
    "Flatten",
    "Reshape",
    "Gemm",
    "Dropout",
    "Identity",
    "Softmax",
)
#: The layer sequence of §3.5 / Figure 2, as the importer sees it.
EXPECTED_LAYERS = (
    "conv",
    "relu",
    "lrn",
    "pool",
    "conv",
    "relu",
    "lrn",
    "pool",
    "conv",
    "relu",
    "conv",
    "relu",
    "conv",
    "relu",
    "pool",
    "flatten",
    "fc",
    "relu",
    "fc",
    "relu",
    "fc",
)
LAYER_WORDS = {
    "conv": "Conv",
    "relu": "Relu",
    "lrn": "LRN",
    "pool": "MaxPool",
    "flatten": "Flatten/Reshape",
    "fc": "Gemm",
    "softmax": "Softmax",
}


def _f32(value):
    """The shortest decimal that is the float32 ``value`` (ONNX float attributes are float32)."""
    return float(str(np.float32(value)))


def load_onnx_file(path: str | Path):
    """``onnx.load`` + ``onnx.checker`` (``full_check``: with shape inference), every failure as a
    one-line OnnxError; an opset newer than the installed onnx knows is refused first."""
    onnx = require_onnx()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise OnnxError(
            f"{path} is not a readable ONNX file (truncated or corrupt?): "
            f"{type(exc).__name__}: {one_line(exc)}"
        ) from None
    if not model.graph.node:
        raise OnnxError(f"{path} is not a readable ONNX model (no graph nodes; truncated or corrupt?)")
    newest = onnx.defs.onnx_opset_version()
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version > newest:
            raise OnnxError(
                f"{path} declares opset {opset.version}, newer than the installed onnx "
                f"{onnx.__version__} knows (up to {newest}); its operators cannot be checked"
            )
    try:
        # full_check adds shape inference: every node's declared shapes must agree.
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise OnnxError(f"{path} fails the ONNX checker (truncated or corrupt?): {one_line(exc)}") from None
    return model


class Graph:
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
                raise OnnxError(
                    f"{path}: initializer {tensor.name!r} cannot be read (external data missing? "
                    f"{one_line(exc)})"
                ) from None
        self.nodes = []
        for node in graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise OnnxError(
                    f"{path}: node {node.name or node.output[0]!r} has op type {node.domain}::"
                    f"{node.op_type}, a custom operator this importer cannot map"
                )
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
            raise OnnxError(
                f"{path}: expected one image input, found {len(inputs)} "
                f"({', '.join(v.name for v in inputs) or 'none'})"
            )
        self.input = inputs[0]
        self.outputs = [v.name for v in graph.output]

    def _constant_value(self, node):
        from onnx import helper, numpy_helper

        for attr in node.attribute:
            if attr.name == "value":
                return numpy_helper.to_array(attr.t)
            if attr.name in ("value_ints", "value_floats", "value_int", "value_float"):
                return np.asarray(helper.get_attribute_value(attr))
        raise OnnxError(
            f"{self.path}: Constant node {node.name!r} has no tensor value this importer can read"
        )

    def const(self, node, index, what):
        """Input ``index`` of ``node`` as a constant (None when absent); ``what`` names it in errors."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.constants:
            raise OnnxError(
                f"{self.path}: node {label(node)}: its {what} {name!r} is computed in the graph, "
                "not a constant (initializer) this importer can read"
            )
        return self.constants[name]

    def parameters(self, node, ndim):
        """A Conv's or Gemm's constant weight (``ndim``-D) and bias (None when it has none)."""
        weight, bias = self.const(node, 1, "weight"), self.const(node, 2, "bias")
        if weight is None or weight.ndim != ndim:
            raise OnnxError(f"{self.path}: node {label(node)} needs a {ndim}-D weight initializer")
        return weight, bias

    def only_consumer(self, tensor):
        """The one node that reads ``tensor`` (None at the end of the chain); a branch is an error."""
        users = self.consumers.get(tensor, [])
        if len(users) > 1:
            raise OnnxError(
                f"{self.path}: tensor {tensor!r} feeds {len(users)} nodes "
                f"({', '.join(label(n) for n in users)}); AlexNet is a single chain"
            )
        return users[0] if users else None


def label(node) -> str:
    """How errors name a node: ``'conv1' (Conv)``."""
    return f"{node.name or node.output[0]!r} ({node.op_type})"


def _attrs(node):
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _check_attrs(path, node, attrs, allowed):
    extra = sorted(set(attrs) - set(allowed))
    if extra:
        raise OnnxError(f"{path}: node {label(node)} has attributes {extra} this importer cannot map")


def walk(graph: Graph, opset: int) -> tuple[list, str]:
    """The chain of layers from the image input: ``([(kind, info dict)], the last tensor)``."""
    path = graph.path
    layers = []
    tensor = graph.input.name
    seen = set()
    while True:
        node = graph.only_consumer(tensor)
        if node is None:
            break
        if id(node) in seen:  # pragma: no cover - checker rejects cycles
            raise OnnxError(f"{path}: the graph has a cycle at {label(node)}")
        seen.add(id(node))
        op, attrs = node.op_type, _attrs(node)
        if node.input[0] != tensor:
            raise OnnxError(
                f"{path}: node {label(node)} takes the activations as input "
                f"{list(node.input).index(tensor)}, not as its first input"
            )
        for extra in node.output[1:]:
            if extra and (extra in graph.consumers or extra in graph.outputs) and op != "Split":
                raise OnnxError(
                    f"{path}: node {label(node)}: its extra output {extra!r} is used; "
                    "only the main output can be mapped"
                )
        if op == "Split":  # three nodes make one layer: continue after the Concat
            node, layer = _split_lrn(graph, node, attrs)
        elif op in _READERS:
            layer = _READERS[op](graph, node, attrs, opset)
        else:
            raise OnnxError(
                f"{path}: node {label(node)} has op type {op}, which this importer cannot map to "
                f"AlexNet's layers (it maps {', '.join(MAPPED_OPS)})"
            )
        if layer is not None:
            layers.append(layer)
        tensor = node.output[0]
    return layers, tensor


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _explicit_pads(path, node, attrs):
    """The node's ``pads`` (begin h, begin w, end h, end w); ``auto_pad`` other than VALID without pads
    is refused, since its padding depends on the input size."""
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    auto_pad = _text(attrs.get("auto_pad", "NOTSET"))
    if auto_pad not in ("NOTSET", "VALID") or (auto_pad == "VALID" and any(pads)):
        raise OnnxError(f"{path}: node {label(node)} uses auto_pad={auto_pad}; only explicit pads are mapped")
    return pads


# One reader per operator: ``(graph, node, its attributes, opset)`` -> ``(kind, info)``, or None
# for a node that is the identity at test time.
def _read_conv(graph, node, attrs, opset):
    path = graph.path
    _check_attrs(path, node, attrs, ("kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"))
    weight, bias = graph.parameters(node, ndim=4)
    pads = _explicit_pads(path, node, attrs)
    return "conv", dict(
        node=node,
        weight=weight,
        bias=bias,
        weight_name=node.input[1],
        strides=list(attrs.get("strides", [1, 1])),
        pads=pads,
        dilations=list(attrs.get("dilations", [1, 1])),
        group=int(attrs.get("group", 1)),
        kernel=list(attrs.get("kernel_shape", weight.shape[2:])),
    )


def _read_relu(graph, node, attrs, opset):
    return "relu", dict(node=node)


def _read_lrn(graph, node, attrs, opset):
    return "lrn", dict(node=node, groups=1, params=_lrn_params(graph.path, node, attrs))


def _read_max_pool(graph, node, attrs, opset):
    path = graph.path
    _check_attrs(
        path,
        node,
        attrs,
        ("kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad", "storage_order"),
    )
    pads = _explicit_pads(path, node, attrs)
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise OnnxError(
            f"{path}: node {label(node)} is a dilated max-pooling; only plain pooling (§3.4) is mapped"
        )
    return "pool", dict(
        node=node,
        kernel=list(attrs.get("kernel_shape", [])),
        strides=list(attrs.get("strides", [1, 1])),
        pads=pads,
        ceil=int(attrs.get("ceil_mode", 0)),
    )


def _read_flatten(graph, node, attrs, opset):
    _check_attrs(graph.path, node, attrs, ("axis",))
    if int(attrs.get("axis", 1)) != 1:
        raise OnnxError(
            f"{graph.path}: node {label(node)} flattens from axis {attrs['axis']}; AlexNet "
            "flattens every map of one image (axis 1)"
        )
    return "flatten", dict(node=node, shape=None)


def _read_reshape(graph, node, attrs, opset):
    _check_attrs(graph.path, node, attrs, ("allowzero", "shape"))
    shape = attrs.get("shape") if "shape" in attrs else graph.const(node, 1, "shape")
    if shape is None or np.asarray(shape).ndim != 1 or len(shape) != 2:
        raise OnnxError(
            f"{graph.path}: node {label(node)} reshapes to "
            f"{None if shape is None else list(shape)}; only the flattening to (batch, features) "
            "before fc6 is mapped"
        )
    return "flatten", dict(node=node, shape=[int(v) for v in shape])


def _read_gemm(graph, node, attrs, opset):
    path = graph.path
    _check_attrs(path, node, attrs, ("alpha", "beta", "transA", "transB", "broadcast"))
    if (
        int(attrs.get("transA", 0))
        or _f32(attrs.get("alpha", 1.0)) != 1.0
        or _f32(attrs.get("beta", 1.0)) != 1.0
    ):
        raise OnnxError(
            f"{path}: node {label(node)} has transA={attrs.get('transA', 0)}, alpha="
            f"{attrs.get('alpha', 1.0)}, beta={attrs.get('beta', 1.0)}; only y = x W^T + b "
            "(transA 0, alpha 1, beta 1) is mapped"
        )
    weight, bias = graph.parameters(node, ndim=2)
    if not int(attrs.get("transB", 0)):
        weight = weight.T  # stored (in, out): ours is (out, in)
    if bias is not None and bias.size not in (1, weight.shape[0]):
        raise OnnxError(
            f"{path}: node {label(node)}: bias of shape {bias.shape} for {weight.shape[0]} outputs"
        )
    if bias is not None:
        bias = np.broadcast_to(bias.reshape(-1), (weight.shape[0],))
    return "fc", dict(node=node, weight=weight, bias=bias, weight_name=node.input[1])


def _read_identity(graph, node, attrs, opset):
    return None  # Dropout and Identity: the identity at test time


def _read_softmax(graph, node, attrs, opset):
    _check_attrs(graph.path, node, attrs, ("axis",))
    if int(attrs.get("axis", 1 if opset < 13 else -1)) not in (1, -1):
        raise OnnxError(
            f"{graph.path}: node {label(node)} is a softmax over axis {attrs['axis']}, not over the classes"
        )
    return "softmax", dict(node=node)


_READERS = {
    "Conv": _read_conv,
    "Relu": _read_relu,
    "LRN": _read_lrn,
    "MaxPool": _read_max_pool,
    "Flatten": _read_flatten,
    "Reshape": _read_reshape,
    "Gemm": _read_gemm,
    "Dropout": _read_identity,
    "Identity": _read_identity,
    "Softmax": _read_softmax,
}


def _lrn_params(path, node, attrs):
    _check_attrs(path, node, attrs, ("size", "alpha", "beta", "bias"))
    size = int(attrs["size"])
    if size % 2 == 0:
        raise OnnxError(
            f"{path}: node {label(node)} has an even LRN size {size}; ONNX centres an even "
            "window differently from this project's LRN, so only odd sizes are mapped"
        )
    alpha = _f32(attrs.get("alpha", 1e-4))
    # ONNX divides alpha by the size (Caffe's convention); the paper's alpha multiplies the plain sum.
    return {
        "size": size,
        "alpha": float(f"{alpha / size:.7g}"),
        "beta": _f32(attrs.get("beta", 0.75)),
        "k": _f32(attrs.get("bias", 1.0)),
    }


def _split_lrn(graph, split, attrs):
    """Split(axis 1) -> LRN per block -> Concat(axis 1): LRN with one window per tower."""
    path = graph.path
    _check_attrs(path, split, attrs, ("axis", "split", "num_outputs"))
    if int(attrs.get("axis", 0)) != 1:
        raise OnnxError(
            f"{path}: node {label(split)} splits axis {attrs.get('axis', 0)}; only the "
            "Split(channels) -> LRN -> Concat pattern of LRN per tower is mapped"
        )
    sizes = attrs.get("split")
    if sizes is None and len(split.input) > 1 and split.input[1]:
        sizes = graph.const(split, 1, "split sizes")
    sizes = None if sizes is None else [int(v) for v in np.asarray(sizes).reshape(-1)]
    parts = list(split.output)
    if len(parts) != 2:
        raise OnnxError(f"{path}: node {label(split)} splits into {len(parts)} blocks; AlexNet has 2 towers")
    if sizes is not None and len(set(sizes)) != 1:
        raise OnnxError(
            f"{path}: node {label(split)} splits the maps unevenly {sizes}; the towers are halves"
        )
    lrns, params = [], []
    for part in parts:
        node = graph.only_consumer(part)
        if node is None or node.op_type != "LRN":
            raise OnnxError(
                f"{path}: node {label(split)} is not followed by one LRN per block "
                f"({'nothing' if node is None else label(node)} uses {part!r}); only "
                "Split -> LRN -> Concat is mapped"
            )
        lrns.append(node)
        params.append(_lrn_params(path, node, _attrs(node)))
    if params[0] != params[1]:
        raise OnnxError(
            f"{path}: the two towers' LRN nodes {label(lrns[0])}, {label(lrns[1])} differ: "
            f"{params[0]} vs {params[1]}"
        )
    concat = graph.only_consumer(lrns[0].output[0])
    if (
        concat is None
        or concat.op_type != "Concat"
        or list(concat.input) != [n.output[0] for n in lrns]
        or int(_attrs(concat).get("axis", 0)) != 1
    ):
        raise OnnxError(
            f"{path}: the LRN nodes after {label(split)} are not joined by Concat(axis=1) in tower order"
        )
    return concat, ("lrn", dict(node=lrns[0], groups=2, params=params[0], split=split, split_sizes=sizes))


def check_sequence(path: Path, layers: list) -> None:
    """The layer kinds of ``walk`` are §3.5's order (``EXPECTED_LAYERS``, optionally a final Softmax)."""
    kinds = [kind for kind, _ in layers]
    expected = list(EXPECTED_LAYERS)
    if kinds and kinds[-1] == "softmax":
        expected = expected + ["softmax"]
    for i, want in enumerate(expected):
        if i >= len(kinds):
            raise OnnxError(
                f"{path}: non-AlexNet structure: the chain ends after {len(kinds)} layers; "
                f"expected {LAYER_WORDS[want]} next (AlexNet: 2 x Conv-Relu-LRN-MaxPool, "
                "3 x Conv-Relu, MaxPool, Flatten, 2 x Gemm-Relu, Gemm [Softmax])"
            )
        if kinds[i] != want:
            node = layers[i][1]["node"]
            hint = ""
            if want == "lrn" and kinds[i] == "pool" and i + 1 < len(kinds) and kinds[i + 1] == "lrn":
                hint = (
                    "; LRN after max-pooling is CaffeNet's order (bvlc_reference_caffenet), not "
                    "AlexNet's (§3.3-3.4: normalization, then pooling)"
                )
            elif want == "lrn":
                hint = "; a network without LRN (e.g. torchvision's AlexNet) is not the paper's AlexNet"
            raise OnnxError(
                f"{path}: non-AlexNet structure: layer {i + 1} is node {label(node)}, expected "
                f"{LAYER_WORDS[want]}{hint}"
            )
    if len(kinds) > len(expected):
        node = layers[len(expected)][1]["node"]
        raise OnnxError(f"{path}: non-AlexNet structure: node {label(node)} follows fc8")
