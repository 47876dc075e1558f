# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Convolution by im2col (§3.2, §3.5)
#
# Five of AlexNet's eight learned layers are convolutions, and they do almost all of its arithmetic. §3.5 of the
# paper describes them by their kernels: conv1 "filters the 224×224×3 input image with 96 kernels of size
# 11×11×3 with a stride of 4 pixels", conv2 has 256 kernels of size 5×5×48, and so on. In this notebook we build
# such a layer from nothing:
#
# 1. a **naive loop** that computes a convolution exactly as the formula says (slow, but obviously right);
# 2. **im2col**: copy every input window into a column of a big matrix, so that the whole convolution becomes
#    *one matrix product*, the operation that BLAS libraries and GPUs do fastest;
# 3. the **backward pass**, derived by hand: two matrix products and **col2im**, the adjoint of im2col;
# 4. **groups**, the trick that let the network be split across two GPUs (§3.2);
# 5. the price of im2col: **memory**, at AlexNet's real sizes.
#
# Everything uses the project's own layer, `nn.Conv2d`, and the helpers `nn.im2col` / `nn.col2im` it is built on
# (see `nn/conv.py`). By the end you should be able to write that file yourself.

# %%
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # small matrices: threads cost more than they save
import sys, pathlib, time
sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root, so that `import nn` works
# %matplotlib inline
import numpy as np
import matplotlib.pyplot as plt
import nn
from nn.conv import conv_output_size
from nn.gradcheck import check_module

plt.rcParams.update({"figure.dpi": 80})
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. What a convolution layer computes
#
# The input is a batch of images $x$ of shape $(N, C, H, W)$: $N$ images, $C$ channels (3 colours for conv1;
# 96 feature maps for conv2), height $H$ and width $W$. A layer has $F$ kernels $W_f$, each of shape $(C, k_h, k_w)$,
# and one bias $b_f$ per kernel. With stride $s$ and zero-padding $p$, output pixel $(y, x)$ of map $f$ is
#
# $$
# \text{out}[n, f, y, x] \;=\; b_f + \sum_{c=0}^{C-1}\sum_{i=0}^{k_h-1}\sum_{j=0}^{k_w-1}
# W[f, c, i, j]\; x_{\text{pad}}[n, c,\; y s + i,\; x s + j],
# $$
#
# where $x_{\text{pad}}$ is $x$ with $p$ rows/columns of zeros added on every side. (Strictly this is a
# *cross-correlation*: the kernel is not flipped. Every deep-learning library computes this and calls it
# convolution; since the kernels are learned, the flip would make no difference.) The output has
#
# $$
# H_o = \left\lfloor \frac{H + 2p - k_h}{s} \right\rfloor + 1, \qquad
# W_o = \left\lfloor \frac{W + 2p - k_w}{s} \right\rfloor + 1
# $$
#
# rows and columns. For conv1, $\lfloor (227 - 11)/4 \rfloor + 1 = 55$: the 55×55 maps of Figure 2 need a
# 227×227 input (with 224, as the paper's text says, the arithmetic does not work out without padding).

# %%
print("conv1 on 227:", conv_output_size(227, 11, 4, 0), "   on 224:", (224 - 11) / 4 + 1, "(not an integer)")
assert conv_output_size(227, 11, 4, 0) == 55 and (224 - 11) / 4 + 1 == 54.25

# %% [markdown]
# ### Sliding windows, and how far each layer sees
#
# The formula slides a $k \times k$ window over the input in steps of $s$; each output pixel sees one window.
# Here is a 3×3 window with stride 2 on an 11×11 input, the geometry of AlexNet's pooling layers (the plotting
# code is `_helpers.plot_sliding_windows`): consecutive windows overlap by one row or column, and the output is 5×5.

# %%
import _helpers
_helpers.plot_sliding_windows(size=11, kernel=3, stride=2)
assert conv_output_size(11, 3, 2, 0) == 5

# %% [markdown]
# Stacked layers see further. An output pixel of layer $\ell$ depends on a $k_\ell \times k_\ell$ window of layer
# $\ell - 1$, whose pixels are $j_{\ell-1}$ input pixels apart (the product of all earlier strides), so its
# **receptive field**, the patch of the image it depends on, grows by $(k_\ell - 1)\, j_{\ell-1}$:
#
# $$ r_\ell = r_{\ell-1} + (k_\ell - 1)\, j_{\ell-1}, \qquad j_\ell = j_{\ell-1}\, s_\ell, \qquad r_0 = j_0 = 1 . $$
#
# Padding does not change the size, only where the field sits. Through AlexNet's eight spatial layers
# (pooling windows count like kernels):

# %%
alexnet_spatial = [("conv1", 11, 4), ("pool1", 3, 2), ("conv2", 5, 1), ("pool2", 3, 2),
                   ("conv3", 3, 1), ("conv4", 3, 1), ("conv5", 3, 1), ("pool5", 3, 2)]
field, jump, fields = 1, 1, []
for name, k, s in alexnet_spatial:
    field, jump = field + (k - 1) * jump, jump * s
    fields.append((name, field))
    print(f"{name}: {k}x{k}, stride {s}  ->  receptive field {field:3d} x {field:<3d}  (neighbours {jump:2d} pixels apart)")
assert [f for _, f in fields] == [11, 19, 51, 67, 99, 131, 163, 195]

# the same numbers measured: a stack of all-ones convolutions with the same geometry, and the input pixels that
# one central output pixel of each depth depends on (where the gradient of that output is not zero)
stack, extents = [], []
for (name, k, s), pad in zip(alexnet_spatial, [0, 0, 2, 0, 1, 1, 1, 0]):
    layer = nn.Conv2d(1, 1, k, stride=s, padding=pad, dtype=np.float64)
    layer.weight.data[...] = 1.0
    stack.append(layer)
    net = nn.Sequential(*stack)
    out = net(np.ones((1, 1, 387, 387)))
    g = np.zeros_like(out); g[0, 0, out.shape[2] // 2, out.shape[3] // 2] = 1
    rows = np.flatnonzero(net.backward(g)[0, 0].any(axis=1))
    extents.append(int(rows[-1] - rows[0] + 1))
print("measured:", extents)
assert extents == [f for _, f in fields]
_helpers.plot_receptive_fields(fields, 227)

# %% [markdown]
# So a unit of conv5 sees a 163×163 patch, most of the 227×227 image, and a unit of pool5 (what fc6 reads) 195×195.
# conv1's units see 11×11 patches: edges and colour blobs (Figure 3) is all they can be. The early layers are
# local; by conv5 every unit can respond to whole objects.


# %% [markdown]
# Here is the formula as a loop, the most literal implementation possible. We will use it as the reference that
# everything else has to agree with. (One loop per output pixel; the sum over $c, i, j$ is a NumPy sum over the
# window.) It also takes a `groups` argument, which we explain in section 4.

# %%
def conv2d_naive(x, weight, bias, stride=1, padding=0, groups=1):
    '''The convolution formula, one output pixel at a time.'''
    n, c, h, w = x.shape
    f, c_per_group, kh, kw = weight.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    f_per_group = f // groups
    out = np.zeros((n, f, ho, wo), dtype=x.dtype)
    for img in range(n):
        for k in range(f):
            g = k // f_per_group                           # the group this kernel belongs to
            channels = slice(g * c_per_group, (g + 1) * c_per_group)
            for y in range(ho):
                for xx in range(wo):
                    window = x_pad[img, channels, y * stride:y * stride + kh, xx * stride:xx * stride + kw]
                    out[img, k, y, xx] = np.sum(weight[k] * window) + bias[k]
    return out


# %%
x = rng.normal(size=(2, 3, 16, 16)).astype(np.float32)
conv = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, rng=rng)
print(conv, " weight", conv.weight.shape, " bias", conv.bias.shape)

t0 = time.perf_counter(); ref = conv2d_naive(x, conv.weight.data, conv.bias.data, stride=1, padding=1)
t1 = time.perf_counter(); out = conv(x)
t2 = time.perf_counter()
assert np.allclose(out, ref, atol=1e-5), np.abs(out - ref).max()
print("output", out.shape, " max |difference|", float(np.abs(out - ref).max()))
print(f"naive loop: {1e3 * (t1 - t0):7.2f} ms")
speedup = (t1 - t0) / (t2 - t1)
print(f"nn.Conv2d : {1e3 * (t2 - t1):7.2f} ms   ({speedup:.0f}x faster)")
assert speedup > 2, speedup          # "several times faster", below

# %% [markdown]
# Same numbers, and the im2col layer is already several times faster on this toy input (the ratio printed above;
# it depends on the machine and on how busy it is). The loop does $N F H_o W_o$ tiny NumPy calls of $C k_h k_w$
# multiplications each, and Python's per-call overhead dominates; im2col reorganises the same multiplications into
# one big call. The gap widens with the layer: the loop's cost grows with the number of output values, one Python
# call each, while the matrix product runs at the speed of BLAS (conv1 on one 227×227 image would take the loop
# $96 \cdot 55 \cdot 55 = 290{,}400$ calls).
#
# ## 2. im2col: windows become columns
#
# Look at the formula again. For a fixed output position $(n, y, x)$, the numbers
# $x_{\text{pad}}[n, c, ys+i, xs+j]$ over all $(c, i, j)$ form a vector of length $K = C k_h k_w$: the window,
# flattened. The kernel $W_f$ flattened in the same $(c, i, j)$ order is also a vector of length $K$, and the
# output is their dot product. So if we
#
# * write every window as a **column** of a matrix $\text{cols}$ of shape $K \times (N H_o W_o)$, and
# * write every kernel as a **row** of a matrix $W$ of shape $F \times K$,
#
# then **all** outputs at once are one matrix product:
#
# $$
# \underbrace{\text{out}}_{F \times N H_o W_o} = \underbrace{W}_{F \times K}\;\underbrace{\text{cols}}_{K \times N H_o W_o} + b\,\mathbf 1^\top,
# \qquad \text{cols}[(c,i,j), (n,y,x)] = x_{\text{pad}}[n, c, ys+i, xs+j].
# $$
#
# That unrolling is **im2col** ("image to columns"). Let's look at it on a tiny example: one 4×4 image with one
# channel, whose pixels are numbered 0 to 15, and a 2×2 kernel with stride 1. There are 3×3 = 9 windows, so
# `cols` is $4 \times 9$.

# %%
tiny = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
cols = nn.im2col(tiny, kernel_size=(2, 2), stride=(1, 1), groups=1)   # (groups, K, N*Ho*Wo)
print("image:\n", tiny[0, 0].astype(int))
print("cols", cols.shape, ":\n", cols[0].astype(int))
assert cols.shape == (1, 4, 9) and cols[0, :, 0].tolist() == [0, 1, 4, 5] and cols[0, :, 1].tolist() == [1, 2, 5, 6]
assert (cols == 5).sum() == 4                                          # pixel 5 is copied four times

# %% [markdown]
# Column 0 is the top-left window (pixels 0, 1, 4, 5), column 1 the window one step to the right (1, 2, 5, 6), and
# so on. Rows are ordered like the kernel entries $(c, i, j)$; columns like the outputs $(n, y, x)$. Notice how
# every interior pixel appears several times: pixel 5 sits in four windows, so it is copied four times. That
# duplication is the whole trade of im2col: **memory for speed**. The picture below colours three windows in the
# image and the matching columns of the matrix.

# %%
fig, (a0, a1) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1, 2.2]})
colours = {0: "tab:red", 4: "tab:green", 8: "tab:blue"}            # column index -> colour
a0.imshow(tiny[0, 0], cmap="Greys", vmin=-8, vmax=30)
for (r, c), v in np.ndenumerate(tiny[0, 0]):
    a0.text(c, r, int(v), ha="center", va="center")
for col, colour in colours.items():
    y, xx = divmod(col, 3)
    a0.add_patch(plt.Rectangle((xx - 0.45, y - 0.45), 1.9, 1.9, fill=False, lw=2.5, ec=colour))
a0.set_title("image (4x4), three 2x2 windows"); a0.set_xticks([]); a0.set_yticks([])
a1.imshow(cols[0], cmap="Greys", vmin=-8, vmax=30, aspect="auto")
for (r, c), v in np.ndenumerate(cols[0]):
    a1.text(c, r, int(v), ha="center", va="center")
for col, colour in colours.items():
    a1.add_patch(plt.Rectangle((col - 0.45, -0.45), 0.9, 3.9, fill=False, lw=2.5, ec=colour))
a1.set_title("cols = im2col(image): one column per window")
a1.set_xlabel("output position (n, y, x)"); a1.set_ylabel("kernel entry (c, i, j)")
a1.set_xticks(range(9)); a1.set_yticks(range(4))
plt.tight_layout(); plt.show()

# %% [markdown]
# `nn.im2col` is the plain version: one loop over the $k_h k_w$ kernel offsets, each copying a whole strided
# slice of the image (read it first, at the top of `nn/unroll.py`). How does the fast path `Conv2d` actually runs
# (`nn.unroll.im2col_strided`) build this without any Python loop? With a **strided view**. A NumPy array is a
# block of memory plus *strides*: how many bytes to step for +1 along each axis. The window element
# $x_{\text{pad}}[n, c, ys+i, xs+j]$ is reached by stepping $n$ image-strides, $c$ channel-strides, $i$ and $ys$
# row-strides, $j$ and $xs$ column-strides. So an array of shape $(N, C, k_h, k_w, H_o, W_o)$ with strides
# (image, channel, row, col, $s\cdot$row, $s\cdot$col) *is* every window, without copying anything
# (`np.lib.stride_tricks.as_strided`). Transposing it to $(C, k_h, k_w, N, H_o, W_o)$ and reshaping to a matrix
# makes the single copy. Read `im2col_strided` in `nn/unroll.py`: it is a dozen lines.
#
# Now the forward pass is one `@`. We reproduce `nn.Conv2d`'s output by hand:

# %%
x = rng.normal(size=(2, 3, 9, 10)).astype(np.float32)
conv = nn.Conv2d(3, 5, kernel_size=3, stride=2, padding=1, rng=rng)
n, _, ho, wo = conv.output_shape(x.shape)
x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
cols = nn.im2col(x_pad, (3, 3), (2, 2), 1)[0]                 # (K, N*Ho*Wo) = (27, 2*5*5)
W = conv.weight.data.reshape(5, -1)                           # (F, K) = (5, 27)
out_by_hand = (W @ cols + conv.bias.data[:, None])            # (F, N*Ho*Wo), columns ordered (n, y, x)
out_by_hand = out_by_hand.reshape(5, n, ho, wo).transpose(1, 0, 2, 3)
print("cols", cols.shape, " W", W.shape, " out", out_by_hand.shape)
assert np.allclose(out_by_hand, conv(x), atol=1e-5)
assert np.allclose(out_by_hand, conv2d_naive(x, conv.weight.data, conv.bias.data, 2, 1), atol=1e-5)
print("W @ cols == nn.Conv2d == naive loop")

# %% [markdown]
# ## 3. The backward pass
#
# Training needs, given the upstream gradient $g = \partial L / \partial\,\text{out}$ (same shape as the
# output), three things: $\partial L/\partial W$, $\partial L/\partial b$, and $\partial L/\partial x$ to pass on to
# the layer below. Lay $g$ out as the $F \times NH_oW_o$ matrix $G$, like `out`. Because
# $\text{out} = W\,\text{cols} + b\mathbf 1^\top$ is a matrix product, the derivatives are the familiar ones of a
# linear layer:
#
# $$
# \frac{\partial L}{\partial W_{fk}} = \sum_{m} G_{fm}\, \text{cols}_{km}
# \;\;\Longrightarrow\;\; \boxed{\frac{\partial L}{\partial W} = G\,\text{cols}^\top}
# \qquad
# \frac{\partial L}{\partial b_f} = \sum_m G_{fm}
# \qquad
# \frac{\partial L}{\partial\, \text{cols}_{km}} = \sum_f W_{fk} G_{fm}
# \;\;\Longrightarrow\;\; \boxed{\frac{\partial L}{\partial\,\text{cols}} = W^\top G}
# $$
#
# ($m$ runs over the output positions $(n, y, x)$.) Reading the first one aloud: the gradient of a kernel entry
# is the sum, over all positions, of the upstream gradient times the input pixel that entry saw there. It is
# also why `nn.Conv2d.forward` keeps `cols`: the backward pass needs it.
#
# **From columns back to the image.** im2col is a *linear* map: $\text{cols} = A\,x_{\text{pad}}$ for a (huge,
# sparse, 0/1) matrix $A$ that copies pixels. For any linear map the chain rule gives
# $\partial L/\partial x_{\text{pad}} = A^\top\, \partial L/\partial\text{cols}$. What is $A^\top$? $A$ copies pixel
# $q$ into every column slot that reads it; so $A^\top$ takes a column matrix and **adds every entry back onto the
# pixel it was copied from**. A pixel that sat in four windows collects four contributions. That operation is
# **col2im**, and the one-line definition of "adjoint" is
#
# $$
# \langle \text{im2col}(x),\, c \rangle \;=\; \langle x,\, \text{col2im}(c) \rangle \quad\text{for all } x, c .
# $$
#
# Finally we cut the padding off: the padded border is not part of $x$, so its gradient is simply dropped.
# Let's verify the adjoint identity numerically, with random $x$ and $c$:

# %%
x_pad = rng.normal(size=(2, 4, 9, 8))
for kernel, stride, groups in [((3, 3), (1, 1), 1), ((3, 3), (2, 2), 2), ((5, 2), (2, 3), 1)]:
    cols = nn.im2col(x_pad, kernel, stride, groups)
    c = rng.normal(size=cols.shape)
    lhs = np.sum(cols * c)                                      # <im2col(x), c>
    rhs = np.sum(x_pad * nn.col2im(c, x_pad.shape, kernel, stride))   # <x, col2im(c)>
    print(f"kernel {kernel} stride {stride} groups {groups}:  <im2col(x),c> = {lhs:+.10f}   <x,col2im(c)> = {rhs:+.10f}")
    assert np.isclose(lhs, rhs)

# %% [markdown]
# `col2im` of a matrix of ones shows the adjoint's bookkeeping directly: it counts in how many windows each pixel
# appears. Here for AlexNet's conv1 geometry (11×11 windows, stride 4) on a 31×31 image: since $11 > 4$ the windows
# overlap heavily: along each axis a pixel away from the border lies in 2 or 3 windows, so in the interior it sits in
# 4, 6 or 9 of them, depending on its position.

# %%
shape = (1, 1, 31, 31)
ones = np.ones(nn.im2col(np.zeros(shape), (11, 11), (4, 4), 1).shape)
counts = nn.col2im(ones, shape, (11, 11), (4, 4))[0, 0]
plt.figure(figsize=(3.6, 3.2))
plt.imshow(counts, cmap="viridis"); plt.colorbar(label="windows containing the pixel")
plt.title("col2im(ones): 11x11 windows, stride 4", fontsize=10); plt.xticks([]); plt.yticks([])
plt.show()
print("row 12 of the count map:", counts[12].astype(int))
per_axis = sum((np.arange(31) >= start) & (np.arange(31) < start + 11) for start in range(0, 21, 4))  # one axis
assert set(per_axis[4:-4].astype(int)) == {2, 3} and set(counts[4:-4, 4:-4].astype(int).ravel()) == {4, 6, 9}

# %% [markdown]
# Now the full backward pass by hand, compared with `nn.Conv2d.backward`. (`backward` *adds* into
# `weight.grad` and `bias.grad`, as in PyTorch, so we zero them first.)

# %%
x = rng.normal(size=(2, 3, 9, 10))
conv = nn.Conv2d(3, 5, kernel_size=3, stride=2, padding=1, rng=rng).astype(np.float64)
out = conv(x)
g = rng.normal(size=out.shape)                                  # an upstream gradient dL/d(out)
conv.zero_grad()
dx = conv.backward(g)

x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
cols = nn.im2col(x_pad, (3, 3), (2, 2), 1)[0]                   # (K, M)
G = g.transpose(1, 0, 2, 3).reshape(5, -1)                      # (F, M), columns (n, y, x) like cols
W = conv.weight.data.reshape(5, -1)                             # (F, K)
dW = (G @ cols.T).reshape(conv.weight.shape)                    # dL/dW = G cols^T
db = G.sum(axis=1)                                              # dL/db = G 1
dcols = W.T @ G                                                 # dL/dcols = W^T G
dx_pad = nn.col2im(dcols[None], x_pad.shape, (3, 3), (2, 2))    # the adjoint of im2col
dx_by_hand = dx_pad[:, :, 1:-1, 1:-1]                           # drop the padding's gradient

for name, mine, layer in [("dW", dW, conv.weight.grad), ("db", db, conv.bias.grad), ("dx", dx_by_hand, dx)]:
    print(f"{name}: shape {str(mine.shape):15} max |by hand - nn| = {np.abs(mine - layer).max():.1e}")
    assert np.allclose(mine, layer)

# %% [markdown]
# **The gradient check.** Agreeing with our own derivation is reassuring, but both could share a mistake. The
# independent test is to compare the analytic gradient with finite differences of the *forward* pass:
#
# $$
# \frac{\partial f}{\partial \theta_i} \approx \frac{f(\theta + \varepsilon e_i) - f(\theta - \varepsilon e_i)}{2\varepsilon},
# \qquad f(x) = \sum g \odot \text{conv}(x)
# $$
#
# with a fixed random $g$ (not all ones, which would hide transposition bugs), in float64. `nn.gradcheck.check_module`
# does exactly that for the input and every parameter, entry by entry for small tensors and along random directions
# for big ones, and prints the relative errors. Below about $10^{-7}$ means the derivative is right (notebook 11
# explains the thresholds; here they are all below $10^{-8}$); a bug gives errors of order 1. We check the awkward
# cases: stride with padding, groups, and AlexNet's conv1 geometry.

# %%
cases = {
    "3x3, stride 2, padding 1": (nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=rng), (2, 3, 7, 8)),
    "5x5, padding 2, groups=2":  (nn.Conv2d(4, 6, 5, padding=2, groups=2, rng=rng), (2, 4, 6, 5)),
    "11x11, stride 4 (conv1)":   (nn.Conv2d(3, 4, 11, stride=4, rng=rng), (1, 3, 19, 23)),
}
for name, (layer, shape) in cases.items():
    result = check_module(layer, rng.normal(size=shape))
    print(f"--- {name}\n{result}\n")
    assert result.passed and result.max_error < 1e-8                   # "all below 1e-8", above

# %% [markdown]
# ## 4. Groups: two GPUs in one layer (§3.2)
#
# AlexNet did not fit on one GTX 580 with 3 GB of memory, so the authors split it across two. §3.2: "we put half of
# the kernels (or neurons) on each GPU, with one additional trick: the GPUs communicate only in certain layers. This
# means that, for example, the kernels of layer 3 take input from all kernel maps in layer 2. However, kernels in
# layer 4 take input only from those kernel maps in layer 3 which reside on the same GPU."
#
# That is a **grouped convolution**. With $G$ groups, the $C$ input channels are cut into $G$ consecutive blocks
# of $C/G$, the $F$ kernels into $G$ blocks of $F/G$, and kernel block $g$ only sees channel block $g$. Each kernel
# therefore has $C/G$ channels instead of $C$: this is why the paper lists conv2's kernels as 5×5×**48** although
# conv1 produced 96 maps. With $G = 2$, group 0 is "GPU 1" and group 1 is "GPU 2"; they exchange nothing inside the
# layer. In im2col terms we get $G$ independent matrix products,
#
# $$
# \text{out}_g = W_g\,\text{cols}_g, \qquad W_g : \tfrac{F}{G} \times \tfrac{C}{G}k_hk_w, \quad
# \text{cols}_g : \tfrac{C}{G}k_hk_w \times NH_oW_o ,
# $$
#
# which `nn.Conv2d` does as one batched `matmul` over a leading group axis (that is why `nn.im2col` returns shape
# $(G, K, M)$). Let's confirm that a `groups=2` convolution is exactly two ordinary convolutions on the channel halves,
# with their outputs concatenated:

# %%
x = rng.normal(size=(2, 8, 7, 7)).astype(np.float32)
grouped = nn.Conv2d(8, 6, kernel_size=3, padding=1, groups=2, rng=rng)
print("grouped weight:", grouped.weight.shape, "(each kernel sees 8/2 = 4 channels)")

gpu1 = nn.Conv2d(4, 3, kernel_size=3, padding=1)               # kernels 0..2 on channels 0..3
gpu2 = nn.Conv2d(4, 3, kernel_size=3, padding=1)               # kernels 3..5 on channels 4..7
gpu1.load_state_dict({"weight": grouped.weight.data[:3], "bias": grouped.bias.data[:3]})
gpu2.load_state_dict({"weight": grouped.weight.data[3:], "bias": grouped.bias.data[3:]})
two_convs = np.concatenate([gpu1(x[:, :4]), gpu2(x[:, 4:])], axis=1)

assert np.allclose(grouped(x), two_convs, atol=1e-6)
assert np.allclose(grouped(x), conv2d_naive(x, grouped.weight.data, grouped.bias.data, 1, 1, groups=2), atol=1e-5)
print("groups=2 == [conv(first half), conv(second half)] == naive loop with groups")

# %% [markdown]
# Groups halve the parameters and the multiplications of a layer. For AlexNet (numbers from the layer shapes):

# %%
#          name     C_in F    k  G   output size
layers = [("conv2", 96, 256, 5, 2, 27), ("conv4", 384, 384, 3, 2, 13), ("conv5", 384, 256, 3, 2, 13)]
print(f"{'layer':6} {'weights, groups=1':>18} {'weights, groups=2':>18} {'mult-adds/image, G=2':>22}")
for name, c, f, k, g, size in layers:
    full, split = f * c * k * k, f * (c // g) * k * k
    print(f"{name:6} {full:>18,} {split:>18,} {split * size * size:>22,}")

# %% [markdown]
# The paper credits the two-GPU net with 1.7 % lower top-1 error than a net with half as many kernels per layer on one
# GPU. Today a single GPU holds the whole model, and `alexnet.AlexNet(groups=1)` builds the "one-tower" variant;
# `groups=2` reproduces the paper's connectivity on any number of GPUs.
#
# ## 5. What im2col costs: memory at AlexNet's sizes
#
# The price of turning a convolution into one matrix product is that `cols` stores every pixel once *per window it
# falls in*. Per group, `cols` is $K \times N H_o W_o$ with $K = (C/G)\,k_h k_w$; all groups together hold
# $C k_h k_w \cdot N H_o W_o$ numbers. Here is that, in float32, for each of AlexNet's conv layers at the paper's batch
# size of 128 (227×227 input, shapes of §3.5), next to the size of the layer's input:

# %%
N, BYTES = 128, 4                       # batch size (§5), float32
#           name    C_in  F    k  stride pad G  input size
alexnet = [("conv1",  3,  96, 11, 4, 0, 1, 227),
           ("conv2", 96, 256,  5, 1, 2, 2, 27),
           ("conv3", 256, 384, 3, 1, 1, 1, 13),
           ("conv4", 384, 384, 3, 1, 1, 2, 13),
           ("conv5", 384, 256, 3, 1, 1, 2, 13)]
print(f"{'layer':6}{'G':>3}{'K per group':>13}{'N*Ho*Wo':>11}{'cols (MB)':>11}{'input (MB)':>12}{'blow-up':>9}")
total, blow_up = 0, {}
for name, c, f, k, s, p, g, size in alexnet:
    out = conv_output_size(size, k, s, p)
    K, M = (c // g) * k * k, N * out * out
    cols_bytes, input_bytes = g * K * M * BYTES, N * c * size * size * BYTES
    total += cols_bytes
    blow_up[name] = cols_bytes / input_bytes
    print(f"{name:6}{g:>3}{K:>13,}{M:>11,}{cols_bytes / 2**20:>11,.0f}{input_bytes / 2**20:>12,.1f}{cols_bytes / input_bytes:>8.1f}x")
print(f"all five layers: {total / 2**30:.2f} GiB of columns, kept from forward to backward")
assert round(total / 2**30, 1) == 2.1                                  # "about 2.1 GiB", below
assert round(blow_up["conv2"]) == 25 and round(blow_up["conv3"]) == 9 and 7 < blow_up["conv1"] < 121 / 16  # below

# %% [markdown]
# Every entry of `cols` is a copy of an input pixel, so the "blow-up" column is how many windows, on average, each
# pixel belongs to: roughly $k^2/s^2$ (25 for conv2's 5×5 windows at stride 1, 9 for the 3×3 layers; for conv1
# $121/16 \approx 7.6$, a little less in practice because pixels near the border sit in fewer windows). Because
# `nn.Conv2d` keeps `cols` for its backward pass, a batch of 128 holds about 2.1 GiB of columns at once: most of
# the 3 GB card the paper had to fit *everything* into (weights, activations, gradients). cuda-convnet, the authors' code, did not
# materialise `cols`: it computed the windows inside the GPU kernel. That is the trade-off im2col makes: it is the
# simplest fast convolution (a matrix product is what BLAS and cuBLAS do best), paid for in memory. Other options
# are FFT-based and Winograd convolutions, or "implicit GEMM", which builds the column matrix tile by tile in fast
# on-chip memory and never writes it out.

# %% [markdown]
# ## Exercise (graded): a convolution in three lines
#
# Write the forward pass of a convolution (one group) with `nn.im2col`: pad the input, unroll it into columns,
# multiply by the kernels reshaped into rows, add the bias, and put the axes back in $(N, F, H_o, W_o)$ order.
# Remember that `nn.im2col` returns an array of shape $(G, C k_h k_w, N H_o W_o)$ whose columns are ordered
# $(n, y, x)$. The grader (`tutorials/graders/nb03.py`) compares your output with `nn.Conv2d` on five
# configurations: conv2's geometry (5×5, padding 2), conv1's (11×11, stride 4) on a non-square image, stride and
# padding together on non-square inputs, and a stride that leaves the last row unseen. It also checks that your
# function leaves its inputs unchanged.

# %%
# EXERCISE: conv-im2col
def conv2d_im2col(x, weight, bias, stride, padding):
    """x (N, C, H, W), weight (F, C, k, k), bias (F,) -> (N, F, Ho, Wo)."""
    raise NotImplementedError


# %%
from graders import grade, nb03
grade("conv-im2col", nb03.conv_im2col, conv2d_im2col)


# %% [markdown]
# ## Exercise (graded): the backward pass through col2im
#
# Now the backward pass of the same one-group convolution, from section 3: lay `grad_out` out as the
# $F \times N H_o W_o$ matrix $G$ (columns in the order $(n, y, x)$, like `cols`), then
# $\partial L/\partial W = G\,\text{cols}^\top$, $\partial L/\partial b = G\mathbf 1$ (a sum over the batch *and* the
# positions) and $\partial L/\partial\,\text{cols} = W^\top G$, which `nn.col2im` adds back onto the padded image; then
# drop the padding's gradient. The worked cell of section 3 did this for one layer with padding 1; yours must work for
# any stride and padding, padding 0 included, on non-square inputs. Return the three gradients as a tuple
# `(dx, dW, db)`, with the shapes of `x`, `weight` and the bias.
#
# The grader compares them with `nn.Conv2d.backward` on the five configurations of the previous exercise, checks that
# your function leaves its inputs unchanged, and gradient-checks it: `nn.Conv2d`'s forward pass with your backward
# pass, against central differences (`check_module`), with stride and padding together.

# %%
# EXERCISE: conv-backward
def conv2d_im2col_backward(x, weight, stride, padding, grad_out):
    """x (N, C, H, W), weight (F, C, k, k), grad_out (N, F, Ho, Wo) -> dx (N, C, H, W), dW (F, C, k, k), db (F,)."""
    raise NotImplementedError        # G = grad_out as (F, N Ho Wo); dW = G cols^T; db = G 1; col2im(W^T G); cut the padding


# %%
grade("conv-backward", nb03.conv_backward, conv2d_im2col_backward)


# %% [markdown]
# ## Summary
#
# * A convolution is a matrix product $W\,\text{cols}$ once every window is unrolled into a column (**im2col**).
# * The backward pass is two more matrix products, $\partial L/\partial W = G\,\text{cols}^\top$ and
#   $\partial L/\partial\text{cols} = W^\top G$, followed by **col2im**, the adjoint of im2col, which adds each
#   column entry back onto the pixel it came from; finally the padding's gradient is dropped.
# * **Groups** cut channels and kernels into $G$ independent blocks: $G = 2$ is AlexNet's two-GPU split (§3.2),
#   and halves the parameters of conv2, conv4 and conv5.
# * im2col trades memory for speed: at AlexNet's sizes the column matrices take gigabytes per batch.
#
# ## Exercises
#
# 1. **Backward without col2im.** The input gradient of a stride-1 convolution is itself a convolution: of $g$,
#    zero-padded by $k - 1 - p$, with the kernels flipped in both spatial axes and their in/out channels swapped.
#    Implement that with `nn.Conv2d` (set its weight by hand) and check it against `conv.backward` for a 3×3,
#    padding 1 layer. What goes wrong with stride 2, and how does inserting zeros between the rows and columns of $g$
#    ("dilating" it) fix it?
# 2. **A loop-free col2im?** `nn.col2im` loops over the $k_h k_w$ kernel offsets. Write a version with
#    `np.add.at` and no Python loop, check it with the adjoint identity, and time both for conv1's geometry on a
#    batch of 8. Why can't you simply assign through an `as_strided` view (why must it be an *add*)?
# 3. **Memory budget.** Using the table, find the largest batch size whose conv columns fit in 3 GB. Then change
#    the table to the one-tower network (`groups=1` everywhere): which layers' columns change, and why doesn't
#    conv2's `cols` get bigger even though its kernels now see 96 channels? (Hint: count $G \cdot K$.)
