"""ONNX export and import: our AlexNet <-> the ecosystem's neutral format.

* export.py: ``python -m alexnet export``: AlexNet -> an ONNX graph of standard operators
  (opset 13+), one node per layer of §3.5; LRN per tower as Split -> LRN, LRN -> Concat.
* importer.py: ``python -m alexnet import-onnx``: an AlexNet-shaped ONNX file (ours, or the
  model zoo's Caffe ``bvlcalexnet``) -> our AlexNet and a normal checkpoint; graph.py reads
  the file's nodes as AlexNet's chain of layers.
* metadata.py: what travels beside the graph in ``metadata_props`` (model configuration,
  preprocessing, mean image, class names), written by the export and read by the import.

The one convention that differs from ours: ONNX's LRN alpha is divided by the window size n,
the paper's is not (§3.3): alpha_onnx = alpha_paper * n, converted in both directions.
"""

from .export import DEFAULT_OPSET, build_onnx_model, export_checkpoint, main_export, save_onnx_atomic
from .graph import EXPECTED_LAYERS, LAYER_WORDS, MAPPED_OPS, load_onnx_file
from .importer import import_onnx, import_to_checkpoint, main_import, parse_mean_pixel
from .metadata import META_PREFIX, OnnxError

__all__ = [
    "DEFAULT_OPSET",
    "build_onnx_model",
    "export_checkpoint",
    "main_export",
    "save_onnx_atomic",
    "EXPECTED_LAYERS",
    "LAYER_WORDS",
    "MAPPED_OPS",
    "load_onnx_file",
    "import_onnx",
    "import_to_checkpoint",
    "main_import",
    "parse_mean_pixel",
    "META_PREFIX",
    "OnnxError",
]
