"""The RSRL round loop (paper section III) over the folds of the protocol.

Round 1 fine-tunes the initial network on the whole training set D. Round i >= 2 scores
every sample of the ORIGINAL D with net_{i-1}, keeps the minority samples and the majority
samples whose likelihood for their own class reaches K, and fine-tunes net_{i-1} on them
with a fresh optimizer state. The chosen round is the best on validation macro F; test
figures are recorded for every round but never used for choosing.

A run survives a kill: the same command on the same workdir resumes from the last round
checkpoint or mid-round checkpoint and ends with the same metrics and parameters as an
uninterrupted run. A run is tied to its data (`data/identity.py`): a resume takes its splits
from the run's record of its photos, by key, and stops before any work if the photos differ.
"""

import dataclasses
import json
import math
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from rsrl_jax import errors
from rsrl_jax.analysis import fold_stats, highlight, metrics, report
from rsrl_jax.config import result_changing_fields, validate
from rsrl_jax.data import datasets, identity, splits
from rsrl_jax.engine import fold_parallel, train
from rsrl_jax.method import losses, sampling, selection
from rsrl_jax.models import pretrained
from rsrl_jax.run import checkpoints
from rsrl_jax.run.progress import Progress, images_left, rounds_status
from rsrl_jax.run.scalars import ScalarWriter


def likelihoods(logits: np.ndarray, kind: str) -> np.ndarray:
    """Per-class likelihoods of the logits: the paper's sigmoid membership, or softmax."""
    if kind == "sigmoid":
        return np.asarray(jax.nn.sigmoid(logits))
    if kind == "softmax":
        return np.asarray(jax.nn.softmax(logits, axis=-1))
    raise ValueError(f"unknown likelihood {kind!r}")


def score_counts(labels: np.ndarray, class_scores) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(class_scores))
    return {str(s): int(n) for s, n in zip(class_scores, counts, strict=True)}


def write_atomic(path: str, text: str) -> None:
    """Write a whole file or nothing: a kill mid-write leaves the old file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclasses.dataclass
class Fold:
    """One fold of the protocol as the round loop runs it: its split, its majority classes
    and thresholds, the loss's class arrays of its D, its round checkpoints and scalars."""

    index: int
    split: splits.Split
    majority: np.ndarray
    thresholds: np.ndarray
    per_class: dict
    mngr: Any  # orbax CheckpointManager of the fold's rounds
    writer: ScalarWriter

    def close(self) -> None:
        self.writer.close()
        self.mngr.close()


class TrainingDiverged(errors.DataError, FloatingPointError):
    """A NaN or Inf loss or gradient stopped training; the checkpoints hold the last good state
    (a run error the user can act on: lower the learning rate or check the photos, resume)."""


class Experiment:
    """What every fold shares: the data, the network, the compiled steps, the mesh."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str, devices=None):
        """`devices`: the mesh's devices, default every device of every process."""
        self.config = config
        self.workdir = workdir
        self.is_writer = jax.process_index() == 0
        self.data = datasets.load(config, workdir)
        datasets.check_classes(self.data, config)
        self.mesh = train.make_mesh(devices)
        self.placer = train.BatchPlacer(self.mesh)
        self.model = train.make_model(config, self.data.num_classes)
        self.tx = train.make_optimizer(config)
        self.train_step = train.make_train_step(
            self.model,
            self.tx,
            config.train.flip,
            config.data.image_size,
            config.train.random_crop,
            self.mesh,
            loss=config.method.loss,
            focal_gamma=config.method.focal_gamma,
        )
        self.eval_step = train.make_eval_step(self.model, config.data.image_size, self.mesh)
        self.keep_mask = jax.jit(selection.keep_mask)

    def logits(self, params, indices: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        if len(indices) == 0:
            return np.zeros((0, self.data.num_classes), np.float32)
        return train.predict_logits(
            self.eval_step,
            params,
            self.data.images,
            indices,
            self.config.train.eval_batch_size,
            self.placer,
            progress,
        )

    def report(self, logits: np.ndarray, indices: np.ndarray) -> dict:
        return metrics.classification_report(
            self.data.labels[indices],
            np.argmax(logits, axis=-1),
            self.data.num_classes,
            class_names=self.data.class_scores,
        )

    def abstract_params(self):
        """Shapes, dtypes and (replicated) shardings of the parameters, for restoring."""
        size = self.config.data.image_size
        shapes = jax.eval_shape(
            lambda: self.model.init(jax.random.key(0), np.zeros((1, size, size, 3), np.float32))
        )["params"]
        return jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.placer.replicated),
            shapes,
        )

    def epochs_of(self, round_: int) -> int:
        if round_ == 1 and self.config.train.first_round_epochs > 0:
            return self.config.train.first_round_epochs
        return self.config.train.epochs_per_round

    def check_finite(self, sums: dict, fold: int, round_: int) -> None:
        bad = int(sums["first_bad_step"])
        if bad != train.NO_BAD_STEP:
            raise TrainingDiverged(
                f"fold {fold} round {round_} step {bad + 1}: the loss or a gradient is NaN or "
                "Inf, so training stopped (that step's update was not applied). The checkpoints "
                f"under {checkpoints.fold_dir(self.workdir, fold)} hold the last good state; "
                "lower train.learning_rate or check the photos, then run the same command to "
                "resume."
            )

    def train_round(self, fold, round_, state, kept, writer, progress_mngr, per_class, epoch_size):
        """Trains round `round_` over the samples `kept`; returns (state, last epoch stats).

        Each epoch trains on `epoch_size` samples drawn from `kept` (`sampling.epoch_order`);
        `per_class` holds the loss's class arrays. Resumes from the fold's mid-round
        checkpoint when it belongs to this round. The data order of every epoch is drawn from
        (seed, fold, round) and the step keys from the step counter, so a resumed round
        replays exactly the batches it had left.
        """
        config = self.config
        epochs, batch_size = self.epochs_of(round_), config.train.batch_size
        steps_per_epoch = math.ceil(epoch_size / batch_size)
        every = config.checkpoint.every_steps
        order_rng = np.random.default_rng([config.seed, fold, round_])
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), fold), round_)
        template = {"state": state, "sums": self.placer.replicate(train.zero_sums())}
        start_epoch, start_batch, sums = 1, 0, None
        saved = checkpoints.restore_progress(progress_mngr, template)
        if saved is not None and saved[1]["round"] == round_:
            state, sums = saved[0]["state"], saved[0]["sums"]
            start_epoch, start_batch = saved[1]["epoch"], saved[1]["batch"]
            logging.info(
                "fold %d round %d: resuming at epoch %d batch %d (%d of the epoch's %d "
                "batches done)",
                fold,
                round_,
                start_epoch,
                start_batch,
                start_batch,
                steps_per_epoch,
            )
        remaining = images_left(epochs, epoch_size, batch_size, start_epoch, start_batch)
        progress = Progress(
            f"fold {fold} round {round_} training", remaining, "img", config.log.progress
        )
        images, labels = self.data.images, self.data.labels
        epochs_before = sum(self.epochs_of(r) for r in range(1, round_))
        stats = {}
        for epoch in range(1, epochs + 1):
            order = sampling.epoch_order(  # drawn every epoch, skipped or not
                order_rng, kept, labels[kept], epoch_size, config.method.sampling
            )
            if epoch < start_epoch:
                continue
            if sums is None:
                sums = self.placer.replicate(train.zero_sums())
            for b, (batch, mask) in enumerate(train.padded_batches(order, batch_size)):
                if epoch == start_epoch and b < start_batch:
                    continue
                x, y, m = self.placer.shard(images[batch], labels[batch], mask)
                state, sums = self.train_step(state, sums, x, y, m, key, per_class)
                progress.update(int(mask.sum()), f"epoch {epoch}/{epochs}")
                step = (epoch - 1) * steps_per_epoch + b + 1
                if every and step % every == 0 and step < epochs * steps_per_epoch:
                    self.check_finite(jax.device_get(sums), fold, round_)
                    checkpoints.save_progress(
                        progress_mngr,
                        step,
                        {"state": state, "sums": sums},
                        {"fold": fold, "round": round_, "epoch": epoch, "batch": b + 1},
                    )
            host = jax.device_get(sums)  # one host sync per epoch
            sums = None
            self.check_finite(host, fold, round_)
            stats = {
                "loss": float(host["loss_sum"] / host["count"]),
                "accuracy": float(host["correct"] / host["count"]),
            }
            writer.scalars(
                epochs_before + epoch,
                {"train/epoch_loss": stats["loss"], "train/epoch_accuracy": stats["accuracy"]},
            )
            if config.log.progress:
                logging.info(
                    "fold %d round %d epoch %d/%d: loss %.4f acc %.3f | %s",
                    fold,
                    round_,
                    epoch,
                    epochs,
                    stats["loss"],
                    stats["accuracy"],
                    progress.line(),
                )
        return state, stats

    def select(self, fold, round_, d_logits, split, majority, thresholds) -> np.ndarray:
        """The samples of D round `round_ + 1` trains on (paper eqs. 1-3), logged by class if
        that round will run (`select_quietly`, `log_selection`)."""
        keep, warnings = self.select_quietly(fold, round_, d_logits, split, majority, thresholds)
        self.log_selection(fold, round_ + 1, keep, warnings)
        return keep

    def select_quietly(
        self, fold, round_, d_logits, split, majority, thresholds
    ) -> tuple[np.ndarray, list[str]]:
        """(keep mask over D, warnings) of the selection for round `round_ + 1`, unlogged.

        The warnings name each majority class the rule (eqs. 1-3) emptied or cut below
        `rsrl.min_keep_per_class`. A baseline `method.selection` ('none', 'hardness') takes
        its own rule instead, without warnings.
        """
        config, data = self.config, self.data
        d_labels = data.labels[split.train]
        if config.method.selection != "rsrl":
            keep = sampling.baseline_keep(
                config.method.selection,
                d_logits,
                d_labels,
                data.num_classes,
                config.method.hardness_target,
            )
            return keep, []
        lik = likelihoods(d_logits, config.rsrl.likelihood)
        keep = np.asarray(self.keep_mask(lik, d_labels, majority, thresholds))
        own = lik[np.arange(len(d_labels)), d_labels]
        min_keep = config.rsrl.min_keep_per_class
        topped = selection.keep_at_least(keep, own, d_labels, majority, min_keep)
        warnings = []
        for c in majority:
            n, kept = int(np.sum(d_labels == c)), int(np.sum(keep[d_labels == c]))
            if kept < min(min_keep, n) or kept == 0:
                warnings.append(
                    f"fold {fold} round {round_ + 1}: selection keeps {kept} of {n} samples of "
                    f"score {data.class_scores[c]}; rsrl.min_keep_per_class={min_keep} makes "
                    f"it {int(np.sum(topped[d_labels == c]))}"
                )
        return topped, warnings

    def log_selection(self, fold: int, round_: int, keep: np.ndarray, warnings: list[str]):
        """Logs the `warnings` of the selection `keep` for round `round_`, and a kept set
        smaller than one batch, only if that round will run (`round_ <= rsrl.rounds`)."""
        if round_ > self.config.rsrl.rounds:
            return
        for warning in warnings:
            logging.warning("%s", warning)
        batch_size = self.config.train.batch_size
        if 0 < keep.sum() < batch_size:
            logging.warning(
                "fold %d round %d: only %d samples kept, fewer than one batch (%d); the batch "
                "is padded",
                fold,
                round_,
                int(keep.sum()),
                batch_size,
            )

    def open_fold(self, fold: int, split: splits.Split) -> Fold:
        """One fold's majority classes, loss class arrays, round checkpoints and scalars."""
        config, data = self.config, self.data
        d_labels = data.labels[split.train]
        majority = selection.majority_classes(d_labels, data.num_classes, config.rsrl.num_majority)
        thresholds = np.asarray(config.rsrl.thresholds[: len(majority)], np.float32)
        d_counts = np.bincount(d_labels, minlength=data.num_classes)
        logging.info(
            "fold %d: |D|=%d val=%d test=%d; majority scores %s with K=%s",
            fold,
            len(split.train),
            len(split.val),
            len(split.test),
            [data.class_scores[c] for c in majority],
            list(config.rsrl.thresholds[: len(majority)]),
        )
        return Fold(
            index=fold,
            split=split,
            majority=majority,
            thresholds=thresholds,
            per_class=self.placer.replicate(losses.class_arrays(d_counts, config.method)),
            mngr=checkpoints.manager(self.workdir, fold),
            writer=ScalarWriter(self.workdir, fold),
        )

    def state_after(self, f: Fold, round_: int):
        """(params, keep mask over D) after round `round_` of fold `f`; round 0 = the start.

        The recorded selection for round `round_ + 1` is logged if that round will run (a
        resumed run, or one whose rsrl.rounds was raised).
        """
        if round_ == 0:
            params = pretrained.initial_params(self.config, self.model, self.config.seed + f.index)
            return self.placer.replicate(params), np.ones(len(f.split.train), bool)
        params, meta = checkpoints.restore_round(f.mngr, round_, self.abstract_params())
        keep = np.asarray(meta["next_keep"], bool)
        self.log_selection(f.index, round_ + 1, keep, meta.get("selection_warnings", []))
        return params, keep

    def kept_set(self, f: Fold, round_: int, keep: np.ndarray) -> np.ndarray:
        """The indices round `round_` trains on; an empty selection stops the run."""
        kept = f.split.train[keep]
        if len(kept) == 0:
            raise errors.DataError(
                f"fold {f.index} round {round_}: the selection kept no sample; set "
                "rsrl.min_keep_per_class > 0 to keep the most likely samples of each class"
            )
        return kept

    def epoch_size(self, f: Fold, kept: np.ndarray) -> int:
        return sampling.samples_per_epoch(
            self.config.train.epoch_samples, len(kept), len(f.split.train)
        )

    def run_fold(self, fold: int, split: splits.Split) -> list[dict]:
        """All rounds of one fold, resumed from its checkpoints; returns the fold's records."""
        f = self.open_fold(fold, split)
        progress_mngr = checkpoints.progress_manager(self.workdir, fold)
        records = checkpoints.round_records(f.mngr)
        last = records[-1]["round"] if records else 0
        if last:
            logging.info("fold %d: %s", fold, rounds_status(last, self.config.rsrl.rounds))
        params, keep = self.state_after(f, last)
        for round_ in range(last + 1, self.config.rsrl.rounds + 1):
            kept = self.kept_set(f, round_, keep)
            t0 = time.perf_counter()
            # A fresh optimizer state each round, placed as the step returns it (one compile).
            state = self.placer.replicate(train.new_state(params, self.tx))
            epoch_size = self.epoch_size(f, kept)
            state, train_stats = self.train_round(
                fold, round_, state, kept, f.writer, progress_mngr, f.per_class, epoch_size
            )
            params = state.params
            record, keep = self.finish_round(
                f, round_, params, keep, train_stats, epoch_size, time.perf_counter() - t0
            )
            checkpoints.clear_progress(progress_mngr)
            records.append(record)
        f.close()
        checkpoints.close_progress(progress_mngr)
        return records

    def finish_round(
        self, f: Fold, round_, params, keep, train_stats, epoch_size, train_s: float
    ) -> tuple[dict, np.ndarray]:
        """Evaluates a trained round, selects the next round's set, saves, records and logs it.

        One pass over D serves both the train metrics and the next round's selection. Returns
        the round's metrics record and the next round's keep mask over D.
        """
        config, data, fold, split = self.config, self.data, f.index, f.split
        kept = split.train[keep]
        start = time.perf_counter()
        total = len(split.train) + len(split.val) + len(split.test)
        progress = Progress(
            f"fold {fold} round {round_} likelihoods and evaluation",
            total,
            "img",
            config.log.progress,
        )
        d_logits = self.logits(params, split.train, progress)
        val_logits = self.logits(params, split.val, progress)
        test_logits = self.logits(params, split.test, progress)
        eval_s = time.perf_counter() - start
        record = {
            "fold": fold,
            "round": round_,
            "train_size": int(len(kept)),
            "class_counts": score_counts(data.labels[kept], data.class_scores),
            "train": self.report(d_logits, split.train),
            "train_kept": self.report(d_logits[keep], kept),
            "val": self.report(val_logits, split.val),
            "test": self.report(test_logits, split.test),
            "train_loss": train_stats["loss"],
            "epochs": self.epochs_of(round_),
            "steps": self.epochs_of(round_) * math.ceil(epoch_size / config.train.batch_size),
        }
        # Selected even after the last round: a resume that raises rsrl.rounds trains on it.
        next_keep, warnings = self.select_quietly(
            fold, round_, d_logits, split, f.majority, f.thresholds
        )
        meta = {
            "record": record,
            "next_keep": next_keep.astype(int).tolist(),
            "selection_warnings": warnings,  # logged when their round runs
            "class_scores": list(data.class_scores),
        }
        checkpoints.save_round(f.mngr, round_, params, meta)
        self.append_record(record)
        self.log_round(record, f.writer, train_s, eval_s)
        self.log_selection(fold, round_ + 1, next_keep, warnings)
        return record, next_keep

    def log_round(self, record: dict, writer: ScalarWriter, train_s: float, eval_s: float):
        fold, round_ = record["fold"], record["round"]
        logging.info(
            "fold %d round %d/%d: trained on %d (%s) | val macro F %.3f acc %.3f | "
            "test macro F %.3f acc %.3f | train %.1fs eval %.1fs",
            fold,
            round_,
            self.config.rsrl.rounds,
            record["train_size"],
            record["class_counts"],
            record["val"]["macro_f1"],
            record["val"]["accuracy"],
            record["test"]["macro_f1"],
            record["test"]["accuracy"],
            train_s,
            eval_s,
        )
        values = {
            "round/train_size": record["train_size"],
            "round/train_loss": record["train_loss"],
        }
        for part in ("train", "train_kept", "val", "test"):
            for name in ("macro_f1", "accuracy", "balanced_accuracy"):
                values[f"{part}/{name}"] = record[part][name]
        writer.scalars(round_, values)
        if self.is_writer:
            with open(os.path.join(self.workdir, "timings.jsonl"), "a") as f:
                line = {
                    "fold": fold,
                    "round": round_,
                    "train_s": round(train_s, 3),
                    "eval_s": round(eval_s, 3),
                }
                f.write(json.dumps(line) + "\n")

    def append_record(self, record: dict) -> None:
        if not self.is_writer:
            return
        with open(os.path.join(self.workdir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


# Fields that decide how the photos are split: under resume=force the recorded splits stay.
SPLIT_FIELDS = (
    "seed",
    "protocol.folds",
    "protocol.val_fraction",
    "protocol.test_fraction",
    "data.ava_official_split",
)


def start_or_resume(
    config: ml_collections.ConfigDict, workdir: str, data: datasets.Dataset, write: bool = True
) -> list[splits.Split]:
    """Records the config, classes and data of a new run, or checks them against a resumed one.

    Returns the run's splits (every fold of the protocol): drawn from the seed for a new run,
    and for a resumed one taken from its data record (`data_identity.npz`) by photo key,
    never drawn again, after checking that `data` are the run's photos with their scores and
    contents (`identity.resume`: changed data stop the run here, before any work, naming
    what changed). A resumed run's metrics.jsonl is rebuilt from its round checkpoints, the
    record of truth, so a line lost or half-written by a kill is restored and a line never
    follows a checkpoint that does not exist. Every process of a multi-process run checks (so
    all stop alike) before any writes; only the one with `write` writes.
    """
    config_path = os.path.join(workdir, "config.json")
    classes = {"class_scores": list(data.class_scores)}
    record = None  # the data identity to write, if it is new or changed
    if os.path.exists(config_path):
        with open(config_path) as f:
            recorded = json.load(f)
        changed = result_changing_fields(recorded, config.to_dict())
        force = config.resume == "force"
        if changed and not force:
            raise errors.ConfigError(
                f"{workdir} holds a run with another config; resuming it would change its "
                f"results. Differing fields: {'; '.join(changed)}. Use another --workdir, or "
                "--config.resume=force to resume with the new values."
            )
        if changed:
            logging.warning(
                "resume=force: what is left of the run uses the changed fields: %s",
                "; ".join(changed),
            )
        resplit = [c for c in changed if c.split(":")[0] in SPLIT_FIELDS]
        if resplit:
            logging.warning(
                "resume=force: the run keeps its recorded splits; %s does not split it again",
                "; ".join(resplit),
            )
        fold_splits, record = identity.resume(workdir, data, force)
        if fold_splits is None:
            logging.warning(
                "%s has no record of its data (%s; a run of an older version): its splits are "
                "drawn from the seed as then, and recorded now",
                workdir,
                identity.IDENTITY_FILE,
            )
            fold_splits = splits.protocol_splits(  # with the run's own protocol and seed
                data.labels,
                ml_collections.ConfigDict(recorded["protocol"]),
                int(recorded["seed"]),
                data.official_test,
            )
            record = identity.of(data, fold_splits)
        with open(os.path.join(workdir, "classes.json")) as f:
            recorded_classes = json.load(f)["class_scores"]
        if recorded_classes != classes["class_scores"]:
            raise errors.DataError(
                f"{workdir} was run on scores {recorded_classes}, the data now has "
                f"{classes['class_scores']}: cannot resume"
            )
        logging.info("reusing the run recorded in %s", workdir)
    else:
        fold_splits = splits.protocol_splits(
            data.labels, config.protocol, config.seed, data.official_test
        )
        record = identity.of(data, fold_splits)
    if jax.process_count() > 1:  # every process has read the workdir before one writes it
        multihost_utils.sync_global_devices("rsrl_jax: workdir checked")
    if not write:
        return fold_splits
    os.makedirs(workdir, exist_ok=True)
    if record is not None:  # first: a workdir with a config.json has its data record
        identity.save(workdir, record)
    write_atomic(config_path, config.to_json(indent=2))
    write_atomic(os.path.join(workdir, "classes.json"), json.dumps(classes, indent=2))
    records = []
    fold = 0
    while os.path.isdir(checkpoints.fold_dir(workdir, fold)):
        mngr = checkpoints.manager(workdir, fold, read_only=True)
        records += checkpoints.round_records(mngr)
        mngr.close()
        fold += 1
    write_atomic(
        os.path.join(workdir, "metrics.jsonl"), "".join(json.dumps(r) + "\n" for r in records)
    )
    return fold_splits


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs (or resumes) the whole experiment in `workdir`; returns the summary."""
    validate(config)
    start = time.perf_counter()
    experiment = Experiment(config, workdir)
    data = experiment.data
    fold_splits = start_or_resume(config, workdir, data, write=experiment.is_writer)
    logging.info(
        "data %s: %d photos, scores %s, counts %s; %d device(s)",
        config.data.name,
        len(data),
        data.class_scores,
        score_counts(data.labels, data.class_scores),
        experiment.mesh.size,
    )
    if config.protocol.max_folds > 0:
        fold_splits = fold_splits[: config.protocol.max_folds]
    for warning in splits.protocol_warnings(
        data.labels, data.class_scores, config.protocol, fold_splits, data.official_test
    ):
        logging.warning("%s", warning)
    if config.protocol.parallel_folds:
        records = fold_parallel.FoldParallel(experiment).run(fold_splits)
    else:
        records = []
        for fold, split in enumerate(fold_splits):
            records += experiment.run_fold(fold, split)
    summary = fold_stats.summarize(records)
    for s in summary["folds"]:
        logging.info(
            "fold %d: chosen round %d (val macro F %.3f, test macro F %.3f); round 1: val %.3f "
            "test %.3f",
            s["fold"],
            s["chosen_round"],
            s["val_macro_f1"],
            s["test_macro_f1"],
            s["round1_val_macro_f1"],
            s["round1_test_macro_f1"],
        )
    if experiment.is_writer:
        write_atomic(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=2))
        highlight.write_run_panels(experiment, fold_splits)  # report/highlights_fold{F}.png
        report.write_report(workdir, records)
    logging.info(
        "done in %.0fs; metrics in %s, report in %s",
        time.perf_counter() - start,
        os.path.join(workdir, "metrics.jsonl"),
        os.path.join(workdir, "report", "report.md"),
    )
    return summary
