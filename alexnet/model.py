"""The network of §3.5 and Figure 2, assembled from the hand-written ``nn`` layers.

    input 3 x 227 x 227  (mean-subtracted RGB, §2)
    conv1  96 kernels 11x11x3, stride 4      -> ReLU (§3.1) -> LRN (§3.3) -> max-pool 3/2 (§3.4)
    conv2 256 kernels  5x5x48, pad 2, 2 groups -> ReLU -> LRN -> max-pool 3/2
    conv3 384 kernels  3x3x256, pad 1         -> ReLU       (all of conv2's maps: one group, §3.2)
    conv4 384 kernels  3x3x192, pad 1, 2 groups -> ReLU
    conv5 256 kernels  3x3x192, pad 1, 2 groups -> ReLU -> max-pool 3/2
    fc6  4096 -> ReLU -> dropout 0.5 (§4.2)
    fc7  4096 -> ReLU -> dropout 0.5
    fc8  num_classes  (the softmax lives in the loss, §3.5)

224 or 227? The paper says the input is 224 x 224 x 3 and that conv1's output is
55 x 55. With an 11 x 11 kernel, stride 4 and no padding the output side is
floor((H - 11) / 4) + 1, which is 55 only for H = 227 (224 gives 54). The paper
does not mention padding, so we take the arithmetic at its word: the default
crop is 227, and the famous count of 60,965,224 parameters (two groups, 1000
classes) follows from it. Any crop that leaves a valid map after pool5 works
(the smallest is 67); fc6's input size is computed from the crop, e.g. 112 for
reduced-scale runs gives a 2 x 2 map after pool5.

The two "GPUs" of §3.2 are grouped convolutions: ``groups=2`` in conv2, conv4
and conv5 (conv3 sees both halves). ``groups=1`` gives the single-tower network.
In the paper each GPU also normalizes only its own kernel maps (§3.3 on one GPU's
maps), so with ``groups=2`` the two LRN layers use ``LocalResponseNorm(groups=2)``:
the window never crosses between the towers. ``lrn_groups=1`` lets it run across
all maps, as Caffe's BVLC AlexNet does (and as this project did before the option
existed; checkpoints without the setting load that way).

Dropout is the inverted kind of ``nn.Dropout`` (scale kept units by 2 in
training, identity at test): the same test-time function as the paper's
"multiply the outputs by 0.5" (see nn/dropout.py).
"""

import math

import numpy as np

from nn import Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential, init
from nn.conv import conv_output_size

#: (name, out_channels, kernel, stride, padding, groups in the two-tower net) of the five conv layers.
CONV_LAYERS = (
    ("conv1", 96, 11, 4, 0, 1),
    ("conv2", 256, 5, 1, 2, 2),
    ("conv3", 384, 3, 1, 1, 1),
    ("conv4", 384, 3, 1, 1, 2),
    ("conv5", 256, 3, 1, 1, 2),
)
FC_WIDTH = 4096
#: Layers whose bias starts at 1 in the paper's initialization (§5); all others start at 0.
BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")
INITS = ("paper", "kaiming")
MIN_CROP = 67
#: LRN hyper-parameters of §3.3 (alpha multiplies the plain sum of squares, as the paper writes it).
LRN_PAPER = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}


def scaled_channels(channels, width, groups):
    """round(channels * width), rounded to a multiple of ``groups`` (and at least ``groups``)."""
    return max(groups, int(round(channels * width / groups)) * groups)


def spatial_sizes(crop):
    """Side of the feature map after conv1, pool1, conv2, pool2, conv3..5 and pool5 for ``crop``."""
    sizes = {}
    side = crop
    for name, _, kernel, stride, padding, _ in CONV_LAYERS:
        side = conv_output_size(side, kernel, stride, padding)
        sizes[name] = side
        if name in ("conv1", "conv2", "conv5"):
            side = conv_output_size(side, 3, 2, 0)
            sizes["pool" + name[-1]] = side
    return sizes


#: The most parameters a configuration may imply (each of num_classes, crop and width is bounded
#: alone in alexnet/config.py). 10^9 float32 numbers are 4 GiB, 12 GiB with the gradients and
#: velocities; the widest network at the paper's crop (width 4, crop 227, 1000 classes) has
#: 9.3 x 10^8.
MAX_PARAMETERS = 10**9


def parameter_shapes(config: dict) -> dict:
    """``{name: shape}`` of every parameter of the AlexNet ``config`` describes, in the order of
    ``model.parameters()``, computed without building it (§3.5's layer table)."""
    width, groups = float(config.get("width", 1.0)), int(config.get("groups", 2))
    shapes, in_channels = {}, 3
    for name, channels, kernel, _, _, layer_groups in CONV_LAYERS:
        out_channels = scaled_channels(channels, width, groups)
        g = layer_groups if groups == 2 else 1
        shapes[f"{name}.weight"] = (out_channels, in_channels // g, kernel, kernel)
        shapes[f"{name}.bias"] = (out_channels,)
        in_channels = out_channels
    hidden = max(1, int(round(FC_WIDTH * width)))
    fc6_in = in_channels * spatial_sizes(int(config["crop"]))["pool5"] ** 2
    for name, n_in, n_out in (
        ("fc6", fc6_in, hidden),
        ("fc7", hidden, hidden),
        ("fc8", hidden, config["num_classes"]),
    ):
        shapes[f"{name}.weight"] = (int(n_out), int(n_in))
        shapes[f"{name}.bias"] = (int(n_out),)
    return shapes


def parameter_count(config: dict) -> int:
    """How many numbers the parameters of the AlexNet ``config`` describes hold, without building it."""
    return sum(math.prod(shape) for shape in parameter_shapes(config).values())


def check_size(config: dict) -> None:
    """ValueError unless the AlexNet ``config`` describes has at most MAX_PARAMETERS parameters.
    Each of num_classes, crop and width is bounded alone (alexnet/config.py); their product is
    bounded here: --width 4 with --crop 1024 would ask for 15 x 10^9 parameters (60 GB)."""
    count = parameter_count(config)
    if count > MAX_PARAMETERS:
        described = ", ".join(
            f"{key} {config[key]}" for key in ("num_classes", "crop", "width") if key in config
        )
        raise ValueError(
            f"AlexNet with {described} would have {count:,} parameters ({4 * count / 2**30:.0f} GiB "
            f"in float32), more than the bound of {MAX_PARAMETERS:,}; use a smaller crop, width "
            f"or number of classes (the paper's network has 60,965,224)"
        )


class AlexNet(Sequential):
    """AlexNet (§3.5, Figure 2): five convolutional and three fully connected layers.

    Parameters
    ----------
    num_classes: outputs of fc8 (1000 for ILSVRC).
    crop: side of the square input (227 by default, see the module docstring; >= 67).
    groups: 2 for the two-GPU network of §3.2 (conv2, conv4, conv5 grouped), 1 for one tower.
    init: "paper" (§5: weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7, else 0)
        or "kaiming" (He et al. 2015: N(0, 2 / fan_in), zero biases; trains from scratch
        without a warm-up, use it with ``--input-scale 64``).
    width: multiplies every channel count and the fc6/fc7 widths (reduced networks for tests).
    dropout: dropout probability of fc6 and fc7 (0.5 in §4.2; 0 disables).
    lrn_groups: blocks of maps that LRN normalizes separately; None means ``groups`` (each
        tower its own maps, as in the paper); 1 means across all maps (Caffe's BVLC AlexNet).
    lrn: LRN hyper-parameters {"size", "alpha", "beta", "k"} in the paper's convention; None
        means §3.3's n = 5, alpha = 1e-4, beta = 0.75, k = 2. (Caffe's BVLC AlexNet, imported
        from ONNX, uses k = 1 and alpha = 2e-5 in this convention.)
    dtype: float32 (training) or float64 (gradient checks).
    seed: fixes the initial weights and the dropout masks; None draws fresh entropy.

    The layers are attributes in the order of the forward pass (``model.conv1``,
    ``model.relu1``, ``model.norm1``, ``model.pool1``, ..., ``model.fc8``), so the model
    is a ``Sequential``: ``forward``/``backward`` apply them in order and in reverse, and
    ``state_dict()`` names are ``conv1.weight``, ``fc8.bias``, ...
    """

    def __init__(
        self,
        num_classes=1000,
        crop=227,
        groups=2,
        init="paper",
        width=1.0,
        dropout=0.5,
        dtype=np.float32,
        seed=None,
        lrn_groups=None,
        lrn=None,
    ):
        if init not in INITS:
            raise ValueError(f"AlexNet: init must be one of {INITS}, got {init!r}")
        if groups not in (1, 2):
            raise ValueError(f"AlexNet: groups must be 1 (one tower) or 2 (two GPUs, §3.2), got {groups!r}")
        if not width > 0:
            raise ValueError(f"AlexNet: width must be positive, got {width!r}")
        if int(num_classes) < 1:
            raise ValueError(f"AlexNet: num_classes must be at least 1, got {num_classes!r}")
        lrn_groups = int(groups) if lrn_groups is None else lrn_groups
        if lrn_groups not in (1, groups):
            raise ValueError(
                f"AlexNet: lrn_groups must be 1 (across all maps) or {groups} (one window per "
                f"tower), got {lrn_groups!r}"
            )
        unknown = sorted(set(lrn or {}) - set(LRN_PAPER))
        if unknown:
            raise ValueError(f"AlexNet: unknown LRN settings {unknown}; expected some of {sorted(LRN_PAPER)}")
        merged = dict(LRN_PAPER, **(lrn or {}))
        lrn = {
            "size": int(merged["size"]),
            "alpha": float(merged["alpha"]),
            "beta": float(merged["beta"]),
            "k": float(merged["k"]),
        }
        sizes = spatial_sizes(int(crop))
        if sizes["pool5"] < 1:
            raise ValueError(
                f"AlexNet: crop {crop} is too small; the feature map vanishes before pool5 "
                f"(sizes {sizes}); the smallest valid crop is {MIN_CROP}"
            )
        self.config = {
            "num_classes": int(num_classes),
            "crop": int(crop),
            "groups": int(groups),
            "init": init,
            "width": float(width),
            "dropout": float(dropout),
            "dtype": np.dtype(dtype).name,
            "lrn_groups": int(lrn_groups),
            "lrn": dict(lrn),
        }
        check_size(self.config)  # before a single weight is allocated
        self.num_classes, self.crop, self.groups = int(num_classes), int(crop), int(groups)
        self.init_scheme, self.width = init, float(width)
        self.spatial = sizes
        rng = np.random.default_rng(seed)
        # Separate, seed-derived generators so that the dropout masks do not depend on how
        # many numbers the weight initialization drew.
        dropout_seeds = np.random.SeedSequence(seed).spawn(2) if seed is not None else [None, None]

        in_channels = 3
        for name, channels, kernel, stride, padding, layer_groups in CONV_LAYERS:
            g = layer_groups if groups == 2 else 1
            out_channels = scaled_channels(channels, width, groups)
            index = name[-1]
            setattr(
                self,
                name,
                Conv2d(
                    in_channels,
                    out_channels,
                    kernel,
                    stride=stride,
                    padding=padding,
                    groups=g,
                    dtype=dtype,
                    rng=rng,
                ),
            )
            setattr(self, "relu" + index, ReLU())
            if name in ("conv1", "conv2"):
                setattr(self, "norm" + index, LocalResponseNorm(**lrn, groups=lrn_groups))
            if name in ("conv1", "conv2", "conv5"):
                setattr(self, "pool" + index, MaxPool2d(3, 2))
            in_channels = out_channels
        self.flatten = Flatten()
        hidden = max(1, int(round(FC_WIDTH * width)))
        fc6_in = in_channels * sizes["pool5"] ** 2
        self.fc6 = Linear(fc6_in, hidden, dtype=dtype, rng=rng)
        self.relu6 = ReLU()
        self.drop6 = Dropout(dropout, rng=np.random.default_rng(dropout_seeds[0]))
        self.fc7 = Linear(hidden, hidden, dtype=dtype, rng=rng)
        self.relu7 = ReLU()
        self.drop7 = Dropout(dropout, rng=np.random.default_rng(dropout_seeds[1]))
        self.fc8 = Linear(hidden, int(num_classes), dtype=dtype, rng=rng)
        self.reset_parameters(init, rng)

    # -- initialization (§5) -------------------------------------------------
    def learned_layers(self):
        """The eight learned layers, (name, layer): conv1..conv5, fc6..fc8."""
        return [
            (name, module) for name, module in self.named_children() if isinstance(module, (Conv2d, Linear))
        ]

    def reset_parameters(self, scheme="paper", rng=None):
        """Initialize every weight and bias.

        "paper" (§5): "We initialized the weights in each layer from a zero-mean Gaussian
        distribution with standard deviation 0.01. We initialized the neuron biases in the
        second, fourth, and fifth convolutional layers, as well as in the fully-connected
        hidden layers, with the constant 1 ... [and] with the constant 0 in the remaining layers."
        "kaiming": N(0, 2 / fan_in) weights, zero biases.
        """
        rng = rng if rng is not None else np.random.default_rng()
        for name, layer in self.learned_layers():
            if scheme == "paper":
                init.normal_(layer.weight, 0.01, rng)
                init.constant_(layer.bias, 1.0 if name in BIAS_ONE else 0.0)
            elif scheme == "kaiming":
                init.kaiming_normal_(layer.weight, rng)
                init.constant_(layer.bias, 0.0)
            else:
                raise ValueError(f"init must be one of {INITS}, got {scheme!r}")
        return self

    # -- dropout generators (for checkpoints) --------------------------------
    def dropout_layers(self):
        return [(name, module) for name, module in self.named_children() if isinstance(module, Dropout)]

    def rng_state(self):
        """name -> ``bit_generator.state`` of every dropout layer's generator."""
        return {name: layer.generator.bit_generator.state for name, layer in self.dropout_layers()}

    def set_rng_state(self, states):
        for name, layer in self.dropout_layers():
            layer.generator.bit_generator.state = states[name]

    # -- the last hidden layer (§6.1, Figure 4 right) --------------------------
    def fc7_features(self, x):
        """The 4096-d activity of the last hidden layer (fc7 after its ReLU), in eval mode.

        §6.1 compares images by the Euclidean distance of these vectors. The model's
        train/eval mode is restored afterwards.
        """
        was_training = self.training
        self.eval()
        try:
            for name, module in self.named_children():
                x = module.forward(x)
                if name == "relu7":
                    return x
        finally:
            self.train(was_training)
        raise RuntimeError("AlexNet has no relu7 layer")  # pragma: no cover

    def summary(self, verbose=True):
        """The layer-by-layer table next to Figure 2 (output shape, parameters, multiply-adds
        per image); printed when ``verbose``, always returned as a string. See alexnet.summary."""
        from .summary import format_summary

        text = format_summary(self)
        if verbose:
            print(text)
        return text

    def extra_repr(self):
        return ", ".join(f"{key}={value!r}" for key, value in self.config.items())
