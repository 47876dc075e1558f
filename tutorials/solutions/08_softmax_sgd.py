# Solutions to the graded exercises of tutorials/08_softmax_sgd.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 08 --solutions; the tests do the same).

# EXERCISE: softmax-xent
def softmax_cross_entropy(logits, labels):
    """logits (N, K), labels (N,) -> (mean loss, dL/dlogits of shape (N, K))."""
    n = len(labels)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    grad = np.exp(log_probs)
    grad[np.arange(n), labels] -= 1
    return float(-log_probs[np.arange(n), labels].mean()), grad / n

# EXERCISE: sgd-update
class PaperSGD:
    """§5: v <- momentum v - weight_decay lr w - lr dL/dw ;  w <- w + v, for every parameter, in place."""

    def __init__(self, params, lr=0.01, momentum=0.9, weight_decay=5e-4):
        self.params, self.lr, self.momentum, self.weight_decay = list(params), lr, momentum, weight_decay
        self.velocities = [np.zeros_like(param.data) for param in self.params]

    def step(self):
        for param, velocity in zip(self.params, self.velocities):
            velocity *= self.momentum                                   # 0.9 v
            velocity -= self.weight_decay * self.lr * param.data       # - 0.0005 eps w
            velocity -= self.lr * param.grad                           # - eps <dL/dw>
            param.data += velocity                                     # w + v
