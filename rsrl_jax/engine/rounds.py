"""The round engine (paper section III): all rounds of a group of lanes, with a lane axis.

A lane is one fold of one run (its config, labels, method, seed, records: `Lane`). One loop
serves every grouping: a run's sequential folds (one lane a group, k = 1, the plain train
step), its parallel folds (`protocol.parallel_folds`: all its folds in one group), and the
runs of `study` and `compare` (`rsrl.run_lanes`: lanes of many runs in one group). Only the
compiled step differs (`fold_axis.make_fold_step`): the state, the batches, the keys and the
loss's terms always carry a leading lane axis of length k.

Round 1 fine-tunes the initial network on all of D; round i >= 2 fine-tunes net_{i-1} on the
samples that round i-1's selection kept (`rsrl_jax.engine.evaluation.finish_round`), with a
fresh optimizer state, as each MATLAB `trainNetwork` call of the paper did.

Each lane keeps exactly its own batches, labels, keys, epochs and step counts: an epoch runs as
many steps as the lane with the largest epoch needs, and a lane that has run out is fed a
masked (empty) batch that leaves it unchanged. The data order of every epoch is drawn from
(its seed, fold, round) and the step keys from the step counter, so a resumed round replays
exactly the batches it had left. Lanes whose round would train alike (`round_signature`)
train it once. Resume: a group restarts after the last round that all its lanes finished (a
lane's round already saved is restored, not trained again), and mid-round from the latest
checkpoint of its stacked training state (`fold_F/in_progress/` for a group of one lane,
`folds_in_progress/` for all folds of one run, `lanes_in_progress/<group id>/` otherwise).

Over 300 lines, not yet split (issue 32, item 4): the seam is the round loop (run_group,
train_round) vs grouping and saving lanes' progress (round_signature, _save_progress,
_restore_progress).
"""

import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from typing import Any

import jax
import numpy as np
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.data import splits
from rsrl_jax.engine import cross_fit, evaluation, fold_axis, placement, train
from rsrl_jax.method import losses, sampling, selection
from rsrl_jax.models import pretrained
from rsrl_jax.run import checkpoints, retention, stops
from rsrl_jax.run.progress import Progress, images_left, rounds_status


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
    """All rounds of the folds `fold_splits` ({fold index: split}) of the run `exp` trained
    together as lanes (`run_lanes`); returns their records, round by round. `parallel`: the
    folds of `protocol.parallel_folds` (their mid-round state in `folds_in_progress/`)."""
    lanes = [open_fold(exp, i, split) for i, split in fold_splits.items()]
    if parallel:
        directory = workdir_files.WorkdirFiles(exp.workdir).folds_in_progress
        label = "folds"
    else:
        directory = workdir_files.WorkdirFiles(exp.workdir).in_progress(lanes[0].index)
        label = f"fold {lanes[0].index}"
    return run_lanes(lanes, directory, label)


def group_progress_dir(lanes: list[Lane]) -> str:
    """Where a group of lanes of several runs keeps its mid-round state: a folder of the
    first lane's run named after the group's lanes (`lanes_in_progress/<id>`), so that only
    the same group, formed again, resumes from it."""
    names = json.dumps([[os.path.abspath(lane.exp.workdir), lane.index] for lane in lanes])
    group_id = hashlib.sha256(names.encode()).hexdigest()[:16]
    return workdir_files.WorkdirFiles(lanes[0].exp.workdir).lanes_group_in_progress(group_id)


def run_lanes(lanes: list[Lane], progress_dir: str, label: str, share: bool = True) -> list[dict]:
    """All rounds of `lanes` trained as one program (the group's compiled step: that of the
    first lane's `Experiment`), resumed from their checkpoints; returns their records.

    Each lane keeps its own training set, selection, loss terms, sampling, keys, data order,
    epochs and records (`train_round`, `evaluation.finish_round`); the lanes of a group share
    the network, the optimizer, the batch and the rounds (`rsrl.group_key`). `share`: lanes
    whose round would train alike (`round_signature`) train it once, and a network's
    evaluation passes are made once (`evaluation.Passes`). Mid-round state in
    `progress_dir`; a group restarts after the last round that all its lanes finished.
    """
    shared = lanes[0].exp  # the compiled parts
    rounds = shared.config.rsrl.rounds
    done = min(len(f.records) for f in lanes)  # rounds are saved in order: 1..done all exist
    if done:
        logging.info("%s: %s", label, rounds_status(done, rounds))
    for f in lanes:  # ends a deletion a kill interrupted, or a switch to keep='needed'
        retention.prune(f.config.checkpoint.keep, f, done)
    if done >= rounds:  # nothing to train: no network to restore
        for f in lanes:
            f.mngr.close()
        return [r for f in lanes for r in f.records]
    starts = {}  # the initial networks, one per seed + fold (`state_after`'s seed)

    def start(f):
        if done or not share:
            return state_after(f.exp, f, done)
        seed = f.config.seed + f.index
        if seed not in starts:
            starts[seed] = state_after(f.exp, f, 0)[0]
        return starts[seed], np.ones(len(f.split.train), bool)

    params, keeps = map(list, zip(*(start(f) for f in lanes), strict=True))
    starts.clear()  # the lanes hold them now: one copy of the networks while training
    # Which network each lane holds: lanes with the same one start alike (`round_signature`)
    networks = [
        ("start", f.config.seed + f.index) if done == 0 else ("saved", i)
        for i, f in enumerate(lanes)
    ]
    progress_mngr = checkpoints.progress_manager_at(progress_dir)
    for round_ in range(done + 1, rounds + 1):
        kept = [
            kept_set(f.index, f.split.train, round_, k) for f, k in zip(lanes, keeps, strict=True)
        ]
        sizes = [
            sampling.samples_per_epoch(f.config.train.epoch_samples, len(k), len(f.split.train))
            for f, k in zip(lanes, kept, strict=True)
        ]
        epochs = [epochs_of(f.config, round_) for f in lanes]
        signatures = [
            round_signature(f, networks[i], round_, kept[i], sizes[i], epochs[i]) if share else i
            for i, f in enumerate(lanes)
        ]
        trains = list(dict.fromkeys(signatures))  # the distinct trainings, in lane order
        first = [signatures.index(s) for s in trains]  # the lane that trains each
        if len(trains) < len(lanes):
            logging.info(
                "%s round %d: %d lanes train as %d (lanes alike train once)",
                label,
                round_,
                len(lanes),
                len(trains),
            )
        t0 = time.perf_counter()
        # A fresh optimizer state each round on the networks, which from here live only in
        # it: one copy of the parameters in memory while training (228 MB for AlexNet).
        state = start_state(shared, [params[i] for i in first])
        params = None
        step = shared.fold_step(len(first))
        # SIGINT/SIGTERM: the loop saves where it stands and stops (one process only: the
        # processes of a run could not agree on the step to stop at).
        with stops.deferred(active=jax.process_count() == 1):
            trained, stats = train_round(
                shared,
                step,
                [lanes[i] for i in first],
                label,
                round_,
                state,
                [kept[i] for i in first],
                [sizes[i] for i in first],
                progress_mngr,
                [epochs[i] for i in first],
                all_lanes=lanes,
            )
        del state  # donated to the steps
        train_s = time.perf_counter() - t0
        which = [trains.index(s) for s in signatures]  # each lane's training
        params = [trained[w] for w in which]
        passes = evaluation.Passes() if share else None
        # One process: the lanes' checkpoints are written at once (multi-process saves keep
        # their barriers one save at a time)
        saves = evaluation.RoundSaves() if jax.process_count() == 1 else None
        # Confident learning's selection: out-of-sample probabilities over D (extra fits)
        fresh = [None if round_ in f.saved else p for f, p in zip(lanes, params, strict=True)]
        probs = cross_fit.out_of_sample(shared, lanes, fresh, round_, label)
        del fresh
        try:
            for i, f in enumerate(lanes):
                if round_ in f.saved:  # saved before a kill: its checkpoint is the record
                    params[i], keeps[i] = state_after(f.exp, f, round_)
                    networks[i] = ("saved", i, round_)
                    continue
                networks[i] = signatures[i] if share else ("lane", i, round_)
                record, keeps[i] = evaluation.finish_round(
                    f.exp,
                    f,
                    round_,
                    params[i],
                    keeps[i],
                    stats[which[i]],
                    epochs[i],
                    sizes[i],
                    train_s,
                    passes,
                    probs[i],
                    len(lanes),
                    saves,
                )
                probs[i] = None
                f.records.append(record)
        finally:  # a save under way ends whole, as a save one at a time would have
            if saves is not None:
                saves.finish()
        del trained, passes
        checkpoints.clear_progress(progress_mngr)
        for f in lanes:  # once every lane of the group has saved the round
            retention.prune(f.config.checkpoint.keep, f, round_)
    for f in lanes:
        f.mngr.close()
    checkpoints.close_progress(progress_mngr)
    return [r for f in lanes for r in f.records]


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


def start_state(exp, params: list):
    """The lane axis's train state for a round: a fresh optimizer state on each lane's network
    `params[i]`, stacked, replicated (one program, so that each lane's momentum is not also
    made on its own before the stack copies it)."""
    return exp.lane_placer(len(params)).replicate(_start_state(exp.tx, params))


@functools.partial(jax.jit, static_argnums=0)
def _start_state(tx, params: list):
    return fold_axis.stack([train.new_state(p, tx) for p in params])


def train_round(
    exp, step, folds, label, round_, state, kept, sizes, progress_mngr, epochs=None, all_lanes=None
):
    """Trains round `round_` of the lanes `folds` at once with `step` (`make_fold_step` for k
    lanes), from `state` (`start_state`; donated); returns (params, epoch stats) per lane.

    Lane i trains `epochs[i]` epochs (default: the round's of `exp.config`) of `sizes[i]`
    samples drawn from `kept[i]` (`sampling.epoch_order`, its own `method.sampling`) with
    its own generator (its seed, fold, round) and its own round key; an epoch runs as many
    steps as the longest lane's, and a lane that has run out is fed a masked empty batch.
    `all_lanes`: every lane of the group (those `folds` train for too), named in the
    mid-round state so that only the same group resumes from it.
    """
    config, k = exp.config, len(folds)
    placer, batch_size = exp.lane_placer(k), config.train.batch_size
    if epochs is None:
        epochs = [epochs_of(config, round_)] * k
    rounds_epochs = max(epochs)
    steps = max(math.ceil(size / batch_size) for size in sizes)  # per epoch, longest lane
    every = config.checkpoint.every_steps
    rngs = [np.random.default_rng([f.config.seed, f.index, round_]) for f in folds]
    keys = fold_axis.round_keys(
        [f.config.seed for f in folds], [f.index for f in folds], round_, placer.replicated
    )
    class_terms = placer.replicate(fold_axis.stack([f.class_terms for f in folds]))
    group = _group_names(all_lanes or folds)
    names = _group_names(folds)

    def zero_sums():  # fresh each epoch: the step donates its sums
        return placer.replicate(fold_axis.stack([train.zero_sums()] * k))

    start_epoch, start_batch, sums = 1, 0, None
    saved = _restore_progress(progress_mngr, state, zero_sums, round_, group, names)
    if saved is not None:
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
    remaining = sum(  # a lane whose epochs ended before the resumed one has none left
        max(0, images_left(e, s, batch_size, start_epoch, start_batch) if start_epoch <= e else 0)
        for e, s in zip(epochs, sizes, strict=True)
    )
    progress = Progress(f"{label} round {round_} training", remaining, "img", config.log.progress)
    images = exp.data.images  # shared by the group's lanes; each lane has its own labels
    lane_labels = [f.exp.data.labels for f in folds]
    empty = (np.zeros(batch_size, np.int64), np.zeros(batch_size, np.float32))
    stats = [{} for _ in folds]
    host = None
    for epoch in range(1, rounds_epochs + 1):
        active = [i for i in range(k) if epoch <= epochs[i]]
        orders = {  # drawn every epoch of the lane, skipped or not
            i: sampling.epoch_order(
                rngs[i],
                kept[i],
                lane_labels[i][kept[i]],
                sizes[i],
                folds[i].config.method.sampling,
            )
            for i in active
        }
        if epoch < start_epoch:
            continue
        if sums is None:
            sums = zero_sums()
        batches = {i: list(placement.padded_batches(o, batch_size)) for i, o in orders.items()}
        for b in range(steps):
            if epoch == start_epoch and b < start_batch:
                continue
            picked = [
                batches[i][b] if i in batches and b < len(batches[i]) else empty for i in range(k)
            ]
            index = np.stack([p[0] for p in picked])
            mask = np.stack([p[1] for p in picked])
            y = np.stack([lane_labels[i][p[0]] for i, p in enumerate(picked)])
            x, y, m = placer.shard(images[index], y, mask)
            state, sums = step(state, sums, x, y, m, keys, class_terms)
            progress.update(int(mask.sum()), f"epoch {epoch}/{rounds_epochs}")
            done = (epoch - 1) * steps + b + 1
            due = every and done % every == 0 and done < rounds_epochs * steps
            if due or stops.requested():
                _check_folds(jax.device_get(sums), folds, round_)
                save = (progress_mngr, done, state, sums, folds, round_, epoch, b + 1, group)
                _save_progress(*save)
            if stops.requested():  # SIGINT/SIGTERM: the state is saved, as every_steps saves
                raise _interrupted(folds, round_, done)
        host = jax.device_get(sums)  # one host sync per epoch
        sums = None
        _check_folds(host, folds, round_)
        for i in active:
            stats[i] = {
                "loss": float(host["loss_sum"][i] / host["count"][i]),
                "accuracy": float(host["correct"][i] / host["count"][i]),
            }
        _epoch_done(folds, active, stats, label, round_, epoch, epochs, progress)
    if stops.requested():  # came while the last epoch's figures were taken
        sums = placer.replicate(jax.tree.map(np.asarray, host))
        last = (rounds_epochs, steps)
        _save_progress(
            progress_mngr, rounds_epochs * steps, state, sums, folds, round_, *last, group
        )
        raise _interrupted(folds, round_, rounds_epochs * steps)
    params = fold_axis.unstack(state.params, k)
    if placement.lanes_split(placer.data.mesh):  # each lane's network on every device again
        params = [exp.placer.replicate(p) for p in params]
    return params, stats


def _group_names(lanes) -> list:
    return [[os.path.abspath(f.exp.workdir), f.index] for f in lanes]


def _epoch_done(folds, active, stats, label, round_, epoch, epochs, progress) -> None:
    """Each run's TensorBoard scalars of the epoch and its log line (one line for a group of
    several runs)."""
    runs = {}
    for i in active:
        runs.setdefault(id(folds[i].exp), []).append(i)
    line = progress.figures() if folds[0].config.log.progress else None
    progress.mark()  # the epoch's line tells the progress: no other line right after it
    for lanes_of_run in runs.values():
        f = folds[lanes_of_run[0]]
        before = sum(epochs_of(f.config, r) for r in range(1, round_))
        f.exp.recorder.epoch_done(
            label,
            round_,
            epoch,
            epochs[lanes_of_run[0]],
            {folds[i].index: stats[i] for i in lanes_of_run},
            before + epoch,
            line if len(runs) == 1 else None,
        )
    if len(runs) > 1 and line is not None:
        logging.info(
            "%s round %d epoch %d/%d: %d lanes of %d runs | %s",
            label,
            round_,
            epoch,
            max(epochs),
            len(active),
            len(runs),
            line,
        )


def _restore_progress(progress_mngr, state, zero_sums, round_, group, names):
    """The group's mid-round state of round `round_`, or None: a state of another round, or
    of another group or set of trainings (its meta names them), is not this one's."""
    meta = checkpoints.progress_meta(progress_mngr)
    if meta is None or meta["round"] != round_:
        return None
    if meta.get("lanes", names) != names or meta.get("group", group) != group:
        return None
    return checkpoints.restore_progress(progress_mngr, {"state": state, "sums": zero_sums()})


def _save_progress(progress_mngr, done, state, sums, folds, round_, epoch, batch, group) -> None:
    """The mid-round state after step `done` (batch `batch` of epoch `epoch`)."""
    checkpoints.save_progress(
        progress_mngr,
        done,
        {"state": state, "sums": sums},
        {
            "folds": [f.index for f in folds],
            "lanes": _group_names(folds),
            "group": group,
            "round": round_,
            "epoch": epoch,
            "batch": batch,
        },
    )


def _interrupted(folds, round_: int, done: int) -> stops.Interrupted:
    signum = stops.requested()
    runs = list(dict.fromkeys(f.exp.workdir for f in folds))
    label = f"fold{'s' if len(folds) > 1 else ''} {', '.join(str(f.index) for f in folds)}"
    if len(runs) > 1:
        label = f"{len(folds)} lanes of {len(runs)} runs"
    where = runs[0] if len(runs) == 1 else f"{len(runs)} runs' folders ({runs[0]}, ...)"
    saved = f"the training state at step {done} was saved in {where}"
    return stops.Interrupted(
        signum, stops.stopped_line(signum, f"{label} round {round_} at step {done}", saved)
    )


def _check_folds(host_sums: dict, folds, round_: int) -> None:
    for i, f in enumerate(folds):
        check_finite(jax.tree.map(lambda a, i=i: a[i], host_sums), f.index, round_, f.exp.workdir)
