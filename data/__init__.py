"""``data``: reduced ImageNet subsets with the AlexNet paper's preprocessing (§2), augmentation
and test-time crops (§4.1), and a prefetching batch loader.  See docs/ARCHITECTURE.md."""

from .augment import center_crop_batch, crop_patches, pca_lighting_shift, ten_crop_batch, train_batch
from .dataset import (
    PreparedDataError,
    PreparedDataset,
    is_prepared,
    same_subset,
    subset_differences,
    subset_fingerprint,
)
from .download import download_imagenette, fetch, resolve
from .images import load_image_square, to_rgb
from .layouts import SourceTree, scan_source
from .loader import Loader
from .prepare import prepare_subset

__all__ = [
    "PreparedDataset",
    "PreparedDataError",
    "same_subset",
    "subset_differences",
    "subset_fingerprint",
    "Loader",
    "prepare_subset",
    "resolve",
    "fetch",
    "download_imagenette",
    "scan_source",
    "SourceTree",
    "load_image_square",
    "to_rgb",
    "is_prepared",
    "train_batch",
    "center_crop_batch",
    "ten_crop_batch",
    "crop_patches",
    "pca_lighting_shift",
]
