"""A layer-by-layer table of AlexNet to read next to Figure 2 of the paper.

For every layer: the output shape of one image, the number of learned
parameters, and the multiply-adds (MACs) it costs per image:

    convolution:      H_out * W_out * C_out * (C_in / groups) * k_h * k_w
    fully connected:  in_features * out_features
    (ReLU, LRN, pooling, dropout: counted as 0; they are cheap next to these.)

The shapes are computed from the layers' arithmetic, without running the
network, so the table of the full 61-million-parameter model costs nothing.
"""

from dataclasses import dataclass

from nn import Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    parameters: int
    macs: int

    @property
    def neurons(self):
        size = 1
        for side in self.output_shape:
            size *= side
        return size


def layer_rows(model):
    """One LayerRow per layer of ``model`` (an AlexNet, or any Sequential of nn layers)."""
    shape = (3, model.crop, model.crop)
    rows = []
    for name, layer in model.named_children():
        params = sum(p.size for p in layer.parameters())
        macs = 0
        if isinstance(layer, Conv2d):
            _, c, h, w = layer.output_shape((1,) + shape)
            kh, kw = layer.kernel_size
            macs = c * h * w * (layer.in_channels // layer.groups) * kh * kw
            shape = (c, h, w)
            kind = f"conv {kh}x{kw}/{layer.stride[0]}" + (f" g{layer.groups}" if layer.groups > 1 else "")
        elif isinstance(layer, MaxPool2d):
            shape = layer.output_shape((1,) + shape)[1:]
            kind = f"maxpool {layer.kernel_size[0]}/{layer.stride[0]}"
        elif isinstance(layer, Flatten):
            size = 1
            for side in shape:
                size *= side
            shape = (size,)
            kind = "flatten"
        elif isinstance(layer, Linear):
            shape = (layer.out_features,)
            macs = layer.in_features * layer.out_features
            kind = "fc"
        elif isinstance(layer, LocalResponseNorm):
            kind = f"LRN n={layer.size}"
        elif isinstance(layer, Dropout):
            kind = f"dropout {layer.p:g}"
        else:
            kind = type(layer).__name__
        rows.append(LayerRow(name, kind, tuple(int(s) for s in shape), int(params), int(macs)))
    return rows


def totals(rows):
    """(parameters, MACs, neurons of the eight learned layers) summed over ``rows``."""
    learned = [r for r in rows if r.kind.startswith(("conv", "fc"))]
    return (sum(r.parameters for r in rows), sum(r.macs for r in rows), sum(r.neurons for r in learned))


def format_summary(model):
    """The table as text, with totals and a note on 224 vs 227 (§3.5)."""
    rows = layer_rows(model)
    header = f"{'layer':<8} {'type':<16} {'output shape':<16} {'parameters':>12} {'MACs/image':>15}"
    lines = [
        f"AlexNet (§3.5, Figure 2): input 3 x {model.crop} x {model.crop}, groups={model.groups}, "
        f"width={model.width:g}, {model.num_classes} classes",
        header,
        "-" * len(header),
    ]
    for row in rows:
        shape = " x ".join(str(s) for s in row.output_shape)
        params = f"{row.parameters:,}" if row.parameters else ""
        macs = f"{row.macs:,}" if row.macs else ""
        lines.append(f"{row.name:<8} {row.kind:<16} {shape:<16} {params:>12} {macs:>15}")
    params, macs, neurons = totals(rows)
    lines.append("-" * len(header))
    lines.append(f"{'total':<42} {params:>12,} {macs:>15,}")
    lines.append(f"neurons (outputs of the 8 learned layers): {neurons:,}  (paper: about 650,000)")
    lines.append(
        f"parameters: {params:,}  (paper: about 60 million; exactly 60,965,224 at 227 with "
        f"2 groups and 1000 classes)"
    )
    if model.crop == 227:
        lines.append(
            "input 227, not the paper's 224: conv1 (11x11, stride 4, no padding) gives "
            "55 x 55 only from 227; 224 would give 54 x 54."
        )
    return "\n".join(lines)
