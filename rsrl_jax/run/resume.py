"""A new run records what it is; a resumed run checks it is still the same run.

A workdir with a `config.json` holds a run. Resuming it with a config that would change its
results is refused (`--config.resume=force` goes on with the new values); so are data that
differ from the run's record of its photos (`rsrl_jax.data.identity`). A resumed run takes
its splits from that record, by photo key, never drawing them again.
"""

import json
import os

import jax
import ml_collections
from absl import logging
from jax.experimental import multihost_utils

from rsrl_jax import errors, workdir_files
from rsrl_jax.config import result_changing_fields
from rsrl_jax.data import identity, splits
from rsrl_jax.run.checkpoint_files import recorded_records as recorded_records
from rsrl_jax.run.recorder import Recorder

# Fields that every round's recorded figures depend on: a forced resume would report the
# rounds measured before under the new value, so none may change.
FIXED_FIELDS = ("eval.good_threshold",)
# Fields that decide how the photos are split: under resume=force the recorded splits stay.
SPLIT_FIELDS = (
    "seed",
    "protocol.folds",
    "protocol.val_fraction",
    "protocol.test_fraction",
    "data.ava_official_split",
)


def check_config(config: ml_collections.ConfigDict, workdir: str) -> dict | None:
    """The config recorded in `workdir` (None for a new run), checked against `config`:
    a change that would alter the run's results is refused unless `resume='force'`."""
    config_path = workdir_files.WorkdirFiles(workdir).config
    if not os.path.exists(config_path):
        return None
    with open(config_path) as f:
        recorded = json.load(f)
    changed = result_changing_fields(recorded, config.to_dict())
    fixed = [c for c in changed if c.split(":")[0] in FIXED_FIELDS]
    if fixed:
        raise errors.ConfigError(
            f"{workdir}: {'; '.join(fixed)} cannot change within a run, not even with "
            "resume=force: its recorded rounds were measured with the old value and would be "
            "reported under the new one. Use another --workdir."
        )
    if changed and config.resume != "force":
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
    return recorded


def listing_check(config: ml_collections.ConfigDict, workdir: str):
    """For `datasets.load`: a resumed run's list of photos checked against its record before
    any photo is decoded (`identity.check_listing`); None for a new run."""
    if not os.path.exists(workdir_files.WorkdirFiles(workdir).config):
        return None
    force = config.resume == "force"
    return lambda listing: identity.check_listing(workdir, listing, force)


def start_or_resume(
    config: ml_collections.ConfigDict, recorder: Recorder, data, config_checked: bool = False
) -> list[splits.Split]:
    """Records the config, classes and data of a new run, or checks them against a resumed one.

    Returns the run's splits (every fold of the protocol): drawn from the seed for a new run,
    and for a resumed one taken from its data record (`data_identity.npz`) by photo key,
    after checking that `data` are the run's photos with their scores and contents
    (`identity.resume`: changed data stop the run here, before any work, naming what
    changed). A resumed run's metrics.jsonl is rebuilt from its round checkpoints, the record
    of truth, so a line lost or half-written by a kill is restored and a line never follows a
    checkpoint that does not exist. Every process of a multi-process run checks (so all stop
    alike) before the recorder's process writes. `config_checked`: `check_config` ran already.
    """
    workdir, config_path = recorder.workdir, recorder.files.config
    classes = {"class_scores": list(data.class_scores)}
    record = None  # the data identity to write, if it is new or changed
    if os.path.exists(config_path):
        if config_checked:
            with open(config_path) as f:
                recorded = json.load(f)
        else:
            recorded = check_config(config, workdir)
        fold_splits, record = identity.resume(workdir, data, config.resume == "force")
        if fold_splits is None:
            logging.warning(
                "%s has no record of its data (%s; a run of an older version): its splits are "
                "drawn from the seed as then, and recorded now",
                workdir,
                workdir_files.IDENTITY,
            )
            fold_splits = splits.protocol_splits(  # with the run's own protocol and seed
                data.labels,
                ml_collections.ConfigDict(recorded["protocol"]),
                int(recorded["seed"]),
                data.official_test,
            )
            record = identity.data_identity(data, fold_splits)
        with open(recorder.files.classes) as f:
            recorded_classes = json.load(f)["class_scores"]
        if recorded_classes != classes["class_scores"]:
            raise errors.DataError(
                f"{workdir} was run on scores {recorded_classes}, the data now has "
                f"{classes['class_scores']}: cannot resume"
            )
        logging.info("reusing the run recorded in %s", workdir)
    else:
        fold_splits = splits.protocol_splits(
            data.labels, config.protocol, config.seed, data.official_test, data.groups
        )
        record = identity.data_identity(data, fold_splits)
    if jax.process_count() > 1:  # every process has read the workdir before one writes it
        multihost_utils.sync_global_devices("rsrl_jax: workdir checked")
    if not recorder.is_writer:
        return fold_splits
    os.makedirs(workdir, exist_ok=True)
    if record is not None:  # first: a workdir with a config.json has its data record
        recorder.write_identity(record)
    records = recorded_records(workdir, config.protocol.parallel_folds)
    if not (os.path.exists(config_path) and finished(records, config, len(fold_splits))):
        # A finished run's record stands: no round runs under a new log.* or checkpoint.*
        # (files already as they should be are not written: a rerun writes nothing).
        recorder.write_config(config.to_json(indent=2))
    recorder.write_classes(classes)
    recorder.reset_metrics(records)
    return fold_splits


def finished(records: list[dict], config: ml_collections.ConfigDict, folds: int) -> bool:
    """Whether `records` hold all `rsrl.rounds` of every fold this run does (of `folds`,
    at most `protocol.max_folds`)."""
    if config.protocol.max_folds > 0:
        folds = min(folds, config.protocol.max_folds)
    done = {}
    for r in records:
        done[r["fold"]] = max(done.get(r["fold"], 0), r["round"])
    return all(done.get(f, 0) >= config.rsrl.rounds for f in range(folds))


def finished_run(config: ml_collections.ConfigDict, workdir: str, report: bool = True) -> bool:
    """Whether a run of `config` in `workdir` has nothing to do: the workdir records this run
    (its config.json with no result-changing difference, its data record), every round of
    every fold it does is checkpointed, and its metrics.jsonl, summary.json and report are
    there, metrics.jsonl as its checkpoints say. Such a run is a reader: it takes no lock
    and writes nothing (`engine.rsrl.run`). Read before any lock: a writer there (a forced
    resume) renames finished rounds into place whole, so a reader sees a state that was.
    `report`: whether the run draws its report (False: a study's run, whose report is drawn
    on demand, is finished without one)."""
    files = workdir_files.WorkdirFiles(workdir)
    config_path, metrics_path = files.config, files.metrics
    needed = (config_path, files.identity, files.classes, metrics_path, files.summary)
    if report:
        needed += (files.report,)
    if not all(os.path.isfile(p) for p in needed):
        return False
    try:
        with open(config_path) as f:
            recorded = json.load(f)
        if result_changing_fields(recorded, config.to_dict()):
            return False
        if recorded.get("checkpoint") != config.checkpoint.to_dict():
            return False  # checkpoint.keep may delete rounds: a writer's work
        folds = identity.fold_count(workdir)
        records = recorded_records(workdir, config.protocol.parallel_folds)
        with open(metrics_path) as f:
            metrics = f.read()
    except (OSError, ValueError):
        return False  # the run itself says what is wrong, under its lock
    # In either order: a run's folds trained one after the other write fold by fold, as
    # lanes of one group (or parallel folds) round by round.
    lines = sorted(json.dumps(r) + "\n" for r in records)
    if sorted(metrics.splitlines(keepends=True)) != lines:
        return False  # restored by the run (`start_or_resume`)
    return folds > 0 and finished(records, config, folds)
