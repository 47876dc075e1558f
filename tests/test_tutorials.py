"""Every tutorial notebook runs from scratch on the CPU, twice, so none of them can rot.

* As published: every cell runs (a cell that raises fails the test with the cell's error), and every
  exercise's grader says "not done yet" because its stub still raises NotImplementedError.
* With the solutions of ``tutorials/solutions/NN_name.py`` in place of the stubs: every grader says PASS.

Notebooks are found by glob (``tutorials/NN_*.ipynb``), so a new one is tested as soon as it exists; each
must be listed in ``tutorials/README.md``, be in step with its Jupytext script ``tutorials/_src/NN_name.py``,
and have at least one exercise with a published solution. The mechanism is in ``tutorials/execute.py``.
"""

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="install the test extra: pip install -e .[test]")
pytest.importorskip("nbclient", reason="install the test extra: pip install -e .[test]")
jupytext = pytest.importorskip("jupytext", reason="install the test extra: pip install -e .[test]")

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]

_spec = importlib.util.spec_from_file_location("tutorials_execute", TUTORIALS / "execute.py")
execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute)


def test_tutorials_exist_and_are_listed():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers[:11] == list(range(1, 12)), f"expected tutorials 01 to 11 at least, found {numbers}"
    assert numbers == list(range(1, len(numbers) + 1)), f"tutorials are not numbered 01, 02, ...: {numbers}"
    readme = (TUTORIALS / "README.md").read_text()
    for notebook in NOTEBOOKS:
        assert notebook.name in readme, f"{notebook.name} is not listed in tutorials/README.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_in_step_with_its_script(path):
    script = TUTORIALS / "_src" / (path.stem + ".py")
    assert script.exists(), f"{path.name} has no paired script {script} (jupytext --sync {path})"

    def cells(nb):
        return [(cell.cell_type, cell.source.strip()) for cell in nb.cells]

    assert cells(jupytext.read(script)) == cells(nbformat.read(path, as_version=4)), (
        f"{path.name} and _src/{script.name} differ: run `jupytext --sync` on the one you edited, "
        f"then `python tutorials/execute.py {path.name[:2]}`"
    )


def _run(notebook):
    execute.execute(notebook, timeout=240)
    errors = [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    return execute.verdicts(notebook)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_tutorial_runs_as_published(path):
    notebook = nbformat.read(path, as_version=4)
    names = execute.exercise_names(notebook)
    assert names, f"{path.name} has no exercise (a code cell starting with '# EXERCISE: <name>')"
    verdicts = _run(notebook)
    assert [name for name, _ in verdicts] == names, "every exercise needs exactly one grader, after its stub"
    assert all(verdict == "not done yet" for _, verdict in verdicts), verdicts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_tutorial_solutions_pass(path):
    notebook = execute.with_solutions(nbformat.read(path, as_version=4), path)
    verdicts = _run(notebook)
    assert verdicts and all(verdict == "PASS" for _, verdict in verdicts), verdicts


def test_solutions_replace_stub_cells_and_missing_ones_are_errors(tmp_path):
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("# EXERCISE: linear\ndef f():\n    raise NotImplementedError"),
            nbformat.v4.new_code_cell("print('grader')"),
        ]
    )
    path = NOTEBOOKS[1]  # 02: its solutions file defines 'linear'
    assert execute.exercise_names(notebook) == ["linear"]
    filled = execute.with_solutions(notebook, path)
    assert "NotImplementedError" not in filled.cells[0].source and filled.cells[0].source.startswith(
        "# EXERCISE: linear"
    )
    assert filled.cells[1].source == "print('grader')"
    orphan = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# EXERCISE: nowhere\npass")])
    with pytest.raises(KeyError, match="nowhere"):
        execute.with_solutions(orphan, path)
