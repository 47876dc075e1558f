# Solutions to the graded exercises of tutorials/01_paper_and_network.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 01 --solutions; the tests do the same).

# EXERCISE: conv-parameters
def conv_parameters(in_channels, out_channels, kernel, groups):
    return out_channels * (in_channels // groups) * kernel * kernel + out_channels
