"""The graders' core (tutorials/graders/__init__.py): verdicts, sub-checks and the messages that teach."""

import linecache
import sys
from pathlib import Path

import numpy as np
import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
sys.path.insert(0, str(TUTORIALS))
import graders  # noqa: E402
from graders import Mismatch, compare, judge  # noqa: E402


def test_one_error_and_sub_checks_are_judged_against_the_tolerance():
    assert judge("a", lambda: 1e-12).verdict == "PASS"
    assert judge("b", lambda: 0.3).verdict == "FAIL"
    assert judge("c", lambda: float("nan")).verdict == "FAIL"
    outcome = judge("d", lambda: {"forward": 1e-12, "dx, stride 2": 0.5, "dW": 0.2})
    assert outcome.verdict == "FAIL"
    assert "dx, stride 2: error 5.00e-01" in outcome.line and "1 more sub-checks failed" in outcome.line
    outcome = judge("e", lambda: {"forward": 1e-9, "loose": (1e-3, 1e-2)})
    assert outcome.passed and "worst of 2 sub-checks" in outcome.line and "1.00e-03" in outcome.line
    assert judge("f", lambda: {"loose": (2e-2, 1e-2)}).verdict == "FAIL"


def test_the_learners_object_is_passed_to_the_check():
    def check(square):
        return abs(square(3.0) - 9.0)

    assert judge("square", check, lambda x: x * x).passed
    assert not judge("square", check, lambda x: x + x).passed


def test_a_stub_is_not_done_and_grade_prints_one_line(capsys):
    def stub(*_):
        raise NotImplementedError

    assert graders.grade("g", stub) is None
    assert graders.grade("h", lambda: 0.0) is True
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("exercise g: not done yet") and lines[1].startswith("exercise h: PASS")


@pytest.mark.parametrize(
    "got, expected, message",
    [
        (None, np.zeros(3), "forward: your function returned None"),
        (np.zeros((4, 3)), np.zeros((3, 4)), "forward: shape (4, 3), expected (3, 4) (the transpose?)"),
        (np.zeros((2, 6)), np.zeros((3, 4)), "forward: shape (2, 6), expected (3, 4)"),
        (np.zeros(3, np.float32), np.zeros(3), "forward: dtype float32, expected float64"),
        (np.zeros(3, np.int64), np.zeros(3), "forward: dtype int64, expected floating point"),
        (np.array([1.0, np.nan, 0.0]), np.zeros(3), "forward: contains NaN"),
        ("abc", np.zeros(3), "forward: shape (), expected (3,)"),
        ((1.0, 2.0), np.zeros(3), "forward: got a tuple of 2 items"),
    ],
)
def test_compare_names_what_is_wrong_before_any_value(got, expected, message):
    with pytest.raises(
        Mismatch, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
    ):
        compare("forward", got, expected)


def test_compare_returns_the_relative_error_of_good_answers():
    expected = np.array([3.0, 4.0])
    assert compare("x", expected.copy(), expected) == 0.0
    assert compare("x", np.array([3.0, 4.5]), expected) == pytest.approx(0.5 / np.hypot(3.0, 4.5))
    assert compare("x", expected.astype(np.float32), expected, dtype=False) == 0.0
    assert compare("loss", 2.0, np.float64(2.5)) == pytest.approx(0.2)


def test_a_mismatch_fails_with_its_message_and_a_bug_names_the_learners_line():
    outcome = judge("lin", lambda: compare("weight.grad", None, np.zeros(2)))
    assert (
        outcome.line
        == "exercise lin: FAIL (weight.grad: your function returned None; is a `return` missing?)"
    )
    # a function defined in a notebook cell: ipykernel names the cell's code like this
    cell = "/tmp/ipykernel_4242/1234567.py"
    source = "def forward(x):\n    y = x @ x.T\n    return y[5]\n"
    linecache.cache[cell] = (len(source), None, source.splitlines(True), cell)
    namespace = {}
    exec(compile(source, cell, "exec"), namespace)
    outcome = judge("lin", lambda: namespace["forward"](np.zeros((2, 2))))
    assert outcome.verdict == "FAIL"
    assert outcome.line.startswith("exercise lin: FAIL (IndexError: index 5 is out of bounds")
    assert outcome.line.endswith(", at line 3 of your cell: `return y[5]`)")


def test_an_exception_inside_during_names_its_sub_check():
    def check():
        with graders.during("backward, stride 2"):
            raise ValueError("operands could not be broadcast")

    outcome = judge("conv", check)
    assert (
        outcome.line
        == "exercise conv: FAIL (backward, stride 2: ValueError: operands could not be broadcast)"
    )

    def stub():
        with graders.during("forward"):
            raise NotImplementedError

    assert judge("conv", stub).verdict == "not done yet"
