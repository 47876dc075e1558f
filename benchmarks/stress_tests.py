"""Run chosen tests many times on a loaded machine and count each test's passes and failures.

    python benchmarks/stress_tests.py --runs 30 --busy 2 tests/test_distributed_training.py \
        tests/test_towers_mpi.py "tests/test_reliability_train.py -k sigterm"

A test that passes alone can fail when the machine is busy: a timeout too tight, a message lost
in a race between processes, a file polled before it is complete. CI runs on shared machines, so
such a test fails now and then. This script looks for them: ``--busy K`` processes spin on the
CPU (``while True: pass``) for the whole session, and each round runs every target once with
pytest (``--junitxml``, read back to count every test's outcome). It prints a table of passed,
failed and skipped counts per test, and each failure's first message, and exits with status 1
when any test failed. A failure found this way is fixed at its cause, never by retrying.

Each target is a pytest argument string (a file, a node id, or a file followed by ``-k EXPR``);
``--`` passes the remaining arguments to every pytest run. Quote a ``-k`` expression inside the
target: ``"tests/test_alexnet_training.py -k 'sigterm or sigkill'"``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def busy_loops(count: int) -> list[subprocess.Popen]:
    """``count`` processes that keep one CPU core busy each until terminated."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """``{test id: (outcome, first line of the failure)}`` from a pytest --junitxml report."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message = (child.get("message") or child.text or "").strip().splitlines()[:1]
                message = message[0] if message else child.tag
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        found[name] = (outcome, message)
    return found


def run_round(targets: list[str], extra: list[str], junit: Path, timeout: float) -> dict:
    """One pytest run per target; the outcomes of all of them."""
    results = {}
    for target in targets:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
        command += shlex.split(target) + extra
        try:
            subprocess.run(
                command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            results[f"{target} (whole run)"] = ("failed", f"pytest did not finish within {timeout:.0f} s")
            continue
        if junit.exists():
            results.update(outcomes(junit))
            junit.unlink()
        else:
            results[f"{target} (whole run)"] = ("failed", "pytest wrote no report")
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("targets", nargs="+", help="pytest arguments, one string per target")
    parser.add_argument("--runs", type=int, default=10, help="rounds (default 10)")
    parser.add_argument(
        "--busy", type=int, default=2, help="busy-loop processes beside the tests (default 2)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per pytest run")
    args = parser.parse_args(argv)

    # SIGTERM ends the session like Ctrl-C: the busy loops and the running pytest are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(130))
    counts = defaultdict(lambda: defaultdict(int))
    first_failure = {}
    loops = busy_loops(args.busy)
    start, rounds = time.time(), 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for round_ in range(1, args.runs + 1):
                results = run_round(args.targets, extra, Path(tmp) / "report.xml", args.timeout)
                for name, (outcome, message) in results.items():
                    counts[name][outcome] += 1
                    if outcome == "failed":
                        first_failure.setdefault(name, f"round {round_}: {message}")
                rounds = round_
                failed = sum(outcome == "failed" for outcome, _ in results.values())
                print(
                    f"round {round_}/{args.runs}: {len(results)} tests, {failed} failed "
                    f"({time.time() - start:.0f} s)",
                    flush=True,
                )
                for name, (outcome, message) in sorted(results.items()):
                    if outcome == "failed":
                        print(f"  FAILED {name}: {message}", flush=True)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C or SIGTERM: report the rounds completed
        print(f"interrupted after {rounds} complete rounds", flush=True)
    finally:
        for loop in loops:
            loop.terminate()
        for loop in loops:
            loop.wait()

    width = max((len(name) for name in counts), default=10)
    print(f"\n{'test':<{width}}  passed  failed  skipped   ({rounds} rounds, {args.busy} busy loops)")
    for name in sorted(counts):
        c = counts[name]
        print(f"{name:<{width}}  {c['passed']:6d}  {c['failed']:6d}  {c['skipped']:7d}")
    for name, message in sorted(first_failure.items()):
        print(f"FAILED {name}: {message}")
    return 1 if first_failure else 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
