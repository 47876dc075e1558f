"""Learning-rate schedules, stepped once per epoch with the validation error.

§5: "The heuristic which we followed was to divide the learning rate by 10 when
the validation error rate stopped improving with the current learning rate. The
learning rate was initialized at 0.01 and reduced three times prior to
termination." ``ReduceLROnPlateau`` automates that hand-made rule;
``StepLR`` is the common fixed alternative (divide every ``step_size`` epochs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .optim import SGD


class ReduceLROnPlateau:
    """Divide the learning rate by 1/factor when the validation error stalls.

    An epoch "improves" when its error is below the best so far by more than
    ``threshold``. After ``patience`` + 1 epochs without improvement the rate is
    multiplied by ``factor`` (at most ``max_reductions`` times); one more stall
    after the last reduction sets ``finished`` (the paper stopped there).
    """

    def __init__(
        self,
        optimizer: SGD,
        factor: float = 0.1,
        patience: int = 1,
        threshold: float = 1e-4,
        max_reductions: int = 3,
    ) -> None:
        self.optimizer = optimizer
        self.factor, self.patience, self.threshold = factor, patience, threshold
        self.max_reductions = max_reductions
        self.best = float("inf")
        self.bad_epochs = 0
        self.reductions = 0
        self.finished = False

    def step(self, val_error: float) -> None:
        if val_error < self.best - self.threshold:
            self.best = float(val_error)
            self.bad_epochs = 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.bad_epochs = 0
            if self.reductions < self.max_reductions:
                self.optimizer.lr *= self.factor
                self.reductions += 1
            else:
                self.finished = True

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "reductions": self.reductions,
            "finished": self.finished,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self.reductions = int(state["reductions"])
        self.finished = bool(state["finished"])


class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer: SGD, step_size: int = 30, gamma: float = 0.1) -> None:
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.epochs = 0
        self.finished = False

    def step(self, val_error: float | None = None) -> None:
        self.epochs += 1
        if self.epochs % self.step_size == 0:
            self.optimizer.lr *= self.gamma

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state: dict) -> None:
        self.epochs = int(state["epochs"])
