# Solutions to the graded exercises of tutorials/13_capstone.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 13 --solutions; the tests do the same).

# EXERCISE: capstone
mine = _capstone.from_solutions()     # the published solutions of 02-08; yours: _capstone.from_notebooks()
print(mine)

def build_network(mine, num_classes):
    """A small AlexNet: conv, ReLU, LRN, pool, conv, ReLU, pool, dropout, fully connected."""
    rng = np.random.default_rng(0)
    return nn.Sequential(
        mine.Conv2d(3, 8, 5, stride=1, padding=2, rng=rng), mine.ReLU(), mine.LocalResponseNorm(),
        mine.AvgPool2d(3, 2),                                                  # 32 -> 15
        mine.Conv2d(8, 16, 3, stride=1, padding=1, rng=rng), mine.ReLU(),
        mine.AvgPool2d(3, 2),                                                  # 15 -> 7
        mine.Flatten(), mine.Dropout(0.5, rng=rng),
        mine.Linear(16 * 7 * 7, num_classes, rng=rng))

def train(network, mine, images, labels, steps=40):
    """Full-batch SGD with the paper's rule; returns the loss of every step."""
    optimizer = mine.SGD(network.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    losses = []
    network.train()
    for _ in range(steps):
        loss, grad = mine.softmax_cross_entropy(network.forward(images), labels)
        network.zero_grad()
        network.backward(grad)
        optimizer.step()
        losses.append(loss)
    return losses
