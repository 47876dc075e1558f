"""The builder shared by the scripts in this folder: each ``NN_name.py`` script lists its cells and
this module writes ``tutorials/NN_name.ipynb`` and executes it, so that the notebook is saved with its
outputs. A script is its cells plus three lines::

    from _notebook import Notebook
    md, code, main = Notebook.for_script(__file__)
    ...                         # md(r'''...''') and code(r'''...''') cells, in order
    main()

and runs from the repository root::

    python tutorials/_src/03_relu.py            # write and execute tutorials/03_relu.ipynb
    python tutorials/_src/03_relu.py --no-run   # only write the notebook, without outputs

The notebook runs in a fresh python3 kernel with ``tutorials/`` as its working directory and the
repository root on ``PYTHONPATH`` (the same conditions as ``tests/test_tutorials.py``).
Figure conventions (dpi, JPEG for photographs) live in each notebook's first code cell.
"""
import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parent.parent
REPO = TUTORIALS.parent


class Notebook:
    """The cells of one tutorial notebook, and how to write and execute it."""

    def __init__(self, path):
        self.path = Path(path)
        self.cells = []

    @classmethod
    def for_script(cls, script):
        """The notebook built by ``_src/<name>.py`` (it is ``tutorials/<name>.ipynb``): returns its
        ``md``, ``code`` and ``main`` functions."""
        notebook = cls(TUTORIALS / (Path(script).stem + ".ipynb"))
        return notebook.md, notebook.code, notebook.main

    def md(self, text):
        self.cells.append(nbformat.v4.new_markdown_cell(text.strip("\n")))

    def code(self, text):
        self.cells.append(nbformat.v4.new_code_cell(text.strip("\n")))

    def notebook(self):
        nb = nbformat.v4.new_notebook(cells=list(self.cells))
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        return nb

    def build(self, run=True, timeout=600):
        """Writes the notebook; with ``run``, executes it first (cwd ``tutorials/``, repository root on
        ``PYTHONPATH``, each cell at most ``timeout`` seconds). Returns the seconds spent executing."""
        nb = self.notebook()
        elapsed = None
        if run:
            env = os.environ
            saved = {key: env.get(key) for key in ("PYTHONPATH", "MPLBACKEND")}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), saved["PYTHONPATH"]]))
            env.pop("MPLBACKEND", None)          # the kernel's inline backend draws the figures
            try:
                start = time.perf_counter()
                NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                               resources={"metadata": {"path": str(TUTORIALS)}}).execute()
                elapsed = time.perf_counter() - start
            finally:
                for key, value in saved.items():
                    if value is None:
                        env.pop(key, None)
                    else:
                        env[key] = value
        nbformat.write(nb, self.path)
        took = "not executed" if elapsed is None else f"executed in {elapsed:.1f} s"
        print(f"wrote {self.path} ({self.path.stat().st_size / 1e3:.0f} kB), {took}")
        return elapsed

    def main(self, argv=None):
        parser = argparse.ArgumentParser(description=f"Builds {self.path.name} from its cells and executes it.")
        parser.add_argument("--no-run", action="store_true", help="only write the notebook, without outputs")
        parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may take (default 600)")
        args = parser.parse_args(argv)
        self.build(run=not args.no_run, timeout=args.timeout)
