# Solutions to the graded exercises of tutorials/03_convolution_im2col.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 03 --solutions; the tests do the same).

# EXERCISE: conv-im2col
def conv2d_im2col(x, weight, bias, stride, padding):
    """x (N, C, H, W), weight (F, C, k, k), bias (F,) -> (N, F, Ho, Wo)."""
    n, _, h, w = x.shape
    f, _, k, _ = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = nn.im2col(padded, (k, k), (stride, stride), 1)[0]           # (C k k, N Ho Wo)
    out = weight.reshape(f, -1) @ cols + bias[:, None]                 # (F, N Ho Wo)
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    return out.reshape(f, n, ho, wo).transpose(1, 0, 2, 3)

# EXERCISE: conv-backward
def conv2d_im2col_backward(x, weight, stride, padding, grad_out):
    """x (N, C, H, W), weight (F, C, k, k), grad_out (N, F, Ho, Wo) -> dx (N, C, H, W), dW (F, C, k, k), db (F,)."""
    n, _, h, w = x.shape
    f, _, k, _ = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = nn.im2col(padded, (k, k), (stride, stride), 1)[0]           # (C k k, N Ho Wo), columns (n, y, x)
    G = grad_out.transpose(1, 0, 2, 3).reshape(f, -1)                 # (F, N Ho Wo), the same column order
    dW = (G @ cols.T).reshape(weight.shape)                            # dL/dW = G cols^T
    db = G.sum(axis=1)                                                 # over the batch and the positions
    dcols = weight.reshape(f, -1).T @ G                                # dL/dcols = W^T G
    dx_padded = nn.col2im(dcols[None], padded.shape, (k, k), (stride, stride))
    dx = dx_padded[:, :, padding:padding + h, padding:padding + w]     # the padding's gradient is dropped
    return dx, dW, db
