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
"""

import json

import numpy as np

from nn import load_npz, save_npz_atomic

from .model import AlexNet

FORMAT_VERSION = 1


def save_checkpoint(path, model, meta, optimizer=None, mean_image=None):
    """Write ``model`` (+ ``optimizer``) and the JSON-serialisable ``meta`` dict to ``path`` atomically."""
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    if optimizer is not None:
        arrays.update(
            {f"optimizer/{name}": np.asarray(value) for name, value in optimizer.state_dict().items()}
        )
    if mean_image is not None:
        arrays["mean_image"] = np.asarray(mean_image, np.float32)
    meta = dict(meta, format_version=FORMAT_VERSION, model_config=model.config, dropout_rng=model.rng_state())
    arrays["meta"] = np.array(json.dumps(meta))
    return save_npz_atomic(path, arrays)


class Checkpoint:
    """A loaded checkpoint: ``.meta`` (dict), ``.model_state``, ``.optimizer_state``, ``.mean_image``."""

    def __init__(self, path):
        self.path = path
        try:
            arrays = load_npz(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"checkpoint {path} does not exist") from None
        except Exception as exc:
            raise ValueError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
        if "meta" not in arrays:
            raise ValueError(f"{path} is not an alexnet checkpoint (no 'meta' entry)")
        self.meta = json.loads(str(arrays["meta"]))
        self.model_state = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
        self.optimizer_state = {
            k[len("optimizer/") :]: v for k, v in arrays.items() if k.startswith("optimizer/")
        }
        self.mean_image = arrays.get("mean_image")

    @property
    def config(self):
        return self.meta["model_config"]

    @property
    def class_names(self):
        """Names to print: a name that is only a WordNet ID becomes its ILSVRC-2012 words."""
        from .imagenet_classes import readable_names

        names = readable_names(self.meta.get("class_names"), self.meta.get("wnids"))
        return names or [str(i) for i in range(self.config["num_classes"])]

    def build_model(self, device="cpu"):
        """An AlexNet with this checkpoint's configuration, weights and dropout generators."""
        config = dict(self.config)
        config["dtype"] = np.dtype(config.get("dtype", "float32"))
        # Checkpoints written before LRN had groups normalized across all maps.
        config.setdefault("lrn_groups", 1)
        model = AlexNet(**config)
        model.load_state_dict(self.model_state)
        model.set_rng_state(self.meta["dropout_rng"])
        return model.to(device)


def load_checkpoint(path):
    return Checkpoint(path)
