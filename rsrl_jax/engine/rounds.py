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
train it once. Confident learning's cross-fit (`cross_fit.out_of_sample`) follows every round
but the last: a resume that raises `rsrl.rounds` makes the last one's (`select_deferred`).
Resume: a group restarts after the last round that all its lanes finished (a lane's round
already saved is restored, not trained again), and mid-round from the latest checkpoint of
its stacked training state (`fold_F/in_progress/` for a group of one lane,
`folds_in_progress/` for all folds of one run, `lanes_in_progress/<group id>/` otherwise).

A lane (`lane.Lane`, `open_lane`, `state_after`, `round_signature`) and a group's mid-round
state (`lane_progress`) have their own modules; this one is the loop.
"""

import functools
import time

import jax
import numpy as np
from absl import logging

from rsrl_jax import workdir_files
from rsrl_jax.data import splits
from rsrl_jax.engine import cross_fit, evaluation, fold_axis, train

# A lane and its mid-round state live in lane.py and lane_progress.py; their names stay
# importable from here.
from rsrl_jax.engine.lane import FoldRun as FoldRun
from rsrl_jax.engine.lane import Lane as Lane
from rsrl_jax.engine.lane import TrainingDiverged as TrainingDiverged
from rsrl_jax.engine.lane import check_finite as check_finite
from rsrl_jax.engine.lane import check_folds as check_folds
from rsrl_jax.engine.lane import epochs_of as epochs_of
from rsrl_jax.engine.lane import kept_set as kept_set
from rsrl_jax.engine.lane import open_fold as open_fold
from rsrl_jax.engine.lane import open_lane as open_lane
from rsrl_jax.engine.lane import round_signature as round_signature
from rsrl_jax.engine.lane import state_after as state_after
from rsrl_jax.engine.lane_progress import group_progress_dir as group_progress_dir
from rsrl_jax.engine.round_training import train_round as train_round  # called from here
from rsrl_jax.method import sampling
from rsrl_jax.run import checkpoints, retention, stops
from rsrl_jax.run.progress import rounds_status


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
    keeps = select_deferred(shared, lanes, params, keeps, done, label)  # rsrl.rounds raised
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
        # Confident learning's selection: out-of-sample probabilities over D (extra fits),
        # only where a round follows: after the last, its selection is left to a resume that
        # raises rsrl.rounds (`select_deferred`)
        follows = round_ < rounds
        fresh = [
            None if round_ in f.saved or not follows else p
            for f, p in zip(lanes, params, strict=True)
        ]
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
        if follows:  # a lane's round saved as its run's last before a kill
            keeps = select_deferred(shared, lanes, params, keeps, round_, label)
        checkpoints.clear_progress(progress_mngr)
        for f in lanes:  # once every lane of the group has saved the round
            retention.prune(f.config.checkpoint.keep, f, round_)
    for f in lanes:
        f.mngr.close()
    checkpoints.close_progress(progress_mngr)
    return [r for f in lanes for r in f.records]


def select_deferred(shared, lanes: list[Lane], params: list, keeps: list, round_: int, label):
    """`keeps` with each None (a lane whose round `round_` was saved as its run's last, its
    selection left undone: `evaluation.finish_round`) replaced by that selection, made from
    the cross-fit of its network `params[i]` (`evaluation.deferred_selection`): a resume
    that raised `rsrl.rounds`. The copies' keys and data order are a function of (seed,
    fold, round, part), so the selection is the one the round would have made then."""
    missing = [p if k is None else None for p, k in zip(params, keeps, strict=True)]
    if all(p is None for p in missing):
        return keeps
    probs = cross_fit.out_of_sample(shared, lanes, missing, round_, label)
    return [
        evaluation.deferred_selection(f.exp, f, round_, probs[i]) if k is None else k
        for i, (f, k) in enumerate(zip(lanes, keeps, strict=True))
    ]


def start_state(exp, params: list):
    """The lane axis's train state for a round: a fresh optimizer state on each lane's network
    `params[i]`, stacked, replicated (one program, so that each lane's momentum is not also
    made on its own before the stack copies it)."""
    return exp.lane_placer(len(params)).replicate(_start_state(exp.tx, params))


@functools.partial(jax.jit, static_argnums=0)
def _start_state(tx, params: list):
    return fold_axis.stack([train.new_state(p, tx) for p in params])
