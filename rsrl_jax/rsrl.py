"""The RSRL round loop (paper section III) over the folds of the protocol.

Round 1 fine-tunes the initial network on the whole training set D. Round i >= 2 scores
every sample of the ORIGINAL D with net_{i-1}, keeps the minority samples and the majority
samples whose likelihood for their own class reaches K, and fine-tunes net_{i-1} on them
with a fresh optimizer state. The chosen round is the best on validation macro F; test
figures are recorded for every round but never used for choosing.
"""

import json
import os
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from rsrl_jax import checkpoints, metrics, selection, train
from rsrl_jax.config import validate
from rsrl_jax.data import datasets, splits


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


class Experiment:
    """What every fold shares: the data, the network, the compiled steps, the mesh."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str):
        self.config = config
        self.workdir = workdir
        self.data = datasets.load(config)
        if config.rsrl.num_majority >= self.data.num_classes:
            raise ValueError(
                f"config.rsrl.num_majority={config.rsrl.num_majority}: must be below the number "
                f"of classes in the data ({self.data.num_classes}: scores {self.data.class_scores})"
            )
        self.mesh = train.make_mesh()
        if (
            config.train.batch_size % self.mesh.size
            or config.train.eval_batch_size % self.mesh.size
        ):
            raise ValueError(
                f"config.train.batch_size={config.train.batch_size} and eval_batch_size="
                f"{config.train.eval_batch_size} must be divisible by the {self.mesh.size} devices"
            )
        self.placer = train.BatchPlacer(self.mesh)
        self.model = train.make_model(config, self.data.num_classes)
        self.tx = train.make_optimizer(config)
        self.train_step = train.make_train_step(self.model, self.tx, config.train.flip)
        self.eval_step = train.make_eval_step(self.model)

    def logits(self, params, indices: np.ndarray) -> np.ndarray:
        if len(indices) == 0:
            return np.zeros((0, self.data.num_classes), np.float32)
        return train.predict_logits(
            self.eval_step,
            params,
            self.data.images,
            indices,
            self.config.train.eval_batch_size,
            self.placer,
        )

    def report(self, logits: np.ndarray, indices: np.ndarray) -> dict:
        return metrics.classification_report(
            self.data.labels[indices],
            np.argmax(logits, axis=-1),
            self.data.num_classes,
            class_names=self.data.class_scores,
        )

    def train_round(self, state, kept: np.ndarray, epochs: int, fold: int, round_: int):
        """Trains `epochs` epochs over the samples `kept`; returns (state, last epoch stats)."""
        config = self.config
        order_rng = np.random.default_rng([config.seed, fold, round_])
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), fold), round_)
        images, labels = self.data.images, self.data.labels
        start = time.perf_counter()
        stats = {}
        for epoch in range(1, epochs + 1):
            sums = None
            for batch, mask in train.padded_batches(
                order_rng.permutation(kept), config.train.batch_size
            ):
                x, y, m = self.placer.shard(images[batch], labels[batch], mask)
                state, step_metrics = self.train_step(state, x, y, m, key)
                sums = (
                    step_metrics
                    if sums is None
                    else jax.tree.map(lambda a, b: a + b, sums, step_metrics)
                )
            sums = jax.device_get(sums)  # one host sync per epoch
            elapsed = time.perf_counter() - start
            stats = {
                "loss": float(sums["loss_sum"] / sums["count"]),
                "accuracy": float(sums["correct"] / sums["count"]),
            }
            if config.log.progress:
                rate = epoch * len(kept) / elapsed
                eta = (epochs - epoch) * elapsed / epoch
                logging.info(
                    "fold %d round %d epoch %d/%d: loss %.4f acc %.3f | %.0f img/s, ETA %.0fs",
                    fold,
                    round_,
                    epoch,
                    epochs,
                    stats["loss"],
                    stats["accuracy"],
                    rate,
                    eta,
                )
        return state, stats

    def run_fold(self, fold: int, split: splits.Split) -> list[dict]:
        config, data = self.config, self.data
        d_labels = data.labels[split.train]
        majority = selection.majority_classes(d_labels, data.num_classes, config.rsrl.num_majority)
        thresholds = np.asarray(config.rsrl.thresholds[: len(majority)], np.float32)
        logging.info(
            "fold %d: |D|=%d val=%d test=%d; majority scores %s with K=%s",
            fold,
            len(split.train),
            len(split.val),
            len(split.test),
            [data.class_scores[c] for c in majority],
            thresholds.tolist(),
        )
        params = self.placer.replicate(
            train.init_params(self.model, config.data.image_size, config.seed + fold)
        )
        mngr = checkpoints.manager(self.workdir, fold)
        keep = np.ones(len(split.train), bool)
        records = []
        for round_ in range(1, config.rsrl.rounds + 1):
            kept = split.train[keep]
            if len(kept) == 0:
                raise RuntimeError(f"fold {fold} round {round_}: selection kept no sample")
            epochs = config.train.epochs_per_round
            if round_ == 1 and config.train.first_round_epochs > 0:
                epochs = config.train.first_round_epochs
            t0 = time.perf_counter()
            state = train.new_state(params, self.tx)  # fresh optimizer state each round
            state, train_stats = self.train_round(state, kept, epochs, fold, round_)
            params = state.params
            t1 = time.perf_counter()
            # One pass over D serves both the train metrics and the next round's selection.
            d_logits = self.logits(params, split.train)
            val_logits = self.logits(params, split.val)
            test_logits = self.logits(params, split.test)
            t2 = time.perf_counter()
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
                "epochs": epochs,
                "seconds": {"train": round(t1 - t0, 3), "eval": round(t2 - t1, 3)},
            }
            checkpoints.save_round(
                mngr,
                round_,
                params,
                {
                    "fold": fold,
                    "round": round_,
                    "train_size": int(len(kept)),
                    "class_scores": list(data.class_scores),
                },
            )
            self.append_record(record)
            records.append(record)
            logging.info(
                "fold %d round %d/%d: trained on %d (%s) | val macro F %.3f acc %.3f | "
                "test macro F %.3f acc %.3f | train %.1fs eval %.1fs",
                fold,
                round_,
                config.rsrl.rounds,
                len(kept),
                record["class_counts"],
                record["val"]["macro_f1"],
                record["val"]["accuracy"],
                record["test"]["macro_f1"],
                record["test"]["accuracy"],
                t1 - t0,
                t2 - t1,
            )
            lik = likelihoods(d_logits, config.rsrl.likelihood)
            keep = np.asarray(selection.keep_mask(lik, d_labels, majority, thresholds))
        mngr.close()
        return records

    def append_record(self, record: dict) -> None:
        with open(os.path.join(self.workdir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def choose_round(records: list[dict], split: str = "val") -> dict:
    """The round with the best macro F on `split` (earliest on ties)."""
    return max(records, key=lambda r: (r[split]["macro_f1"], -r["round"]))


def summarize(records: list[dict]) -> dict:
    """Per fold: the chosen round (on validation) and, for contrast, the paper's choice on test."""
    folds = []
    for fold in sorted({r["fold"] for r in records}):
        rs = [r for r in records if r["fold"] == fold]
        chosen, on_test = choose_round(rs, "val"), choose_round(rs, "test")
        folds.append(
            {
                "fold": fold,
                "chosen_round": chosen["round"],
                "val_macro_f1": chosen["val"]["macro_f1"],
                "test_macro_f1": chosen["test"]["macro_f1"],
                "test_accuracy": chosen["test"]["accuracy"],
                "round1_val_macro_f1": rs[0]["val"]["macro_f1"],
                "round1_test_macro_f1": rs[0]["test"]["macro_f1"],
                "round_chosen_on_test": on_test["round"],
                "test_macro_f1_chosen_on_test": on_test["test"]["macro_f1"],
            }
        )
    return {"folds": folds}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs the whole experiment into `workdir`; returns the summary."""
    validate(config)
    if os.path.exists(os.path.join(workdir, "metrics.jsonl")):
        raise FileExistsError(
            f"{workdir} already holds a run (metrics.jsonl); choose another --workdir or remove it"
        )
    start = time.perf_counter()
    experiment = Experiment(config, workdir)
    data = experiment.data
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json(indent=2))
    with open(os.path.join(workdir, "classes.json"), "w") as f:
        json.dump(
            {
                "class_scores": list(data.class_scores),
                "counts": score_counts(data.labels, data.class_scores),
            },
            f,
            indent=2,
        )
    logging.info(
        "data %s: %d photos, scores %s, counts %s; %d device(s)",
        config.data.name,
        len(data),
        data.class_scores,
        score_counts(data.labels, data.class_scores),
        experiment.mesh.size,
    )
    fold_splits = splits.fold_splits(
        data.labels,
        config.protocol.folds,
        config.protocol.val_fraction,
        config.protocol.test_fraction,
        config.seed,
    )
    if config.protocol.max_folds > 0:
        fold_splits = fold_splits[: config.protocol.max_folds]
    records = []
    for fold, split in enumerate(fold_splits):
        records += experiment.run_fold(fold, split)
    summary = summarize(records)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
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
    logging.info(
        "done in %.0fs; metrics in %s", summary["seconds"], os.path.join(workdir, "metrics.jsonl")
    )
    return summary
