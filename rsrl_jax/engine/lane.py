"""A lane: one fold of one run as the round engine trains it (`rounds`), opened with its
majority classes, loss terms and checkpoints; what its round trains from (`round_signature`),
the state it starts a round from (`state_after`), and the checks that stop it (a NaN step,
an empty selection).
"""

import dataclasses
import hashlib
from typing import Any

import jax
import numpy as np
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.data import splits
from rsrl_jax.engine import evaluation, train
from rsrl_jax.method import losses, selection
from rsrl_jax.models import pretrained
from rsrl_jax.run import checkpoints


class TrainingDiverged(errors.DataError, FloatingPointError):
    """A NaN or Inf loss or gradient stopped training; the checkpoints hold the last good state
    (a run error the user can act on: lower the learning rate or check the photos, resume)."""


@dataclasses.dataclass
class Lane:
    """One fold of one run as the engine trains it: a lane of a group (`run_group`).

    `exp`: its run's `Experiment` (config, workdir, recorder, data with its own labels;
    the compiled parts are the group's); `majority`/`thresholds`: its s_max1..s_maxM and
    K1..KM (ranked once from its D); `class_terms`: its loss's terms (`losses.loss_terms`);
    `mngr`: its round checkpoints; `records`: its finished rounds' metrics records;
    `saved`: the rounds with a checkpoint when the group started.
    """

    exp: Any
    index: int
    split: splits.Split
    majority: np.ndarray
    thresholds: np.ndarray
    class_terms: dict
    mngr: Any
    records: list
    saved: set

    @property
    def config(self):
        return self.exp.config

    @property
    def name(self) -> str:
        """The lane in messages: its fold, and its run's folder in a group of several runs."""
        return f"{self.exp.workdir} fold {self.index}"


FoldRun = Lane  # the name of a lane before lanes spanned runs


def epochs_of(config, round_: int) -> int:
    """Epochs of round `round_`: `train.first_round_epochs` (when > 0) for round 1."""
    if round_ == 1 and config.train.first_round_epochs > 0:
        return config.train.first_round_epochs
    return config.train.epochs_per_round


def check_finite(sums: dict, fold: int, round_: int, workdir: str) -> None:
    """Stops the run if a step of fold `fold` met a NaN/Inf (`train.zero_sums` on the host)."""
    bad = int(sums["first_bad_step"])
    if bad != train.NO_BAD_STEP:
        raise TrainingDiverged(
            f"fold {fold} round {round_} step {bad + 1}: the loss or a gradient is NaN or "
            "Inf, so training stopped (that step's update was not applied). The checkpoints "
            f"under {workdir_files.WorkdirFiles(workdir).fold(fold)} hold the last good state; "
            "lower train.learning_rate or check the photos, then run the same command to "
            "resume."
        )


def kept_set(fold: int, d_indices: np.ndarray, round_: int, keep: np.ndarray) -> np.ndarray:
    """The data indices round `round_` trains on (D[keep]); an empty selection stops the run."""
    kept = d_indices[keep]
    if len(kept) == 0:
        raise errors.DataError(
            f"fold {fold} round {round_}: the selection kept no sample; set "
            "rsrl.min_keep_per_class > 0 to keep the most likely samples of each class, or "
            "rsrl.drop_quantile=q (0 < q < 1) to drop about a share q of each majority class"
        )
    return kept


def open_fold(exp, index: int, split: splits.Split) -> Lane:
    """A lane of the run `exp`: fold `index`'s majority classes, loss terms and round
    checkpoints."""
    config, data = exp.config, exp.data
    d_labels = data.labels[split.train]
    majority = selection.majority_classes(d_labels, data.num_classes, config.rsrl.num_majority)
    thresholds = np.asarray(config.rsrl.thresholds[: len(majority)], np.float32)
    d_counts = np.bincount(d_labels, minlength=data.num_classes)
    logging.info(
        "fold %d: |D|=%d val=%d test=%d; majority scores %s; %s",
        index,
        len(split.train),
        len(split.val),
        len(split.test),
        [data.class_scores[c] for c in majority],
        f"kept when {selection.rule_text(config.rsrl)}"
        if config.method.selection == "rsrl"
        else f"kept: {selection.cl_rule_text(config.method)}"
        if selection.needs_cross_fit(config.method)
        else f"kept: {selection.rule_text(config.rsrl, 'random_drop')}"
        if config.method.selection == "random_drop"
        else f"selection {config.method.selection!r}",
    )
    mngr = checkpoints.manager(exp.workdir, index)
    return Lane(
        exp=exp,
        index=index,
        split=split,
        majority=majority,
        thresholds=thresholds,
        class_terms=losses.loss_terms(d_counts, config.method),
        mngr=mngr,
        records=checkpoints.round_records(mngr),
        saved=set(mngr.all_steps()),
    )


open_lane = open_fold


def state_after(exp, fold: Lane, round_: int):
    """(params, keep mask over D) after round `round_` of `fold`; round 0 = the start.

    The recorded selection for round `round_ + 1` is logged if that round will run (a
    resumed run, or one whose rsrl.rounds was raised). The keep mask is None where the round
    was its run's last and its selection needs a cross-fit (`evaluation.deferred_selection`).
    """
    if round_ == 0:
        seed = exp.config.seed + fold.index
        params = pretrained.initial_params(exp.config, exp.model, seed, exp.view)
        return exp.placer.replicate(params), np.ones(len(fold.split.train), bool)
    saved = sorted(fold.mngr.all_steps())
    if round_ not in saved:
        raise checkpoints.missing_round(exp.workdir, fold.index, round_, saved)
    params, meta = checkpoints.restore_round(fold.mngr, round_, exp.abstract_params())
    if meta["next_keep"] is None:  # left to the resume that raised rsrl.rounds
        return params, None
    keep = np.asarray(meta["next_keep"], bool)
    evaluation.log_selection(
        exp.config, fold.index, round_ + 1, keep, meta.get("selection_warnings", [])
    )
    return params, keep


def round_signature(lane: Lane, network, round_: int, kept, size: int, epochs: int):
    """What a lane's round trains from, all of it: lanes with equal signatures (in one group:
    the same photos, network and optimizer) train the same network, bit for bit, and that
    network is then known by this signature (plain, rsrl and random_drop of one seed and
    fold share round 1). The lane's seed and fold fix its data order and keys."""
    labels = lane.exp.data.labels[kept]
    terms = {k: np.asarray(v).tobytes() for k, v in sorted(lane.class_terms.items())}
    return (
        network,
        round_,
        lane.config.seed,
        lane.index,
        hashlib.sha256(np.asarray(kept).tobytes() + labels.tobytes()).hexdigest(),
        size,
        epochs,
        lane.config.method.sampling,
        tuple(terms.items()),
    )


def check_folds(host_sums: dict, folds, round_: int) -> None:
    for i, f in enumerate(folds):
        check_finite(jax.tree.map(lambda a, i=i: a[i], host_sums), f.index, round_, f.exp.workdir)
