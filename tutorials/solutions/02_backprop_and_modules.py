# Solutions to the exercises of 02_backprop_and_modules.ipynb: each block replaces the stub cell that starts
# with the same "# EXERCISE: <name>" line (tutorials/execute.py --solutions; tests/test_tutorials.py).

# EXERCISE: linear
class MyLinear(nn.Module):
    def __init__(self, in_features, out_features, rng=None):
        rng = rng or np.random.default_rng()
        self.weight = nn.Parameter(rng.normal(0, 0.1, size=(out_features, in_features)))
        self.bias = nn.Parameter(np.zeros(out_features))

    def forward(self, x):
        self._input = x
        return x @ self.weight.data.T + self.bias.data

    def backward(self, grad_out):
        self.weight.grad += grad_out.T @ self._input
        self.bias.grad += grad_out.sum(axis=0)
        return grad_out @ self.weight.data
