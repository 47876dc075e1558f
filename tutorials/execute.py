"""Executes a tutorial notebook and saves it with its outputs; also used by ``tests/test_tutorials.py``.

Every notebook ``tutorials/NN_name.ipynb`` is paired by Jupytext with the percent-format script
``tutorials/_src/NN_name.py`` (``tutorials/jupytext.toml``). Edit either form, then from the repository root::

    jupytext --sync tutorials/_src/03_relu.py       # bring the other form in step (outputs are kept)
    python tutorials/execute.py 03                  # execute tutorials/03_relu.ipynb and save its outputs
    python tutorials/execute.py 03 --solutions      # execute with tutorials/solutions/03_relu.py filled in
                                                    # (prints the graders' verdicts, writes nothing)

``jupytext --execute`` would do the second step too, but it needs nbconvert, which nothing else here needs;
this file is the twenty lines of nbclient that it would call.

Exercises: a stub cell starts with the line ``# EXERCISE: <name>``; ``tutorials/solutions/NN_name.py`` holds,
for each name, a block that starts with the same line and runs to the next marker. ``with_solutions``
replaces each stub cell's source with its block. Graders call ``graders.grade`` (``tutorials/graders/``) and print one verdict line.
"""

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

TUTORIALS = Path(__file__).resolve().parent
REPO = TUTORIALS.parent
MARKER = re.compile(r"^# EXERCISE: (\S+)\s*$", re.M)


def notebook_path(name):
    """``tutorials/NN_name.ipynb`` from ``NN``, ``NN_name``, the notebook's path or its script's path (the
    notebook need not exist yet: a new script is enough)."""
    stem = Path(name).stem
    pattern = f"{stem}_*" if len(stem) == 2 else stem
    stems = sorted(
        {p.stem for p in [*TUTORIALS.glob(pattern + ".ipynb"), *(TUTORIALS / "_src").glob(pattern + ".py")]}
    )
    if len(stems) != 1:
        raise SystemExit(
            f"expected one notebook tutorials/{pattern}.ipynb or script tutorials/_src/{pattern}.py, "
            f"found {stems}"
        )
    return TUTORIALS / (stems[0] + ".ipynb")


def load(path):
    """The notebook after ``jupytext --sync``: whichever of the pair was edited last brings the other in
    step (Jupytext keeps the cell ids and outputs of the .ipynb, so the saved notebook's diff stays small)."""
    import nbformat
    from jupytext.cli import jupytext as jupytext_cli

    script = TUTORIALS / "_src" / (Path(path).stem + ".py")
    if jupytext_cli(["--sync", "--quiet", str(path if Path(path).exists() else script)]):
        raise SystemExit(f"jupytext --sync {path} failed")
    return nbformat.read(path, as_version=4)


def solution_blocks(path):
    """``{exercise name: source}`` from ``tutorials/solutions/<notebook stem>.py`` (empty when absent)."""
    solutions = TUTORIALS / "solutions" / (Path(path).stem + ".py")
    if not solutions.exists():
        return {}
    text = solutions.read_text()
    marks = list(MARKER.finditer(text))
    return {
        m.group(1): text[m.start() : (marks[i + 1].start() if i + 1 < len(marks) else len(text))].strip("\n")
        for i, m in enumerate(marks)
    }


def exercise_names(notebook):
    """The names of the notebook's stub cells, in order."""
    return [
        m.group(1)
        for cell in notebook.cells
        if cell.cell_type == "code"
        for m in [MARKER.match(cell.source)]
        if m
    ]


def with_solutions(notebook, path):
    """Replaces every stub cell's source by its solution; a stub without a solution is an error."""
    blocks = solution_blocks(path)
    for cell in notebook.cells:
        match = MARKER.match(cell.source) if cell.cell_type == "code" else None
        if match:
            if match.group(1) not in blocks:
                raise KeyError(
                    f"no solution for exercise {match.group(1)!r} in tutorials/solutions/{Path(path).stem}.py"
                )
            cell.source = blocks[match.group(1)]
    return notebook


def execute(notebook, timeout=600):
    """Runs every cell in a fresh python3 kernel, with ``tutorials/`` as the working directory and the
    repository root on ``PYTHONPATH``. Returns the seconds it took."""
    from jupyter_client import KernelManager
    from nbclient import NotebookClient

    env = os.environ
    saved = {key: env.get(key) for key in ("PYTHONPATH", "MPLBACKEND")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), saved["PYTHONPATH"]]))
    env.pop("MPLBACKEND", None)  # the kernel's inline backend draws the figures
    # The kernel talks over Unix sockets in a folder of its own, not TCP ports on localhost: two
    # test suites side by side could both pick a free port and race to bind it.
    sockets = tempfile.TemporaryDirectory(prefix="nb-kernel-")
    kernel = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets.name, "kernel"))
    try:
        start = time.perf_counter()
        NotebookClient(
            notebook,
            timeout=timeout,
            km=kernel,
            record_timing=False,
            resources={"metadata": {"path": str(TUTORIALS)}},
        ).execute()
        return time.perf_counter() - start
    finally:
        if kernel.has_kernel:  # a kernel manager it was given, the client leaves running
            kernel.shutdown_kernel(now=True)
        sockets.cleanup()
        for key, value in saved.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value


VERDICT = re.compile(r"^exercise (\S+): (PASS|FAIL|not done yet)", re.M)


def verdicts(notebook):
    """``[(exercise name, 'PASS' | 'FAIL' | 'not done yet'), ...]`` printed by the graders."""
    text = "".join(
        out.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )
    return VERDICT.findall(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Executes a tutorial notebook and saves its outputs.")
    parser.add_argument("notebook", help="NN, NN_name, or the path of the notebook or of its script")
    parser.add_argument(
        "--solutions",
        action="store_true",
        help="fill in tutorials/solutions/NN_name.py, print the verdicts, write nothing",
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may take (default 600)")
    args = parser.parse_args(argv)
    path = notebook_path(args.notebook)
    notebook = load(path)
    if args.solutions:
        with_solutions(notebook, path)
    elapsed = execute(notebook, args.timeout)
    for name, verdict in verdicts(notebook):
        print(f"  exercise {name}: {verdict}")
    if args.solutions:
        print(f"{path.name} with solutions: executed in {elapsed:.1f} s (not written)")
        return
    import nbformat

    nbformat.write(notebook, path)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB), executed in {elapsed:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
