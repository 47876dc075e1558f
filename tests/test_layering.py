"""The packages' import rules, read from the source (lazy imports inside functions included).

- ``nn`` imports nothing from ``alexnet``, ``data`` or ``mpi4py``: it is the layer library.
- ``data`` imports nothing from ``alexnet``: data flows files -> data -> alexnet.
- No import cycle between the project's modules.

Edges are module to module: ``from .conv import Conv2d`` in ``nn/__init__.py`` is nn -> nn.conv,
``from nn import SGD`` is -> nn (the package's ``__init__``), ``from . import init`` is -> nn.init
(a submodule). Importing a submodule also runs its package's ``__init__``, but that is not an
edge here: otherwise every package that imports its own submodules would be a cycle.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nn", "alexnet", "data")


def project_modules():
    """{module name: path} for every .py file of the three packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(module, path):
    """Absolute names of everything ``module`` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            # each name is a submodule (prefix.name) or something defined in prefix
            names += [f"{prefix}.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Assign)
            and is_package
            and isinstance(node.value, ast.Dict)
            and any(isinstance(t, ast.Name) and t.id == "_MODULE_OF" for t in node.targets)
        ):
            # a lazily loading package (nn/lazy.py): its table says which submodule defines each name
            names += [f"{module}.{value.value}" for value in node.value.values]
    return names


def import_graph():
    """{module: set of project modules it imports}."""
    modules = project_modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path):
            # the longest project module the name starts with: a submodule, else the package
            parts = name.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in modules:
                    if candidate != module:
                        targets.add(candidate)
                    break
        graph[module] = targets
    return graph, modules


def find_cycles(graph):
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_graph_sees_relative_lazy_and_package_imports():
    graph, modules = import_graph()
    assert {"nn", "nn.conv", "alexnet.model", "data.prepare"} <= set(modules)
    assert "nn.conv" in graph["nn"]  # _MODULE_OF: "Conv2d": "conv" (lazy)
    assert "nn" in graph["alexnet.model"]  # from nn import ...
    assert "nn.init" in graph["nn.conv"] and "nn" not in graph["nn.conv"]  # from . import init
    # a made-up cycle through a lazy import inside a function is found
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("nn", ("alexnet", "data", "mpi4py")),
        ("data", ("alexnet", "mpi4py")),
    ],
)
def test_a_package_imports_only_what_lies_below_it(package, forbidden):
    modules = project_modules()
    offending = []
    for module, path in modules.items():
        if module.split(".")[0] != package:
            continue
        for name in imported_names(module, path):
            if name.split(".")[0] in forbidden:
                offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offending, "\n".join(sorted(set(offending)))


def test_no_import_cycles():
    graph, _ = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
