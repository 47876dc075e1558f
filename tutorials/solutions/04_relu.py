# Solutions to the graded exercises of tutorials/04_relu.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 04 --solutions; the tests do the same).

# EXERCISE: activation-backward
def relu_backward(x, grad_out):
    return grad_out * (x > 0)

def tanh_backward(y, grad_out):
    return grad_out * (1 - y ** 2)
