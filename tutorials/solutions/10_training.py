# Solutions to the graded exercises of tutorials/10_training.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 10 --solutions; the tests do the same).

# EXERCISE: top-k-error
def top_k_error(scores, labels, k=5):
    """scores (N, K), labels (N,) -> the fraction of rows whose label is not among their k highest scores."""
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(1 - (top == labels[:, None]).any(axis=1).mean())
