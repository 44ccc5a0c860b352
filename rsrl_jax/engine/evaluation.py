"""The end of a round: one forward pass over D, validation and test, the round's metrics
record, the next round's selection, the round checkpoint.

On synthetic data the record also says what the selection that built the round's training
set removed of each majority class, mislabelled or not (`selection_truth.selection_record`).

One pass of net_i over the ORIGINAL training set D gives both round i's train metrics and
the likelihoods of round i+1's selection (paper eqs. 1-3), so D is read once per round.
"""

import hashlib
import math
import time

import numpy as np
from absl import logging

from rsrl_jax.analysis import selection_truth
from rsrl_jax.engine import placement
from rsrl_jax.method import selection
from rsrl_jax.metrics import aesthetic, classification
from rsrl_jax.run import checkpoints
from rsrl_jax.run.progress import Progress


def score_counts(labels: np.ndarray, class_scores) -> dict[str, int]:
    """{score: how many of `labels`} over every class score."""
    counts = np.bincount(labels, minlength=len(class_scores))
    return {str(s): int(n) for s, n in zip(class_scores, counts, strict=True)}


def logits(exp, params, indices: np.ndarray, progress: Progress | None = None) -> np.ndarray:
    """Logits [len(indices), C] of the data set's photos `indices` under `params`."""
    if len(indices) == 0:
        return np.zeros((0, exp.data.num_classes), np.float32)
    return placement.predict_logits(
        exp.eval_step,
        params,
        exp.data.images,
        indices,
        exp.config.train.eval_batch_size,
        exp.placer,
        progress,
    )


class Passes:
    """The evaluation passes of one round of a group, made once per distinct network: lanes
    that trained alike (`rounds.round_signature`) hold the same network object, and their
    passes over the same photos are one pass (the photos of a group are shared)."""

    def __init__(self):
        self._done = {}
        self.made = 0  # passes made (tests count them)

    def logits(self, exp, params, indices: np.ndarray, progress=None) -> np.ndarray:
        key = (id(params), hashlib.sha256(np.asarray(indices).tobytes()).hexdigest())
        if key not in self._done:
            self._done[key] = (params, logits(exp, params, indices, progress))  # params: kept alive
            self.made += 1
        elif progress is not None:
            progress.update(len(indices))
        return self._done[key][1]


def report(data, logits_: np.ndarray, indices: np.ndarray, good_threshold: float) -> dict:
    """Figures of the photos `indices` from their `logits_` [len(indices), C]: the
    classification ones (`classification.classification_report`), then the aesthetic ones of their
    expected scores against their scores (`aesthetic.aesthetic_report`, "good" above
    `good_threshold`), then per class and the confusion matrix."""
    figures = classification.classification_report(
        data.labels[indices],
        np.argmax(logits_, axis=-1),
        data.num_classes,
        class_names=data.class_scores,
    )
    per_class = {k: figures.pop(k) for k in ("per_class", "confusion_matrix")}
    scores = np.asarray(data.class_scores)
    figures.update(
        aesthetic.aesthetic_report(
            scores[data.labels[indices]],
            aesthetic.expected_scores(logits_, scores),
            good_threshold,
        )
    )
    return {**figures, **per_class}


def log_selection(config, fold: int, round_: int, keep: np.ndarray, warnings: list[str]):
    """Logs the `warnings` of the selection `keep` for round `round_` (at most one line,
    `selection.selection_warning`: a majority class kept below one batch, its counts and the
    remedies; confident learning's: a class cleanlab may not flag fully) and, without RSRL's
    line, a kept set smaller than one batch; only if that round will run
    (`round_ <= rsrl.rounds`)."""
    if round_ > config.rsrl.rounds:
        return
    for warning in warnings:
        logging.warning("%s", warning)
    batch_size = config.train.batch_size
    told = warnings and not selection.needs_cross_fit(config.method)  # RSRL's says the sizes
    if not told and 0 < keep.sum() < batch_size:
        logging.warning(
            "fold %d round %d: only %d samples kept, fewer than one batch (%d); the batch "
            "is padded",
            fold,
            round_,
            int(keep.sum()),
            batch_size,
        )


def finish_round(
    exp,
    fold,
    round_,
    params,
    keep,
    train_stats,
    epochs,
    epoch_size,
    train_s,
    passes=None,
    pred_probs=None,
    lanes=1,
    saves=None,
):
    """Evaluates round `round_` of `fold` (a `rounds.Lane`), trained for `epochs` epochs of
    `epoch_size` samples on D[keep] in `train_s` seconds; selects the next round's set; saves
    the round checkpoint; records and logs the round. `passes`: the group's `Passes` (the
    passes of a network already evaluated are reused), or None: made here. `pred_probs`:
    out-of-sample probabilities over D [|D|, C] for confident learning's selection
    (`cross_fit.out_of_sample`; None after the run's last round), else None. `lanes`: the
    lanes of the group that trained in `train_s` (recorded in timings.jsonl). `saves`: a
    `RoundSaves` of the group: the checkpoint is saved alongside the other lanes' and the
    round recorded at its `finish`; None: saved and recorded here.

    Returns (the round's metrics record, the next round's keep mask over D: None where the
    selection needs out-of-sample probabilities and `pred_probs` is None, the run's last
    round, whose selection a resume that raises `rsrl.rounds` makes: `deferred_selection`).
    """
    config, data, split = exp.config, exp.data, fold.split
    kept = split.train[keep]
    start = time.perf_counter()
    total = len(split.train) + len(split.val) + len(split.test)
    progress = Progress(
        f"fold {fold.index} round {round_} likelihoods and evaluation",
        total,
        "img",
        config.log.progress,
    )
    forward = logits if passes is None else passes.logits
    d_logits = forward(exp, params, split.train, progress)
    val_logits = forward(exp, params, split.val, progress)
    test_logits = forward(exp, params, split.test, progress)
    eval_s = time.perf_counter() - start
    good = config.eval.good_threshold
    record = {
        "fold": fold.index,
        "round": round_,
        "train_size": int(len(kept)),
        "class_counts": score_counts(data.labels[kept], data.class_scores),
        "train": report(data, d_logits, split.train, good),  # all of D, the paper's training set
        "train_kept": report(data, d_logits[keep], kept, good),  # what this round trained on
        "val": report(data, val_logits, split.val, good),
        "test": report(data, test_logits, split.test, good),
        "train_loss": train_stats["loss"],
        "epochs": epochs,
        "steps": epochs * math.ceil(epoch_size / config.train.batch_size),
    }
    if data.true_labels is not None:  # synthetic data: what this round's selection removed
        record["selection"] = selection_truth.selection_record(
            keep,
            data.labels[split.train],
            data.true_labels[split.train],
            fold.majority,
            data.class_scores,
        )
    # Selected even after the last round: a resume that raises rsrl.rounds trains on it. A
    # selection on out-of-sample probabilities is left to that resume (`deferred_selection`):
    # its cross-fit is k extra fits, made only where a round follows.
    if pred_probs is None and selection.needs_cross_fit(config.method):
        next_keep, warnings = None, []
    else:
        next_keep, warnings = next_selection(exp, fold, round_, d_logits, pred_probs)
    meta = {
        "record": record,
        "earlier_records": fold.records,  # the fold's rounds before, should theirs be dropped
        "next_keep": None if next_keep is None else next_keep.astype(int).tolist(),
        "selection_warnings": warnings,  # logged when their round runs
        "class_scores": list(data.class_scores),
        "contract": exp.contract.to_json(),  # what predict and highlight need (run.contract)
    }
    saving = time.perf_counter()
    checkpoints.save_round(fold.mngr, round_, params, meta, wait=saves is None)
    checkpoint_s = time.perf_counter() - saving

    def recorded(wait_s: float = 0.0) -> None:  # once the checkpoint is whole
        seconds = checkpoint_s + wait_s
        exp.recorder.round_done(record, config.rsrl.rounds, train_s, eval_s, seconds, lanes)
        if next_keep is not None:
            log_selection(config, fold.index, round_ + 1, next_keep, warnings)

    if saves is None:
        recorded()
    else:
        saves.add(fold.mngr, recorded)
    return record, next_keep


def next_selection(exp, fold, round_, d_logits, pred_probs) -> tuple[np.ndarray, list[str]]:
    """(keep mask over D, warnings) of round `round_ + 1` of the lane `fold`, from round
    `round_`'s logits over D `d_logits` [|D|, C] or out-of-sample `pred_probs` [|D|, C]
    (`selection.next_training_set`)."""
    data = exp.data
    return selection.next_training_set(
        exp.config,
        d_logits,
        data.labels[fold.split.train],
        data.num_classes,
        data.class_scores,
        fold.majority,
        fold.thresholds,
        fold.index,
        round_ + 1,
        pred_probs,
    )


def deferred_selection(exp, fold, round_: int, pred_probs: np.ndarray) -> np.ndarray:
    """The keep mask over D of round `round_ + 1` of the lane `fold`, whose round `round_` was
    saved as its run's last without it (`finish_round` makes no cross-fit where no round
    follows): a resume that raised `rsrl.rounds` selects it here from the saved network's
    out-of-sample `pred_probs` [|D|, C] (`cross_fit.out_of_sample`), the same selection, and
    logs its warnings as `lane.state_after` logs a recorded one."""
    keep, warnings = next_selection(exp, fold, round_, None, pred_probs)
    log_selection(exp.config, fold.index, round_ + 1, keep, warnings)
    return keep


class RoundSaves:
    """A group's round checkpoints, saved at once (`checkpoints.save_round(wait=False)`),
    each lane's round recorded (metrics.jsonl, timings.jsonl, log) once all are whole: as a
    single run, a round is on record only after its checkpoint. Each lane's `checkpoint_s`
    is its save's start plus an equal share of the wait, so a group's lanes sum to the
    seconds the group's saves took."""

    def __init__(self):
        self._mngrs, self._record = [], []

    def add(self, mngr, record) -> None:
        self._mngrs.append(mngr)
        self._record.append(record)

    def finish(self) -> None:
        start = time.perf_counter()
        checkpoints.finish_saves(self._mngrs)
        share = (time.perf_counter() - start) / max(1, len(self._record))
        for record in self._record:
            record(share)
        self._mngrs, self._record = [], []
