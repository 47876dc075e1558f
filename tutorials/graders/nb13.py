"""Notebook 13's exercise, the capstone: a network made only of the learner's layers, trained until it overfits
twenty images.

The check builds the learner's network, confirms that every layer in it is one of theirs (``_capstone.Layers``),
compares each layer, on the network's own activations, with the ``nn`` layer that has the same weights (forward,
backward, parameter gradients), does the same for the loss and two update steps, then runs the learner's training
loop and confirms that it used their loss and update rule, that the loss fell to a tenth of its first value and
that the trained network classifies all twenty images.
"""

import copy

import numpy as np

import nn
from graders import Mismatch, compare


def _reference(layer, mine):
    """The nn layer (or function) that ``layer`` must match, with its weights; None for a reshape."""
    if isinstance(layer, mine.Conv2d):
        f, c, k, _ = layer.weight.data.shape
        ref = nn.Conv2d(c, f, k, stride=layer.stride, padding=layer.padding, dtype=np.float64)
        ref.weight.data[...], ref.bias.data[...] = layer.weight.data, layer.bias.data
        return ref
    if isinstance(layer, mine.Linear):
        out_features, in_features = layer.weight.data.shape
        ref = nn.Linear(in_features, out_features, dtype=np.float64)
        ref.weight.data[...], ref.bias.data[...] = layer.weight.data, layer.bias.data
        return ref
    if isinstance(layer, mine.ReLU):
        return nn.ReLU()
    if isinstance(layer, mine.LocalResponseNorm):
        return nn.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    if mine.AvgPool2d is not None and isinstance(layer, mine.AvgPool2d):
        return _AveragePool(layer.kernel_size, layer.stride)
    if mine.Dropout is not None and isinstance(layer, mine.Dropout):
        return nn.Dropout(layer.p).eval()  # the comparison runs at test time: the identity
    return None


class _AveragePool(nn.Module):
    """Average pooling through nn.im2col and nn.col2im (nn has no average pooling layer)."""

    def __init__(self, kernel_size, stride):
        self.z, self.s = kernel_size, stride

    def forward(self, x):
        n, c = x.shape[:2]
        self._shape = x.shape
        cols = nn.im2col(x, (self.z, self.z), (self.s, self.s), c)  # (C, z z, N Ho Wo)
        ho, wo = ((x.shape[2] - self.z) // self.s + 1, (x.shape[3] - self.z) // self.s + 1)
        return cols.mean(axis=1).reshape(c, n, ho, wo).transpose(1, 0, 2, 3)

    def backward(self, grad_out):
        n, c = self._shape[:2]
        g = grad_out.transpose(1, 0, 2, 3).reshape(c, 1, -1) / self.z**2
        cols = np.repeat(g, self.z**2, axis=1)
        return nn.col2im(cols, self._shape, (self.z, self.z), (self.s, self.s))


def _layers_match_nn(network, mine, images, labels, errors):
    network = copy.deepcopy(network).eval()
    rng = np.random.default_rng(0)
    for param in network.parameters():  # biases start at 0, where a forgotten bias would not show
        if param.data.ndim == 1:
            param.data[...] = rng.normal(0, 0.1, size=param.data.shape)
    h = images
    for index, layer in enumerate(network.children()):
        name = f"layer {index} ({type(layer).__name__})"
        ref = _reference(layer, mine)
        out = layer.forward(h)
        if ref is None:  # Flatten
            h = out
            continue
        expected = ref.forward(h)
        errors[f"{name} forward"] = compare(f"{name} forward", out, expected)
        g = rng.normal(size=expected.shape)
        layer.zero_grad()
        errors[f"{name} backward (input gradient)"] = compare(
            f"{name} backward", layer.backward(g), ref.backward(g)
        )
        for (pname, p), q in zip(layer.named_parameters(), ref.parameters()):
            errors[f"{name} {pname}.grad"] = compare(f"{name} {pname}.grad", p.grad, q.grad)
        h = expected
    loss_fn = nn.SoftmaxCrossEntropyLoss()
    expected_loss = loss_fn.forward(h, labels)
    result = mine.softmax_cross_entropy(h.copy(), labels)
    if result is None:
        raise Mismatch("loss: your softmax_cross_entropy returned None")
    loss, grad = result
    errors["loss on the network's logits"] = compare("loss", loss, np.float64(expected_loss), dtype=False)
    errors["loss gradient on the network's logits"] = compare("loss gradient", grad, loss_fn.backward())
    # two update steps with the learning rate divided by 10 between them, on the network's own parameters
    params = [p for p in network.parameters()]
    mine_params = [nn.Parameter(p.data.copy()) for p in params]
    ref_params = [nn.Parameter(p.data.copy()) for p in params]
    mine_opt = mine.SGD(mine_params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    ref_opt = nn.SGD(ref_params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    for _ in range(2):
        for a, b in zip(mine_params, ref_params):
            a.grad[...] = b.grad[...] = rng.normal(size=a.data.shape)
        mine_opt.step()
        ref_opt.step()
        mine_opt.lr /= 10
        ref_opt.lr /= 10
    errors["update rule, two steps on the network's parameters"] = max(
        compare("update rule", a.data, b.data) for a, b in zip(mine_params, ref_params)
    )
    mine.calls.update(loss=0, steps=0)


MATCH = 1e-6  # a layer whose error against nn reaches this fails before any training


def capstone(mine, build_network, train, images, labels, record=None):
    """``build_network(mine, num_classes) -> Sequential`` of your layers; ``train(network, mine, images, labels)
    -> list of the training losses``, using ``mine.softmax_cross_entropy`` and ``mine.SGD``."""
    num_classes = int(labels.max()) + 1
    network = build_network(mine, num_classes)
    if network is None:
        raise Mismatch("build_network: your function returned None; is a `return` missing?")
    if not isinstance(network, nn.Sequential):
        raise Mismatch(
            f"build_network: expected an nn.Sequential of your layers, got {type(network).__name__}"
        )
    own = mine.own_classes()
    for layer in network.children():
        if not isinstance(layer, own + (nn.Flatten,)):
            raise Mismatch(
                f"build_network: {type(layer).__module__}.{type(layer).__name__} is not one of your layers "
                f"(use mine.Conv2d, mine.ReLU, mine.LocalResponseNorm, mine.AvgPool2d, mine.Dropout, mine.Linear)"
            )
    for needed in ("Conv2d", "ReLU", "Linear"):
        cls = getattr(mine, needed)
        if not isinstance(cls, type) or not any(isinstance(layer, cls) for layer in network.children()):
            raise Mismatch(f"build_network: the network has no mine.{needed}")
    errors = {}
    _layers_match_nn(network, mine, images, labels, errors)
    if max(errors.values()) >= MATCH:  # a layer is wrong: say which, rather than train on it
        return errors
    losses = train(network, mine, images, labels)
    if losses is None:
        raise Mismatch("train: your function returned None; return the list of training losses")
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or len(losses) < 2 or not np.all(np.isfinite(losses)):
        raise Mismatch(f"train: expected a list of finite losses, one per step, got {losses.shape} values")
    if mine.calls["loss"] == 0 or mine.calls["steps"] == 0:
        raise Mismatch(
            f"train: it called mine.softmax_cross_entropy {mine.calls['loss']} times and mine.SGD's step "
            f"{mine.calls['steps']} times; train with your loss and your update rule"
        )
    network.eval()
    accuracy = float((network.forward(images).argmax(axis=1) == labels).mean())
    if record is not None:
        record.update(network=network, losses=losses, accuracy=accuracy)
    errors[f"the loss fell to a tenth ({losses[0]:.3f} -> {losses[-1]:.3f})"] = (losses[-1] / losses[0], 0.1)
    errors[f"every training image classified right ({accuracy:.0%})"] = (1 - accuracy, 1 / len(labels))
    return errors
