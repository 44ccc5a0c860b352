"""The round engine (paper section III): all rounds of a group of folds, with a fold axis.

One loop serves both ways of running the protocol's folds. Sequential folds (the default)
run one group per fold, k = 1, with the plain train step; parallel folds
(`protocol.parallel_folds`) run one group of all k folds with the train step vmapped over
the fold axis. Only the compiled step differs (`fold_axis.make_fold_step`): the state, the batches,
the keys and the loss's class terms always carry a leading fold axis of length k.

Round 1 fine-tunes the initial network on all of D; round i >= 2 fine-tunes net_{i-1} on the
samples that round i-1's selection kept (`rsrl_jax.engine.evaluation.finish_round`), with a
fresh optimizer state, as each MATLAB `trainNetwork` call of the paper did.

Each fold keeps exactly its own batches, keys and step counts: an epoch runs as many steps as
the fold with the largest epoch needs, and a fold that has run out is fed a masked (empty)
batch that leaves it unchanged. The data order of every epoch is drawn from
(seed, fold, round) and the step keys from the step counter, so a resumed round replays
exactly the batches it had left. Resume: a group restarts after the last round that all its
folds finished (a fold's round already saved is restored, not trained again), and mid-round
from the latest checkpoint of its stacked training state (`fold_F/in_progress/` for a group
of one sequential fold, `folds_in_progress/` for parallel folds).
"""

import dataclasses
import functools
import math
import os
import time
from typing import Any

import jax
import numpy as np
from absl import logging

from rsrl_jax import errors
from rsrl_jax.data import splits
from rsrl_jax.engine import evaluation, fold_axis, placement, train
from rsrl_jax.method import losses, sampling, selection
from rsrl_jax.models import pretrained
from rsrl_jax.run import checkpoints, retention, stops
from rsrl_jax.run.progress import Progress, images_left, rounds_status

PARALLEL_PROGRESS_DIR = "folds_in_progress"


class TrainingDiverged(errors.DataError, FloatingPointError):
    """A NaN or Inf loss or gradient stopped training; the checkpoints hold the last good state
    (a run error the user can act on: lower the learning rate or check the photos, resume)."""


@dataclasses.dataclass
class FoldRun:
    """One fold of the protocol as the engine runs it.

    `majority`/`thresholds`: its s_max1..s_maxM and K1..KM (ranked once from its D);
    `class_terms`: the loss's class arrays of its D (`losses.class_terms`); `mngr`: its round
    checkpoints; `records`: its finished rounds' metrics records; `saved`: the rounds with a
    checkpoint when the group started.
    """

    index: int
    split: splits.Split
    majority: np.ndarray
    thresholds: np.ndarray
    class_terms: dict
    mngr: Any
    records: list
    saved: set


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
            f"under {checkpoints.fold_dir(workdir, fold)} hold the last good state; "
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


def open_fold(exp, index: int, split: splits.Split) -> FoldRun:
    """A fold's majority classes, the loss's class terms and its round checkpoints."""
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
        else f"kept: {selection.rule_text(config.rsrl, 'random_drop')}"
        if config.method.selection == "random_drop"
        else f"selection {config.method.selection!r}",
    )
    mngr = checkpoints.manager(exp.workdir, index)
    return FoldRun(
        index=index,
        split=split,
        majority=majority,
        thresholds=thresholds,
        class_terms=losses.loss_terms(d_counts, config.method),
        mngr=mngr,
        records=checkpoints.round_records(mngr),
        saved=set(mngr.all_steps()),
    )


def state_after(exp, fold: FoldRun, round_: int):
    """(params, keep mask over D) after round `round_` of `fold`; round 0 = the start.

    The recorded selection for round `round_ + 1` is logged if that round will run (a
    resumed run, or one whose rsrl.rounds was raised).
    """
    if round_ == 0:
        seed = exp.config.seed + fold.index
        params = pretrained.initial_params(exp.config, exp.model, seed, exp.view)
        return exp.placer.replicate(params), np.ones(len(fold.split.train), bool)
    saved = sorted(fold.mngr.all_steps())
    if round_ not in saved:
        raise checkpoints.missing_round(exp.workdir, fold.index, round_, saved)
    params, meta = checkpoints.restore_round(fold.mngr, round_, exp.abstract_params())
    keep = np.asarray(meta["next_keep"], bool)
    evaluation.log_selection(
        exp.config, fold.index, round_ + 1, keep, meta.get("selection_warnings", [])
    )
    return params, keep


def run_group(exp, fold_splits: dict[int, splits.Split], parallel: bool) -> list[dict]:
    """All rounds of the folds `fold_splits` ({fold index: split}) trained together, resumed
    from their checkpoints; returns their records, round by round. `parallel`: the folds of
    `protocol.parallel_folds` (their mid-round state in `folds_in_progress/`)."""
    config = exp.config
    folds = [open_fold(exp, i, split) for i, split in fold_splits.items()]
    label = "folds" if parallel else f"fold {folds[0].index}"
    done = min(len(f.records) for f in folds)  # rounds are saved in order: 1..done all exist
    if done:
        logging.info("%s: %s", label, rounds_status(done, config.rsrl.rounds))
    for f in folds:  # ends a deletion a kill interrupted, or a switch to keep='needed'
        retention.prune(config.checkpoint.keep, f, done)
    if done >= config.rsrl.rounds:  # nothing to train: no network to restore
        for f in folds:
            f.mngr.close()
        return [r for f in folds for r in f.records]
    params, keeps = map(list, zip(*(state_after(exp, f, done) for f in folds), strict=True))
    if parallel:
        directory = os.path.join(exp.workdir, PARALLEL_PROGRESS_DIR)
        progress_mngr = checkpoints.progress_manager_at(directory)
    else:
        progress_mngr = checkpoints.progress_manager(exp.workdir, folds[0].index)
    step = exp.fold_step(len(folds))
    for round_ in range(done + 1, config.rsrl.rounds + 1):
        kept = [
            kept_set(f.index, f.split.train, round_, k) for f, k in zip(folds, keeps, strict=True)
        ]
        sizes = [
            sampling.samples_per_epoch(config.train.epoch_samples, len(k), len(f.split.train))
            for f, k in zip(folds, kept, strict=True)
        ]
        epochs = epochs_of(config, round_)
        t0 = time.perf_counter()
        # A fresh optimizer state each round on the networks, which from here live only in
        # it: one copy of the parameters in memory while training (228 MB for AlexNet).
        state = start_state(exp, params)
        params = None
        # SIGINT/SIGTERM: the loop saves where it stands and stops (one process only: the
        # processes of a run could not agree on the step to stop at).
        with stops.deferred(active=jax.process_count() == 1):
            trained, stats = train_round(
                exp, step, folds, label, round_, state, kept, sizes, progress_mngr
            )
        del state  # donated to the steps
        train_s = time.perf_counter() - t0
        params = list(trained)
        for i, f in enumerate(folds):
            if round_ in f.saved:  # saved before a kill: its checkpoint is the record
                params[i], keeps[i] = state_after(exp, f, round_)
                continue
            record, keeps[i] = evaluation.finish_round(
                exp, f, round_, trained[i], keeps[i], stats[i], epochs, sizes[i], train_s
            )
            f.records.append(record)
        del trained
        checkpoints.clear_progress(progress_mngr)
        for f in folds:  # once every fold of the group has saved the round
            retention.prune(config.checkpoint.keep, f, round_)
    for f in folds:
        f.mngr.close()
    checkpoints.close_progress(progress_mngr)
    return [r for f in folds for r in f.records]


def start_state(exp, params: list):
    """The fold axis's train state for a round: a fresh optimizer state on each fold's network
    `params[i]`, stacked, replicated (one program, so that each fold's momentum is not also
    made on its own before the stack copies it)."""
    return exp.fold_placer.replicate(_start_state(exp.tx, params))


@functools.partial(jax.jit, static_argnums=0)
def _start_state(tx, params: list):
    return fold_axis.stack([train.new_state(p, tx) for p in params])


def train_round(exp, step, folds, label, round_, state, kept, sizes, progress_mngr):
    """Trains round `round_` of `folds` at once with `step` (`make_fold_step` for k folds),
    from `state` (`start_state`; donated); returns (params, epoch stats) per fold.

    Fold i trains on `sizes[i]` samples an epoch drawn from `kept[i]` (`sampling.epoch_order`)
    with its own generator (seed, fold, round) and its own round key.
    """
    config, placer = exp.config, exp.fold_placer
    k, batch_size = len(folds), config.train.batch_size
    epochs = epochs_of(config, round_)
    steps = max(math.ceil(size / batch_size) for size in sizes)  # per epoch, longest fold
    every = config.checkpoint.every_steps
    rngs = [np.random.default_rng([config.seed, f.index, round_]) for f in folds]
    keys = fold_axis.round_keys(config.seed, [f.index for f in folds], round_, placer.replicated)
    class_terms = placer.replicate(fold_axis.stack([f.class_terms for f in folds]))

    def zero_sums():  # fresh each epoch: the step donates its sums
        return placer.replicate(fold_axis.stack([train.zero_sums()] * k))

    start_epoch, start_batch, sums = 1, 0, None
    saved = checkpoints.restore_progress(progress_mngr, {"state": state, "sums": zero_sums()})
    if saved is not None and saved[1]["round"] == round_:
        state, sums = saved[0]["state"], saved[0]["sums"]
        start_epoch, start_batch = saved[1]["epoch"], saved[1]["batch"]
        if start_batch < steps:
            where = f"{start_batch} of the epoch's {steps} batches done"
        else:  # saved after the epoch's last batch: only its end-of-epoch figures are left
            where = f"all {steps} of the epoch's batches done"
        logging.info(
            "%s round %d: resuming at epoch %d batch %d (%s)",
            label,
            round_,
            start_epoch,
            start_batch,
            where,
        )
    remaining = sum(images_left(epochs, s, batch_size, start_epoch, start_batch) for s in sizes)
    progress = Progress(f"{label} round {round_} training", remaining, "img", config.log.progress)
    images, labels = exp.data.images, exp.data.labels
    epochs_before = sum(epochs_of(config, r) for r in range(1, round_))
    empty = (np.zeros(batch_size, np.int64), np.zeros(batch_size, np.float32))
    stats = [{} for _ in folds]
    for epoch in range(1, epochs + 1):
        orders = [  # drawn every epoch, skipped or not
            sampling.epoch_order(rng, ks, labels[ks], size, config.method.sampling)
            for rng, ks, size in zip(rngs, kept, sizes, strict=True)
        ]
        if epoch < start_epoch:
            continue
        if sums is None:
            sums = zero_sums()
        batches = [list(placement.padded_batches(order, batch_size)) for order in orders]
        for b in range(steps):
            if epoch == start_epoch and b < start_batch:
                continue
            picked = [fold[b] if b < len(fold) else empty for fold in batches]
            index = np.stack([p[0] for p in picked])
            mask = np.stack([p[1] for p in picked])
            x, y, m = placer.shard(images[index], labels[index], mask)
            state, sums = step(state, sums, x, y, m, keys, class_terms)
            progress.update(int(mask.sum()), f"epoch {epoch}/{epochs}")
            done = (epoch - 1) * steps + b + 1
            due = every and done % every == 0 and done < epochs * steps
            if due or stops.requested():
                _check_folds(jax.device_get(sums), folds, round_, exp.workdir)
                save = (progress_mngr, done, state, sums, folds, round_, epoch, b + 1)
                _save_progress(*save)
            if stops.requested():  # SIGINT/SIGTERM: the state is saved, as every_steps saves
                raise _interrupted(folds, round_, done, exp.workdir)
        host = jax.device_get(sums)  # one host sync per epoch
        sums = None
        _check_folds(host, folds, round_, exp.workdir)
        for i in range(k):
            stats[i] = {
                "loss": float(host["loss_sum"][i] / host["count"][i]),
                "accuracy": float(host["correct"][i] / host["count"][i]),
            }
        exp.recorder.epoch_done(
            label,
            round_,
            epoch,
            epochs,
            {f.index: s for f, s in zip(folds, stats, strict=True)},
            epochs_before + epoch,
            progress.line() if config.log.progress else None,
        )
    if stops.requested():  # came while the last epoch's figures were taken
        sums = placer.replicate(jax.tree.map(np.asarray, host))
        _save_progress(progress_mngr, epochs * steps, state, sums, folds, round_, epochs, steps)
        raise _interrupted(folds, round_, epochs * steps, exp.workdir)
    return fold_axis.unstack(state.params, k), stats


def _save_progress(progress_mngr, done, state, sums, folds, round_, epoch, batch) -> None:
    """The mid-round state after step `done` (batch `batch` of epoch `epoch`)."""
    checkpoints.save_progress(
        progress_mngr,
        done,
        {"state": state, "sums": sums},
        {"folds": [f.index for f in folds], "round": round_, "epoch": epoch, "batch": batch},
    )


def _interrupted(folds, round_: int, done: int, workdir: str) -> stops.Interrupted:
    signum = stops.requested()
    label = f"fold{'s' if len(folds) > 1 else ''} {', '.join(str(f.index) for f in folds)}"
    saved = f"the training state at step {done} was saved in {workdir}"
    return stops.Interrupted(
        signum, stops.stopped_line(signum, f"{label} round {round_} at step {done}", saved)
    )


def _check_folds(host_sums: dict, folds, round_: int, workdir: str) -> None:
    for i, f in enumerate(folds):
        check_finite(jax.tree.map(lambda a, i=i: a[i], host_sums), f.index, round_, workdir)
