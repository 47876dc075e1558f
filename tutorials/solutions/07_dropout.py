# Solutions to the graded exercises of tutorials/07_dropout.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 07 --solutions; the tests do the same).

# EXERCISE: dropout
class MyDropout(nn.Module):
    def __init__(self, p=0.5, rng=None):
        self.p, self.rng = p, rng if rng is not None else np.random.default_rng()

    def forward(self, x):
        if not self.training:
            self._mask = 1.0                   # test time: the identity, and its gradient too
            return x
        self._mask = (self.rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self._mask

    def backward(self, grad_out):
        return grad_out * self._mask
