"""Every record a run writes into its workdir, and the one rule of who writes them.

Only process 0 of a multi-process run writes (`Recorder.is_writer`); the others compute the
same figures and write nothing. The paths are `rsrl_jax.workdir_files`' (`Recorder.files`).

The records (docs/outputs.md): `config.json`, `classes.json`, `data_identity.npz`,
`skipped.jsonl`, `duplicates.json` (`data.duplicates.record` through `write_json`),
`metrics.jsonl` (one record per fold and round, the results), `timings.jsonl` (seconds per
fold and round, kept apart so that runs compare byte for byte), `tensorboard/fold_F/`
(scalars) and `summary.json`. Log lines of a round and of an epoch are written here too, next
to the files that carry the same figures. Outside this class: Orbax checkpoints, which every
process joins (`rsrl_jax.run.checkpoints`), the lock (`run.workdir_lock`), `log.txt` (the
command's console) and `report/` (`analysis.report`, also written by a reader elsewhere).
"""

import json
import os
import sys

import jax
from absl import logging

from rsrl_jax import workdir_files
from rsrl_jax.data import builders, identity
from rsrl_jax.files import write_atomic
from rsrl_jax.metrics import aesthetic
from rsrl_jax.run import stops


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def summary_writer():
    """tensorboardX's SummaryWriter class, imported without torch.

    tensorboardX imports torch at import time when it is installed (only to accept torch
    tensors: 1-30 s, and memory, for a run that writes float scalars); the import is made with
    torch hidden from it, and torch left importable for anything else in the process.
    """
    hidden = "torch" not in sys.modules
    if hidden:
        sys.modules["torch"] = None  # `import torch` raises ImportError, which it catches
    try:
        from tensorboardX import SummaryWriter  # a writer-only dependency
    finally:
        if hidden:
            del sys.modules["torch"]
    return SummaryWriter


class Recorder:
    """Writes a run's files into `workdir` when this process is the writer (process 0).

    `is_writer` defaults to `jax.process_index() == 0`. TensorBoard writers (tensorboardX,
    imported only when a scalar is written) are opened per fold on first use.
    """

    def __init__(self, workdir: str, is_writer: bool | None = None):
        self.workdir = workdir
        self.files = workdir_files.WorkdirFiles(workdir)
        self.is_writer = jax.process_index() == 0 if is_writer is None else is_writer
        self._tensorboard = {}

    def path(self, name: str) -> str:
        return self.files.file(name)

    def write_json(self, name: str, value) -> None:
        """`workdir/name` as indented JSON, atomically."""
        if self.is_writer:
            os.makedirs(self.workdir, exist_ok=True)
            write_atomic(self.path(name), json.dumps(value, indent=2))

    def write_text(self, name: str, text: str) -> None:
        if self.is_writer:
            os.makedirs(self.workdir, exist_ok=True)
            write_atomic(self.path(name), text)

    def write_config(self, config_json: str) -> None:
        self.write_text(workdir_files.CONFIG, config_json)

    def write_classes(self, classes: dict) -> None:
        self.write_json(workdir_files.CLASSES, classes)

    def write_identity(self, record: identity.Identity) -> None:
        """The run's data record (`data.identity`): its photos and folds, for a resume."""
        if self.is_writer:
            os.makedirs(self.workdir, exist_ok=True)
            identity.save(self.workdir, record)

    def write_duplicates(self, report: dict) -> None:
        """The copies and near-duplicates of the run's data (`data.duplicates.record`)."""
        self.write_json(workdir_files.DUPLICATES, report)

    def write_summary(self, summary: dict) -> None:
        self.write_json(workdir_files.SUMMARY, summary)

    def write_skipped(self, skipped: list[dict]) -> None:
        """The items a skip-mode run left out, one JSON line each (`data.on_bad_example`)."""
        if self.is_writer:
            path = builders.write_skipped(self.workdir, skipped)
            logging.info("%d skipped item(s) listed in %s", len(skipped), path)

    def reset_metrics(self, records: list[dict]) -> None:
        """metrics.jsonl holds exactly `records` (a resumed run's, from its checkpoints)."""
        self.write_text(workdir_files.METRICS, "".join(json.dumps(r) + "\n" for r in records))

    def _append(self, name: str, line: dict, sync: bool = False) -> None:
        """One whole line or none: a failed write (a full disk) is cut back to the lines
        before it, and a signal waits for the line's end (`stops.deferred`)."""
        if not self.is_writer:
            return
        data = memoryview((json.dumps(line) + "\n").encode())
        with stops.deferred(), open(self.path(name), "ab", buffering=0) as f:
            size = f.seek(0, os.SEEK_END)
            try:
                while data:  # unbuffered: nothing is left to flush after a failure
                    data = data[f.write(data) :]
                if sync:  # the results: on disk before the next round starts
                    os.fsync(f.fileno())
            except OSError:
                f.truncate(size)
                raise

    def scalars(self, fold: int, step: int, values: dict[str, float]) -> None:
        """TensorBoard scalars of one fold: `workdir/tensorboard/fold_F/`."""
        if not self.is_writer:
            return
        writer = self._tensorboard.get(fold)
        if writer is None:
            writer = summary_writer()(self.files.tensorboard(fold))
            self._tensorboard[fold] = writer
            stops.on_leave(self.close)  # its queued events are written before a stop ends
        for tag, value in values.items():
            writer.add_scalar(tag, value, step)
        writer.flush()

    def epoch_done(
        self,
        label: str,
        round_: int,
        epoch: int,
        epochs: int,
        stats: dict,
        step: int,
        progress_line: str | None,
    ) -> None:
        """An epoch of a round of the folds in `stats` ({fold: {loss, accuracy}}): their
        TensorBoard scalars at `step` (epochs since the run began), and one log line unless
        `progress_line` is None (`log.progress=False`)."""
        for fold, s in stats.items():
            values = {"train/epoch_loss": s["loss"], "train/epoch_accuracy": s["accuracy"]}
            self.scalars(fold, step, values)
        if progress_line is None:
            return
        if len(stats) == 1:
            (s,) = stats.values()
            figures = f"loss {s['loss']:.4f} acc {s['accuracy']:.3f}"
        else:
            figures = "loss by fold " + " ".join(f"{s['loss']:.4f}" for s in stats.values())
        logging.info(
            "%s round %d epoch %d/%d: %s | %s", label, round_, epoch, epochs, figures, progress_line
        )

    def round_done(
        self,
        record: dict,
        rounds: int,
        train_s: float,
        eval_s: float,
        checkpoint_s: float,
        lanes: int = 1,
    ) -> None:
        """A finished round of one fold: its line in metrics.jsonl and timings.jsonl (the
        seconds of its training, of its passes over D, validation and test, and of its round
        checkpoint's write), its TensorBoard scalars and its log line. `lanes`: how many
        lanes trained in those `train_s` seconds (each lane's record has them whole: a split
        of a group's time sums train_s / lanes)."""
        fold, round_ = record["fold"], record["round"]
        self._append(workdir_files.METRICS, record, sync=True)
        timing = {"fold": fold, "round": round_, "train_s": round(train_s, 3), "lanes": lanes}
        seconds = {"eval_s": round(eval_s, 3), "checkpoint_s": round(checkpoint_s, 3)}
        self._append(workdir_files.TIMINGS, {**timing, **seconds})
        values = {
            "round/train_size": record["train_size"],
            "round/train_loss": record["train_loss"],
        }
        for part in ("train", "train_kept", "val", "test"):
            for name in ("macro_f1", "accuracy", "balanced_accuracy"):
                values[f"{part}/{name}"] = record[part][name]
            for name, value in aesthetic.figures(record[part]).items():
                if value is not None:  # an undefined correlation has no point
                    values[f"{part}/{name}"] = value
        self.scalars(fold, round_, values)
        test = aesthetic.figures(record["test"])
        logging.info(
            "fold %d round %d/%d: trained on %d (%s) | val macro F %.3f acc %.3f | "
            "test macro F %.3f acc %.3f SRCC %s PLCC %s | train %.1fs eval %.1fs",
            fold,
            round_,
            rounds,
            record["train_size"],
            record["class_counts"],
            record["val"]["macro_f1"],
            record["val"]["accuracy"],
            record["test"]["macro_f1"],
            record["test"]["accuracy"],
            _figure(test["srcc"]),
            _figure(test["plcc"]),
            train_s,
            eval_s,
        )

    def close(self) -> None:
        for writer in self._tensorboard.values():
            writer.close()
        self._tensorboard.clear()
