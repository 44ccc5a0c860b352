"""An RSRL experiment (paper section III) over the folds of the protocol: `run(config, workdir)`.

Round 1 fine-tunes the initial network on the whole training set D. Round i >= 2 scores
every sample of the ORIGINAL D with net_{i-1}, keeps the minority samples and the majority
samples whose likelihood for their own class reaches K, and fine-tunes net_{i-1} on them
with a fresh optimizer state. The chosen round is the best on validation macro F; test
figures are recorded for every round but never used for choosing.

`Experiment` is what every fold shares, built once from the config (data, mesh, network,
optimizer, compiled steps, the run's recorder); `rsrl_jax.engine.rounds` is the round loop;
`rsrl_jax.engine.evaluation` ends each round; `rsrl_jax.run` holds the workdir's files.

A run survives a kill: the same command on the same workdir resumes from the last round
checkpoint or mid-round checkpoint and ends with the same metrics and parameters as an
uninterrupted run. A run is tied to its data (`rsrl_jax.data.identity`).
"""

import dataclasses
import functools
import os
import time

import jax
import ml_collections
from absl import logging

from rsrl_jax.analysis import fold_stats, highlight, report
from rsrl_jax.config import validate
from rsrl_jax.data import builders, datasets, duplicates, inputs, splits
from rsrl_jax.engine import compiler, fold_axis, placement, rounds, train
from rsrl_jax.engine.evaluation import score_counts
from rsrl_jax.run import completeness, contract, resume, stops, workdir_lock
from rsrl_jax.run.recorder import Recorder


@dataclasses.dataclass(frozen=True)
class Experiment:
    """What every fold shares: the config, the data, the mesh, the network and its input, the
    optimizer, the compiled steps and the recorder of the workdir. Build it with
    `Experiment.build`."""

    config: ml_collections.ConfigDict
    workdir: str
    recorder: Recorder
    data: datasets.Dataset
    mesh: jax.sharding.Mesh
    placer: placement.BatchPlacer  # batches [B, ...] (evaluation)
    fold_placer: placement.BatchPlacer  # batches [k, B, ...] (training, a fold axis first)
    model: object
    view: object  # the network's input: photos or feature vectors (`data.inputs.of`)
    tx: object
    train_step: object
    eval_step: object
    train_options: dict | None  # the train steps' XLA options (None: the backend's default)
    contract: contract.Contract  # saved with every round: the network's use without the run

    @classmethod
    def build(cls, config: ml_collections.ConfigDict, workdir: str, devices=None, data=None):
        """Loads the data (unless given) and compiles nothing yet; `devices`: the mesh's,
        default all.

        A resumed run's list of photos is checked against its record before any photo is
        decoded; skipped.jsonl is written by `run` once the workdir is known to be its own.
        """
        recorder = Recorder(workdir)
        if data is None:
            data = datasets.load(config, check_listing=resume.listing_check(config, workdir))
        datasets.check_classes(data, config)
        mesh = placement.make_mesh(devices)
        model = train.make_model(config, data.num_classes)
        view = inputs.of(config, data.images.shape[-1])  # D, for feature vectors
        tx = train.make_optimizer(config)
        train_options = compiler.default_compiler_options("train")
        train_step, eval_step = train.make_steps(
            config, model, tx, mesh, view=view, train_options=train_options
        )
        return cls(
            config=config,
            workdir=workdir,
            recorder=recorder,
            data=data,
            mesh=mesh,
            placer=placement.BatchPlacer(mesh),
            fold_placer=placement.BatchPlacer(mesh, batch_axis=1),
            model=model,
            view=view,
            tx=tx,
            train_step=train_step,
            eval_step=eval_step,
            train_options=train_options,
            contract=contract.of(config, data.class_scores),
        )

    def in_workdir(self, workdir: str) -> "Experiment":
        """The same data and compiled steps, writing into another workdir."""
        return dataclasses.replace(self, workdir=workdir, recorder=Recorder(workdir))

    def fold_step(self, k: int):
        """The train step over a fold axis of length `k` (`fold_axis.make_fold_step`)."""
        return _fold_step(self.train_step, self.mesh, k, _frozen(self.train_options))

    def abstract_params(self):
        """Shapes, dtypes and (replicated) shardings of the parameters, for restoring."""
        return train.abstract_params(self.model, self.view, self.placer.replicated)

    def run_folds(self, fold_splits, parallel: bool | None = None) -> list[dict]:
        """All rounds of the folds `fold_splits` (a list, fold i = entry i, or {fold: split});
        one after the other, or all at once when `parallel` (default
        `protocol.parallel_folds`). Returns the records, fold by fold."""
        if not isinstance(fold_splits, dict):
            fold_splits = dict(enumerate(fold_splits))
        if self.config.protocol.parallel_folds if parallel is None else parallel:
            return rounds.run_group(self, fold_splits, parallel=True)
        return [
            r
            for fold, split in fold_splits.items()
            for r in rounds.run_group(self, {fold: split}, parallel=False)
        ]


def _frozen(options: dict | None):
    return None if options is None else tuple(sorted(options.items()))


@functools.cache
def _fold_step(train_step, mesh, k: int, options: tuple | None):
    """One compiled fold step per (train step, k) for the whole process (cached)."""
    return fold_axis.make_fold_step(train_step, mesh, k, {} if options is None else dict(options))


def run(config: ml_collections.ConfigDict, workdir: str, data=None) -> dict:
    """Runs (or resumes) the whole experiment in `workdir`; returns the summary.

    `data`: the data set already loaded (`datasets.load(config)`), else loaded here. The run
    holds the workdir's lock throughout (`workdir_lock`): another writer there is refused.
    A finished run (`resume.finished_run`: nothing to train, every file there) is a reader:
    it takes no lock and writes nothing, so it reruns on a read-only workdir too, and
    beside a writer (a forced resume) it only reads whole rounds.
    """
    validate(config)
    stops.writing(workdir)  # an interruption or a full disk names it
    if resume.finished_run(config, workdir):
        if not os.access(workdir, os.W_OK):
            logging.warning(
                "%s cannot be written: its finished run is read without its lock", workdir
            )
        return _run(config, workdir, data, reader=True)
    with workdir_lock.hold(workdir):
        return _run(config, workdir, data)


def _run(config: ml_collections.ConfigDict, workdir: str, data, reader: bool = False) -> dict:
    start = time.perf_counter()
    resume.check_config(config, workdir)  # before the data: a changed config stops at once
    exp = Experiment.build(config, workdir, data=data)
    if reader:  # writes nothing: every file it would write holds what it would write
        exp = dataclasses.replace(exp, recorder=Recorder(workdir, is_writer=False))
    data = exp.data
    fold_splits = resume.start_or_resume(config, exp.recorder, data, config_checked=True)
    if config.data.on_bad_example == "skip":
        exp.recorder.write_skipped(list(data.skipped), builders.SKIPPED_FILE)
    duplicates.record(exp.recorder, data, fold_splits)  # copies: logged, in duplicates.json
    logging.info(
        "data %s: %d photos, scores %s, counts %s; %d device(s)",
        config.data.name,
        len(data),
        data.class_scores,
        score_counts(data.labels, data.class_scores),
        exp.mesh.size,
    )
    if config.protocol.max_folds > 0:
        fold_splits = fold_splits[: config.protocol.max_folds]
    for warning in splits.protocol_warnings(
        data.labels, data.class_scores, config.protocol, fold_splits, data.official_test
    ):
        logging.warning("%s", warning)
    recorded = len(resume.recorded_records(workdir))
    exp.run_folds(fold_splits)
    # Every fold's records, also those of folds this run left out (protocol.max_folds): the
    # summary and the report tell what the workdir holds, as metrics.jsonl does.
    records = resume.recorded_records(workdir)
    report_file = os.path.join(workdir, "report", "report.md")
    redraw = len(records) > recorded or not os.path.exists(report_file)
    summary = fold_stats.summarize(records)
    summary["completeness"] = completeness.of_workdir(workdir, records).to_json()  # partial?
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
    exp.recorder.write_json("summary.json", summary)
    if (reader or exp.recorder.is_writer) and not redraw:  # a finished run run again
        logging.info(
            "no round left to train: the report in %s stands (python -m rsrl_jax.report "
            "--workdir=%s rebuilds it)",
            report_file,
            workdir,
        )
    elif exp.recorder.is_writer:
        no_highlights = inputs.no_highlights(config)
        if no_highlights:  # the report says so too
            logging.info("highlight panels skipped: %s", no_highlights)
        else:
            highlight.write_highlight_panels(  # report/highlights_fold{F}.png
                workdir,
                data.images,
                data.labels,
                [split.test for split in fold_splits],
                config.data.image_size,
                config.train.eval_batch_size,
                config.rsrl.rounds,
            )
        report.write_report(workdir, records)
    exp.recorder.close()
    logging.info(
        "done in %.0fs; metrics in %s, report in %s",
        time.perf_counter() - start,
        os.path.join(workdir, "metrics.jsonl"),
        report_file,
    )
    return summary
