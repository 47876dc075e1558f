# Solutions to the graded exercises of tutorials/12_two_gpus.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 12 --solutions; the tests do the same).

# EXERCISE: fc6-bytes
from alexnet.model import scaled_channels, spatial_sizes

def fc6_exchange_bytes(batch, crop, width=1.0, itemsize=4):
    """Bytes one rank sends forward at fc6's input (its half of the pool5 maps, for every image)."""
    conv5_kernels = scaled_channels(256, width, 2)        # 256 at full width (always even: two towers)
    side = spatial_sizes(crop)["pool5"]                   # 6 at crop 227
    return batch * (conv5_kernels // 2) * side * side * itemsize
