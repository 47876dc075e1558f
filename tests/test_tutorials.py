"""Every tutorial notebook runs from scratch on the CPU, so none of them can rot.

Each notebook is executed in a fresh kernel with the tutorials folder as its
working directory; a cell that raises fails the test with the cell's error.
"""
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="install the test extra: pip install -e .[test]")
nbclient = pytest.importorskip("nbclient", reason="install the test extra: pip install -e .[test]")

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))


def test_tutorials_exist_and_are_listed():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 11)], "expected tutorials 01 to 10"
    readme = (TUTORIALS / "README.md").read_text()
    for notebook in NOTEBOOKS:
        assert notebook.name in readme, f"{notebook.name} is not listed in tutorials/README.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    env_root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [env_root, os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute()
    errors = [out for cell in notebook.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
