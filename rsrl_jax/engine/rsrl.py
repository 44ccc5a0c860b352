"""An RSRL experiment (paper section III) over the folds of the protocol: `run(config, workdir)`.

Round 1 fine-tunes the initial network on the whole training set D. Round i >= 2 scores
every sample of the ORIGINAL D with net_{i-1}, keeps the minority samples and the majority
samples whose likelihood for their own class reaches K, and fine-tunes net_{i-1} on them
with a fresh optimizer state. The chosen round is the best on validation macro F; test
figures are recorded for every round but never used for choosing.

`Experiment` is a run's context (its config, data, recorder) with what its lanes' groups
share (mesh, network, optimizer, compiled steps); `run_lanes` trains many runs as lanes of
one program (`study`, `compare`), `run` one run; `rsrl_jax.engine.rounds` is the round loop;
`rsrl_jax.engine.evaluation` ends each round; `rsrl_jax.run` holds the workdir's files.

A run survives a kill: the same command on the same workdir resumes from the last round
checkpoint or mid-round checkpoint and ends with the same metrics and parameters as an
uninterrupted run. A run is tied to its data (`rsrl_jax.data.identity`).

`Experiment` lives in `experiment.py`, the grouping of lanes and its sizing in `lane_groups.py`.
"""

import contextlib
import dataclasses
import os
import shutil
import time

import ml_collections
import numpy as np
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.analysis import highlight, report
from rsrl_jax.config import validate
from rsrl_jax.data import datasets, duplicates, inputs, splits
from rsrl_jax.engine import lane_groups, rounds
from rsrl_jax.engine.evaluation import score_counts

# A run's Experiment and the grouping of lanes live in experiment.py and lane_groups.py;
# their names stay importable from here.
from rsrl_jax.engine.experiment import Experiment as Experiment
from rsrl_jax.engine.lane_groups import PROTOCOL_FOLDS as PROTOCOL_FOLDS
from rsrl_jax.engine.lane_groups import group_key as group_key
from rsrl_jax.engine.lane_groups import images_id as images_id
from rsrl_jax.engine.lane_groups import lane_bytes as lane_bytes
from rsrl_jax.engine.lane_groups import lanes_that_fit as lanes_that_fit
from rsrl_jax.engine.lane_groups import memory_budget as memory_budget
from rsrl_jax.metrics import fold_stats
from rsrl_jax.run import completeness, resume, stops, workdir_lock
from rsrl_jax.run.recorder import Recorder


def run(config: ml_collections.ConfigDict, workdir: str, data=None) -> dict:
    """Runs (or resumes) the whole experiment in `workdir`; returns the summary.

    `data`: the data set already loaded (`datasets.load(config)`), else loaded here. The run
    holds the workdir's lock throughout (`workdir_lock`): another writer there is refused.
    A run is `run_lanes` of one run: its folds are its lanes, all in one group with
    `protocol.parallel_folds`, else one group per fold (one after the other). A finished run
    (`resume.finished_run`: nothing to train, every file there) is a reader: it takes no lock
    and writes nothing, so it reruns on a read-only workdir too, and beside a writer (a
    forced resume) it only reads whole rounds.
    """
    (summary,) = run_lanes([(config, workdir)], lanes=PROTOCOL_FOLDS, data=[data])
    return summary


def run_lanes(
    runs, lanes: int | None = None, share: bool = True, data=None, reports: bool = True
) -> list[dict]:
    """Runs (or resumes) the runs `runs` ([(config, workdir)]) as lanes; returns each run's
    summary, in order.

    A lane is one fold of one run. Lanes of runs that share the photos (or vectors), the
    network, the optimizer, the batch and the rounds (`group_key`) are packed into groups of
    at most `lanes` (None or 0: as many as fit in memory, `lanes_that_fit`; 1: one lane at a
    time, each run's folds one after the other), each group trained as one compiled program
    (`rounds.run_lanes`); each lane keeps its own labels, method, seed, selection, loss
    terms, sampling, epochs, records and checkpoints, in its run's workdir exactly as a
    single run writes them. `share`: lanes whose rounds train alike train once
    (`rounds.round_signature`), a network's evaluation passes are made once. `data`: each
    run's data set already loaded (None entries: loaded here). Every run's workdir is
    locked throughout (`workdir_lock`). `reports`: each run draws its report (figures,
    highlight panels); False leaves them to `python -m rsrl_jax.report` (a study's runs:
    drawing them cost more than training the lanes).
    """
    runs = [(config, os.fspath(workdir)) for config, workdir in runs]
    where = [os.path.abspath(w) for _, w in runs]
    for i, w in enumerate(where):
        if w in where[:i]:
            raise errors.ConfigError(f"{runs[i][1]}: two runs of one call write this workdir")
    if lanes != PROTOCOL_FOLDS:
        check_lanes(lanes)
    for config, _ in runs:
        validate(config)
    # an interruption or a full disk names the run's folder (the runs' common one)
    stops.writing(runs[0][1] if len(runs) == 1 else os.path.commonpath(where))
    with contextlib.ExitStack() as held:
        readers = []
        for config, workdir in runs:
            readers.append(resume.finished_run(config, workdir, report=reports))
            if not readers[-1]:
                held.enter_context(workdir_lock.hold(workdir))
            elif not os.access(workdir, os.W_OK):
                logging.warning(
                    "%s cannot be written: its finished run is read without its lock", workdir
                )
        return _run_lanes(runs, lanes, share, data or [None] * len(runs), readers, reports)


def check_lanes(lanes) -> None:
    """ConfigError naming --lanes unless it is None or an integer >= 0."""
    if lanes is None:
        return
    if isinstance(lanes, bool) or not isinstance(lanes, int | np.integer) or lanes < 0:
        raise errors.ConfigError(
            f"--lanes: {lanes!r} is not an integer >= 0; 0 (or none) packs as many lanes as "
            "fit in memory, 1 trains one at a time"
        )


@dataclasses.dataclass
class _Run:
    exp: Experiment
    fold_splits: list
    recorded: int
    start: float
    finished: bool  # every round of every fold saved: nothing to train
    reader: bool = False  # a finished run rerun: takes no lock, writes nothing


def _run_lanes(
    runs, lanes, share: bool, data: list, readers: list[bool], reports: bool = True
) -> list[dict]:
    prepared, shared, images = [], {}, {}
    for (config, workdir), given, reader in zip(runs, data, readers, strict=True):
        run_ = _prepare(config, workdir, given, shared, images, reader)
        prepared.append(run_)
    for group in lane_groups.groups(prepared, lanes):
        lanes_ = [
            rounds.open_lane(prepared[r].exp, f, prepared[r].fold_splits[f]) for r, f in group
        ]
        directory, label = lane_groups.progress_place(prepared, group, lanes_)
        rounds.run_lanes(lanes_, directory, label, share=share)
    for run_ in prepared:  # every lane trained: no group's mid-round state is needed
        if run_.exp.recorder.is_writer:
            shutil.rmtree(workdir_files.WorkdirFiles(run_.exp.workdir).lanes_in_progress, True)
    return [_finish(run_, reports) for run_ in prepared]


def _prepare(config, workdir: str, data, shared: dict, images: dict, reader: bool) -> _Run:
    """A run started or resumed (`resume.start_or_resume`); its Experiment shares the compiled
    parts of an earlier run of its group (`group_key`) and the photos of an earlier run with
    the same ones. `reader`: a finished run, whose recorder writes nothing."""
    start = time.perf_counter()
    resume.check_config(config, workdir)  # before the data: a changed config stops at once
    if data is None:
        data = datasets.load(config, check_listing=resume.listing_check(config, workdir))
    same = images_id(data)
    if same in images:  # one copy of the photos for every run that has them
        data = dataclasses.replace(data, images=images[same])
    images.setdefault(same, data.images)
    key = group_key(config, data)
    exp = Experiment.build(config, workdir, data=data, shared=shared.get(key))
    shared.setdefault(key, exp)
    if reader:  # writes nothing: every file it would write holds what it would write
        exp = dataclasses.replace(exp, recorder=Recorder(workdir, is_writer=False))
    fold_splits = resume.start_or_resume(config, exp.recorder, data, config_checked=True)
    if config.data.on_bad_example == "skip":
        exp.recorder.write_skipped(list(data.skipped))
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
    records = resume.recorded_records(workdir)
    last = {}
    for r in records:
        last[r["fold"]] = max(last.get(r["fold"], 0), r["round"])
    finished = all(last.get(f, 0) >= config.rsrl.rounds for f in range(len(fold_splits)))
    return _Run(exp, fold_splits, len(records), start, finished, reader)


def _finish(run_: _Run, reports: bool = True) -> dict:
    """A run's summary.json and report (unless not `reports`), once all its lanes are
    trained."""
    exp, fold_splits, recorded, start = run_.exp, run_.fold_splits, run_.recorded, run_.start
    reader = run_.reader
    config, workdir, data = exp.config, exp.workdir, exp.data
    # Every fold's records, also those of folds this run left out (protocol.max_folds): the
    # summary and the report tell what the workdir holds, as metrics.jsonl does.
    records = resume.recorded_records(workdir)
    report_file = exp.recorder.files.report
    drawn = os.path.exists(report_file)
    redraw = len(records) > recorded or (reports and not drawn)
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
    exp.recorder.write_summary(summary)
    if (reader or exp.recorder.is_writer) and not redraw and not drawn:  # a study's, again
        logging.info("no round left to train (python -m rsrl_jax.report --workdir=%s)", workdir)
    elif (reader or exp.recorder.is_writer) and not redraw:  # a finished run run again
        logging.info(
            "no round left to train: the report in %s stands (python -m rsrl_jax.report "
            "--workdir=%s rebuilds it)",
            report_file,
            workdir,
        )
    elif exp.recorder.is_writer and not reports:
        logging.info("report not drawn: python -m rsrl_jax.report --workdir=%s draws it", workdir)
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
        "done in %.0fs; metrics in %s, %s",
        time.perf_counter() - start,
        exp.recorder.files.metrics,
        f"report in {report_file}" if os.path.exists(report_file) else "no report drawn",
    )
    return summary
