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

Over 300 lines, not yet split (issue 32, item 4): the seam is a run's Experiment and `run`
vs grouping lanes and sizing groups to memory (group_key, lanes_that_fit).
"""

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from rsrl_jax import compiler, errors, workdir_files
from rsrl_jax.analysis import highlight, report
from rsrl_jax.config import check_classes, validate
from rsrl_jax.data import datasets, duplicates, inputs, splits
from rsrl_jax.engine import fold_axis, placement, rounds, train
from rsrl_jax.engine.evaluation import score_counts
from rsrl_jax.metrics import fold_stats
from rsrl_jax.run import completeness, contract, resume, stops, workdir_lock
from rsrl_jax.run.recorder import Recorder


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A run's config, data, recorder and contract, and what the lanes of its group share:
    the mesh, the network and its input, the optimizer and the compiled steps. Build it with
    `Experiment.build` (`shared=`: another run of the group's compiled parts)."""

    config: ml_collections.ConfigDict
    workdir: str
    recorder: Recorder
    data: datasets.Dataset
    mesh: jax.sharding.Mesh
    placer: placement.BatchPlacer  # batches [B, ...] (evaluation)
    model: object
    view: object  # the network's input: photos or feature vectors (`data.inputs.network_input`)
    tx: object
    train_step: object
    eval_step: object
    train_options: dict | None  # the train steps' XLA options (None: the backend's default)
    contract: contract.Contract  # saved with every round: the network's use without the run

    @classmethod
    def build(
        cls, config: ml_collections.ConfigDict, workdir: str, devices=None, data=None, shared=None
    ):
        """Loads the data (unless given) and compiles nothing yet; `devices`: the mesh's,
        default all. `shared`: an Experiment of the same group (`group_key`) whose mesh,
        network, optimizer and steps this one reuses (lanes of one compiled program).

        A resumed run's list of photos is checked against its record before any photo is
        decoded; skipped.jsonl is written by `run` once the workdir is known to be its own.
        """
        recorder = Recorder(workdir)
        if data is None:
            data = datasets.load(config, check_listing=resume.listing_check(config, workdir))
        check_classes(data, config)
        if shared is not None:
            return dataclasses.replace(
                shared,
                config=config,
                workdir=workdir,
                recorder=recorder,
                data=data,
                contract=contract.model_contract(config, data.class_scores),
            )
        mesh = placement.make_mesh(devices)
        model = train.make_model(config, data.num_classes)
        view = inputs.network_input(config, data.images.shape[-1])  # D, for feature vectors
        tx = train.make_optimizer(config)
        dense = config.model.name in train.FEATURE_MODELS  # a head of dense layers only
        train_options = compiler.default_compiler_options("dense_train" if dense else "train")
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
            model=model,
            view=view,
            tx=tx,
            train_step=train_step,
            eval_step=eval_step,
            train_options=train_options,
            contract=contract.model_contract(config, data.class_scores),
        )

    def in_workdir(self, workdir: str) -> "Experiment":
        """The same data and compiled steps, writing into another workdir."""
        return dataclasses.replace(self, workdir=workdir, recorder=Recorder(workdir))

    def fold_step(self, k: int):
        """The train step over a lane axis of length `k` (`fold_axis.make_fold_step`), on the
        group's `placement.lane_mesh`."""
        mesh = placement.lane_mesh(self.mesh, k)
        return _fold_step(self.train_step, mesh, k, _frozen(self.train_options))

    def lane_placer(self, k: int) -> placement.LanePlacer:
        """Places the batches and stacked trees of a group of `k` lanes (`fold_step(k)`'s)."""
        return placement.LanePlacer(placement.lane_mesh(self.mesh, k))

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
    A run is `run_lanes` of one run: its folds are its lanes, all in one group with
    `protocol.parallel_folds`, else one group per fold (one after the other). A finished run
    (`resume.finished_run`: nothing to train, every file there) is a reader: it takes no lock
    and writes nothing, so it reruns on a read-only workdir too, and beside a writer (a
    forced resume) it only reads whole rounds.
    """
    (summary,) = run_lanes([(config, workdir)], lanes=PROTOCOL_FOLDS, data=[data])
    return summary


# `run_lanes(lanes=PROTOCOL_FOLDS)`: each run's folds as `protocol.parallel_folds` says
PROTOCOL_FOLDS = "protocol.parallel_folds"


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
    for group in _groups(prepared, lanes):
        lanes_ = [
            rounds.open_lane(prepared[r].exp, f, prepared[r].fold_splits[f]) for r, f in group
        ]
        directory, label = _progress_place(prepared, group, lanes_)
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


# Fields a lane may have of its own (`group_key`): what it trains on and how, not the
# program's shapes or the network's.
LANE_SECTIONS = ("method", "rsrl", "log", "checkpoint", "protocol")
LANE_FIELDS = (
    "seed",
    "resume",
    "data.label_noise",
    "train.epochs_per_round",
    "train.first_round_epochs",
    "train.epoch_samples",
)


def group_key(config: ml_collections.ConfigDict, data) -> str:
    """What the lanes of one group share: the config without the fields a lane has of its
    own (`LANE_SECTIONS`, `LANE_FIELDS`; `rsrl.rounds` is shared) and the photos themselves
    (`images_id`: synthetic photos differ by seed, embeddings do not)."""
    fields = json.loads(config.to_json())
    rounds_ = fields["rsrl"]["rounds"]
    for section in LANE_SECTIONS:
        fields.pop(section, None)
    for name in LANE_FIELDS:
        *path, last = name.split(".")
        node = fields
        for part in path:
            node = node.get(part, {})
        node.pop(last, None)
    fields["rounds"] = rounds_
    return json.dumps(fields, sort_keys=True) + images_id(data)


def images_id(data) -> str:
    """The identity of a data set's photos (or vectors): their content, in order."""
    digest = hashlib.sha256(f"{data.images.shape}{data.images.dtype}".encode())
    if data.fingerprints is not None:
        digest.update("\n".join(map(str, data.fingerprints)).encode())
    else:
        digest.update(np.ascontiguousarray(data.images).tobytes())
    return digest.hexdigest()


def _groups(prepared: list[_Run], lanes) -> list[list[tuple[int, int]]]:
    """The groups of lanes ((run, fold)) to train, each one compiled program. Lanes of one
    seed and fold on the same labels sit side by side, so that those that train alike
    (`rounds.round_signature`) share a group."""
    if lanes == PROTOCOL_FOLDS:  # rsrl.run: its folds as protocol.parallel_folds says
        (run_,) = prepared
        folds = list(range(len(run_.fold_splits)))
        if run_.exp.config.protocol.parallel_folds:
            return [[(0, f) for f in folds]]
        return [[(0, f)] for f in folds]
    by_key, groups = {}, []
    for r, run_ in enumerate(prepared):
        key = group_key(run_.exp.config, run_.exp.data)
        for f in range(len(run_.fold_splits)):
            if run_.finished:  # alone: only its checkpoints' retention is left to do
                groups.append([(r, f)])
            else:
                by_key.setdefault(key, []).append((r, f))
    for members in by_key.values():

        def order(lane):
            run_ = prepared[lane[0]]
            labels = hashlib.sha256(run_.exp.data.labels.tobytes()).hexdigest()
            return labels, run_.exp.config.seed, lane[1], lane[0]

        members.sort(key=order)
        size = lanes or lanes_that_fit(prepared[members[0][0]].exp)
        groups += [members[i : i + size] for i in range(0, len(members), size)]
    return groups


def _progress_place(prepared, group, lanes_) -> tuple[str, str]:
    """(the folder of the group's mid-round state, its name in the log): a lane alone keeps
    its fold's `in_progress/`, all folds of one run `folds_in_progress/` (as a run of
    parallel folds), other groups `lanes_in_progress/<group id>/` in the first lane's run."""
    runs = {r for r, _ in group}
    if len(group) == 1:
        lane = lanes_[0]
        return workdir_files.WorkdirFiles(lane.exp.workdir).in_progress(
            lane.index
        ), f"fold {lane.index}"
    if len(runs) == 1 and len(group) == len(prepared[group[0][0]].fold_splits):
        return workdir_files.WorkdirFiles(lanes_[0].exp.workdir).folds_in_progress, "folds"
    return rounds.group_progress_dir(lanes_), f"{len(group)} lanes of {len(runs)} run(s)"


def lane_bytes(exp: Experiment) -> int:
    """Memory a lane takes in a group's step (an estimate): its parameters, their gradients
    and the optimizer's moments (Adam 2, SGD 1), and the activations of its batch (the
    network's layer outputs for one input, times the batch, kept for the backward pass and
    their gradients: x 2)."""
    params = exp.abstract_params()
    param_bytes = sum(p.size * p.dtype.itemsize for p in jax.tree.leaves(params))
    moments = 2 if exp.config.train.optimizer == "adam" else 1
    example = inputs.as_input(exp.view).example()

    def forward(params, x):
        _, state = exp.model.apply(
            train.variables(params), x, capture_intermediates=True, mutable=["intermediates"]
        )
        return state

    try:
        shapes = jax.eval_shape(forward, params, example)
        act = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(shapes))
    except Exception:  # noqa: BLE001 an estimate: a network that cannot say counts its input
        act = example.size * 4
    return int(param_bytes * (2 + moments) + 2 * act * exp.config.train.batch_size)


def memory_budget() -> int:
    """Bytes the lanes of a group may take: half of the first device's memory where it says
    (GPU, TPU), else a quarter of the host's RAM (CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"]) // 2
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def lanes_that_fit(exp: Experiment) -> int:
    """How many lanes of `exp`'s group one step holds: `memory_budget` / `lane_bytes`, at
    least 1, and a multiple of the mesh's lane axis when more than it."""
    each = lane_bytes(exp)
    fit = max(1, memory_budget() // max(1, each))
    devices = exp.mesh.size
    if fit > devices:  # whole shares of the lane axis (`placement.lane_mesh`)
        fit -= fit % devices
    logging.info("lanes: up to %d a group (%d bytes a lane, estimated)", fit, each)
    return fit


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
        "done in %.0fs; metrics in %s, report in %s",
        time.perf_counter() - start,
        exp.recorder.files.metrics,
        report_file,
    )
    return summary
