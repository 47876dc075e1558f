"""Solution to the exercise of tutorials/12_two_gpus.ipynb (§7): the bytes one rank sends forward at
fc6's input. Paste the function into the exercise cell, or ``from solutions import ...`` after
putting ``tutorials/`` on the path."""
from alexnet.model import scaled_channels, spatial_sizes


def fc6_exchange_bytes(batch, crop, width=1.0, itemsize=4):
    """Bytes one rank sends forward at fc6's input: its half of conv5's maps after pool5, for every image."""
    conv5_kernels = scaled_channels(256, width, 2)        # 256 at full width, always even
    side = spatial_sizes(crop)["pool5"]                   # 6 at crop 227
    return batch * (conv5_kernels // 2) * side * side * itemsize
