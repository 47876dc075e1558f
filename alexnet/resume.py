"""What ``train --resume`` may change, and whether a moved ``--data`` is still the run's subset.

A resumed run is the same run: the checkpoint's arguments define it. Flags given on the
command line together with ``--resume`` are sorted into three kinds:

* ``CHANGEABLE``: applied, they do not change the result (``--epochs``, ``--device``,
  ``--workers``, ``--quiet``, ``--out``, ``--resume``, ``--overwrite``, and ``--towers``: the two
  towers compute the one-process network, and checkpoints hold it whole);
* ``--lr``: applied and recorded. A value different from the one the run was last given sets the
  optimizer's learning rate from the resumed step on (the schedule goes on dividing *it*), and the
  change is written into the checkpoint (``lr_changes``) and the next epoch's line of log.jsonl.
  Giving the run's own ``--lr`` again changes nothing (so that the learning rate the §5 schedule
  reached is kept when the original command line is repeated with ``--resume``);
* ``--data``: accepted when it is the same prepared subset (``same_subset``), e.g. after the
  folder moved; refused otherwise;
* every other flag (architecture, initialization, seed, augmentation, batch size, optimizer
  settings, preparation): refused with the flags named when its value differs from the
  checkpoint's; the same value is accepted.

The policy (which fields are which) is ``alexnet.config``'s, next to ``TrainConfig``. Which flags
were typed (as opposed to defaults) is the caller's ``given``: ``{field: flag}``, from the command
line (``alexnet.cli.given_options``, with ``--preset``'s fields), or ``TrainConfig.non_defaults()`` for a
config built in code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

import data

from .checkpoint import Checkpoint, load_checkpoint
from .config import CHANGEABLE, CHECKED, RECORDED, TrainConfig, defaults, resumable_flags


def saved_arguments(checkpoint: Checkpoint) -> dict:
    """The run's arguments as the checkpoint records them, completed for checkpoints written before a
    flag existed: ``--lrn-across-towers`` from the model's ``lrn_groups`` (such checkpoints have 1,
    the cross-tower window), any other missing flag with its default (what the run used then)."""
    saved = dict(checkpoint.meta.get("args", {}))
    config = checkpoint.config
    if "lrn_across_towers" not in saved:
        saved["lrn_across_towers"] = (
            int(config.get("groups", 1)) == 2 and int(config.get("lrn_groups", 1)) == 1
        )
    for key, default in defaults().items():
        saved.setdefault(key, default)
    return saved


def refused_changes(config: TrainConfig, saved: dict, given: dict[str, str]) -> list[tuple]:
    """The flags of ``given`` that would change the run: ``[(flag, checkpoint value, given value)]``."""
    refused = []
    for key, flag in sorted(given.items(), key=lambda item: item[1]):
        if key in CHANGEABLE or key in RECORDED or key in CHECKED or key not in saved:
            continue
        if getattr(config, key) != saved[key]:
            refused.append((flag, saved[key], getattr(config, key)))
    return refused


def check_resume_flags(config: TrainConfig, saved: dict, given: dict[str, str]) -> None:
    """Raise ValueError naming the flags that would change the resumed run."""
    refused = refused_changes(config, saved, given)
    if refused:
        listed = ", ".join(f"{flag} {value!r} (the run has {old!r})" for flag, old, value in refused)
        raise ValueError(
            f"--resume continues a run with its own settings; these flags would change it: "
            f"{listed}. Drop them, or start a new run (another --out, or --overwrite). "
            f"On resume only {resumable_flags()} may be given"
        )


def resume_config(config: TrainConfig, given: dict[str, str]) -> tuple[TrainConfig, Checkpoint | None, bool]:
    """With ``config.resume``, load the checkpoint and take the run-defining settings from it
    (everything but CHANGEABLE, and a typed RECORDED or CHECKED one), so that the continued run is
    the same run. Returns ``(config, checkpoint, lr_changed)``; ``(config, None, False)`` without
    ``--resume``. ``given``: ``{field: flag}`` of the settings typed."""
    if not config.resume:
        return config, None, False
    if config.resume == "auto":
        config = config.replace(resume=str(Path(config.out) / "checkpoint.npz"))
    resumed = load_checkpoint(config.resume)
    if not resumed.optimizer_state:
        raise ValueError(
            f"{config.resume} has no training state (is it a best.npz?); resume from checkpoint.npz"
        )
    saved = saved_arguments(resumed)
    check_resume_flags(config, saved, given)  # refuses flags that would change the run, naming them
    check_data_still_there(saved, given)
    lr_changed = "lr" in given and "lr" in saved and config.lr != saved["lr"]
    fields = defaults()
    taken = {
        key: value
        for key, value in saved.items()
        if key in fields
        and key not in CHANGEABLE
        and not (key in given and (key in RECORDED or key in CHECKED))
    }  # a new --lr, a moved --data
    return config.replace(**taken), resumed, lr_changed


# -- the prepared subset ---------------------------------------------------------------------------


def _array_sha256(array):
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array, np.float32)).tobytes()).hexdigest()


def subset_fingerprint(path):
    """What a checkpoint records of its prepared subset: ``data.subset_fingerprint`` (S, classes,
    counts, the arrays' checksums, the training RGB covariance) and the mean image's digest, which
    is read from the file itself (a mean image replaced without updating meta.json is caught too)."""
    fingerprint = data.subset_fingerprint(path)
    fingerprint["mean_image_sha256"] = _array_sha256(np.load(Path(path) / "mean_image.npy"))
    return fingerprint


def subset_differences(checkpoint, path, found=None):
    """How the prepared folder ``path`` differs from the subset ``checkpoint`` was trained on (a list
    of phrases; empty when it is the same). ``found``: ``subset_fingerprint(path)`` if already made."""
    found = subset_fingerprint(path) if found is None else found
    recorded = checkpoint.meta.get("data_fingerprint")
    if recorded:
        differ = data.subset_differences(recorded, found)
        expected_mean = recorded.get("mean_image_sha256")
    else:  # written before fingerprints: the classes, S and mean image the checkpoint holds
        differ = []
        if checkpoint.meta.get("wnids") not in (None, found["wnids"]):
            differ.append("classes differ")
        if checkpoint.meta.get("image_size") not in (None, found["size"]):
            differ.append(f"image size S {checkpoint.meta['image_size']} vs {found['size']}")
        expected_mean = None if checkpoint.mean_image is None else _array_sha256(checkpoint.mean_image)
    if expected_mean is not None and expected_mean != found["mean_image_sha256"]:
        differ.append("mean image differs")
    return differ


def check_same_subset(checkpoint, path):
    """Raise ValueError unless the prepared folder ``path`` is the subset ``checkpoint`` was trained
    on; returns the folder's fingerprint."""
    found = subset_fingerprint(path)
    differ = subset_differences(checkpoint, path, found)
    if differ:
        raise ValueError(
            f"--data {path} is not the subset this run was trained on ({'; '.join(differ)}); "
            f"resume with the run's own prepared subset, or start a new run"
        )
    return found


def check_data_still_there(saved: dict, given: dict[str, str]) -> None:
    """Resuming without --data from a checkpoint whose prepared folder has moved: say what to do."""
    if "data" in given:
        return
    spec = str(saved.get("data", ""))
    if spec and not spec.lower().startswith("imagenette") and not Path(spec).expanduser().exists():
        raise FileNotFoundError(
            f"the run's data {spec} no longer exists; if the prepared subset moved, "
            f"resume with --data NEW (accepted when it is the same subset)"
        )


def lr_notes(lr_changes, epoch):
    """Entries for the log line of ``epoch`` (1-based) when the learning rate was changed in it."""
    changes = [c for c in lr_changes if c["epoch"] == epoch]
    return {"lr_changes": changes} if changes else {}
