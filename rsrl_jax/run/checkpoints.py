"""A run's saved rounds read back: the round chosen on validation, its records, contract and
network (`load_network`), each checked against what the run planned (`run.completeness`).
Where and how they are stored (Orbax: rounds and mid-round states) is `run.checkpoint_files`;
its names are importable from here too.
"""

import json
import os

import jax
import orbax.checkpoint as ocp
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.config import base_config
from rsrl_jax.data import inputs
from rsrl_jax.metrics import fold_stats
from rsrl_jax.models import network
from rsrl_jax.run import completeness, contract

# The checkpoints' storage lives below run.completeness; its names stay importable from here.
from rsrl_jax.run.checkpoint_files import clear_progress as clear_progress
from rsrl_jax.run.checkpoint_files import close_progress as close_progress
from rsrl_jax.run.checkpoint_files import drop_rounds as drop_rounds
from rsrl_jax.run.checkpoint_files import empty_trash as empty_trash
from rsrl_jax.run.checkpoint_files import finish_saves as finish_saves
from rsrl_jax.run.checkpoint_files import manager as manager
from rsrl_jax.run.checkpoint_files import progress_manager as progress_manager
from rsrl_jax.run.checkpoint_files import progress_manager_at as progress_manager_at
from rsrl_jax.run.checkpoint_files import progress_meta as progress_meta
from rsrl_jax.run.checkpoint_files import restore_meta as restore_meta
from rsrl_jax.run.checkpoint_files import restore_progress as restore_progress
from rsrl_jax.run.checkpoint_files import restore_round as restore_round
from rsrl_jax.run.checkpoint_files import round_records as round_records
from rsrl_jax.run.checkpoint_files import save_progress as save_progress
from rsrl_jax.run.checkpoint_files import save_round as save_round
from rsrl_jax.run.orbax_paths import orbax_path as orbax_path


def read_json(workdir: str, name: str):
    """A JSON file a run writes into its workdir (`name`: one of `workdir_files`'); a clear
    error if the run did not write it."""
    path = workdir_files.WorkdirFiles(workdir).file(name)
    if not os.path.isfile(path):
        why = completeness.no_run(workdir)
        raise errors.NotFound(why or f"{path} not found: is {workdir} the workdir of a run?")
    with open(path) as f:
        return json.load(f)


def saved_rounds(workdir: str, fold: int) -> list[int]:
    """The rounds with a checkpoint in `workdir/fold_F/`, ascending."""
    _check_fold(workdir, fold)
    mngr = manager(workdir, fold, read_only=True)
    rounds = sorted(mngr.all_steps())
    mngr.close()
    return rounds


def _check_fold(workdir: str, fold: int) -> None:
    """Every reader's first check of a --fold: the workdir, then the run's plan (a fold it
    does not have, one it has not run), then the fold's folder; never summary.json."""
    why = completeness.no_run(workdir)
    if why:
        raise errors.NotFound(why)
    found = completeness.of_workdir(workdir)
    outside = found.outside_plan(fold)
    if outside:
        raise errors.NotFound(f"{workdir}: {outside}")
    folder = workdir_files.WorkdirFiles(workdir).fold(fold)
    if not os.path.isdir(folder):
        why = found.not_run(fold)
        if why:  # planned, but not run (yet): not the same as a fold the run never had
            raise errors.NotFound(f"{workdir}: {why}")
        raise errors.NotFound(f"{folder} not found: the run has no fold {fold}")


def chosen_round(workdir: str, fold: int) -> int:
    """The round chosen on validation for `fold`: as summary.json records it, or, where the
    run wrote no summary or one that misses rounds it has since recorded (killed, still
    training, resumed with more rounds), the best on validation among the rounds that ran."""
    _check_fold(workdir, fold)
    ran = completeness.recorded(workdir)
    records = [r for r in ran if r["fold"] == fold]
    path = workdir_files.WorkdirFiles(workdir).summary
    summary = read_json(workdir, workdir_files.SUMMARY) if os.path.isfile(path) else None
    for entry in summary["folds"] if summary else []:
        covered = {e["round"] for e in summary.get("rounds", []) if fold in e["folds"]}
        if entry["fold"] == fold and covered >= {r["round"] for r in records}:
            return int(entry["chosen_round"])
    if records:
        return fold_stats.choose_round(records, "val")["round"]
    why = completeness.of_workdir(workdir, ran).not_run(fold)
    if why:
        raise errors.NotFound(f"{workdir}: {why}")
    raise errors.DataError(
        f"{workdir}: fold {fold} has no recorded round (no metrics.jsonl record, no round "
        "checkpoint): if the run is not still training, run its command again on the workdir"
    )


def _saved_shapes(mngr: ocp.CheckpointManager, round_: int):
    """The round's parameters' shapes and dtypes, from Orbax's metadata (no array is read)."""
    params = mngr.directory / f"round_{round_:02d}" / "params"
    return ocp.StandardCheckpointHandler().metadata(params).tree


def run_config(workdir: str):
    """The run's config (config.json) over `base_config()`: fields added to the code since
    the run keep their defaults."""
    config = base_config()
    config.update(read_json(workdir, workdir_files.CONFIG))
    return config


def fold_records(workdir: str, fold: int) -> list[dict]:
    """The metrics records of the fold's finished rounds, from its checkpoints."""
    mngr = manager(workdir, fold, read_only=True)
    try:
        return round_records(mngr)
    finally:
        mngr.close()


def not_run(workdir: str, fold: int, round_: int, trained: list[int]) -> str | None:
    """Why `round_` of `fold` has no checkpoint when the run plans it but has not trained it
    (`trained`: the fold's trained rounds, from its checkpoints); None otherwise."""
    ran = [{"fold": fold, "round": r} for r in trained]
    found = completeness.of_records(
        ran, completeness.read_config(workdir), completeness.planned_folds(workdir)
    )
    return found.not_run(fold, round_)


def missing_round(workdir: str, fold: int, round_: int, saved: list[int]) -> errors.DataError:
    """The error for a round without a checkpoint: one the run trained but did not keep
    (`checkpoint.keep='needed'`), or one it never had; `saved`: the fold's saved rounds."""
    outside = completeness.of_workdir(workdir).outside_plan(fold, round_)
    if outside:  # a round the run never plans: not a round missing from it
        return errors.DataError(
            f"{outside}; pick a round in that range, or leave the round out (the one "
            "chosen on validation)"
        )
    trained = [r["round"] for r in fold_records(workdir, fold)] if saved else []
    if round_ not in trained:
        why = not_run(workdir, fold, round_, trained)
        if why:  # planned, but the run has not got there
            return errors.DataError(why)
        return errors.DataError(f"fold {fold} has no checkpoint of round {round_} (saved: {saved})")
    try:
        keep = run_config(workdir).checkpoint.keep
    except (ValueError, KeyError, TypeError):  # config.json gone or unreadable
        keep = "needed"
    if keep != "needed":
        return errors.DataError(
            f"round {round_} of fold {fold} has no checkpoint though the run trained it: "
            f"not kept by an earlier part of the run with checkpoint.keep='needed' (now "
            f"{keep!r}), or removed by hand; saved rounds: {saved}"
        )
    return errors.DataError(
        f"round {round_} of fold {fold} was not kept (checkpoint.keep='needed' keeps rounds "
        f"{saved}: the chosen round, its net_(I-1) and the last); use one of those, or "
        "--config.checkpoint.keep=all for a run that keeps every round"
    )


def load_contract(mngr: ocp.CheckpointManager, workdir: str, fold: int, round_: int):
    """The model contract of a saved round (`run.contract`). A round saved by a version
    without contracts falls back on the run's config.json and classes.json (logged);
    errors.DataError when those are gone too, or when the contract cannot be used here."""
    meta = restore_meta(mngr, round_)
    where = f"round {round_} of fold {fold}"
    if "contract" in meta:
        found = contract.Contract.from_json(meta["contract"])
    else:
        logging.warning(
            "%s has no model contract (saved by an older version): its network and photo "
            "options are read from %s",
            where,
            workdir_files.WorkdirFiles(workdir).config,
        )
        try:
            config = run_config(workdir)
            classes = meta.get("class_scores")
            scores = classes or read_json(workdir, workdir_files.CLASSES)["class_scores"]
        except errors.NotFound as e:
            raise errors.DataError(
                f"{where} was saved by an older version without a model contract, and {e}; "
                "copy config.json and classes.json from the run's original workdir"
            ) from None
        found = contract.model_contract(config, scores, hash_weights=False)
    found.check(where)
    return found


def load_network(workdir: str, fold: int, round_: int):
    """Rebuilds round `round_`'s network of a finished run from the round alone.

    Returns (config, model, params, class_scores): the config of the round's model contract
    (`Contract.config`: model.* and the photo options, the rest defaults), the model
    `network.make_model` builds from it, the round's parameters on the default device, and the
    aesthetic score of each output. A round not kept is an errors.DataError saying so.
    """
    _check_fold(workdir, fold)
    mngr = manager(workdir, fold, read_only=True)
    try:
        rounds = sorted(mngr.all_steps())
        if round_ not in rounds:
            raise missing_round(workdir, fold, round_, rounds)
        found = load_contract(mngr, workdir, fold, round_)
        config = found.config()
        model = network.make_model(config, len(found.class_scores))
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        view = inputs.network_input_from_params(
            config, _saved_shapes(mngr, round_)
        )  # photos or vectors of D
        abstract = network.abstract_params(model, view, device)
        params, _ = restore_round(mngr, round_, abstract)
    finally:
        mngr.close()
    return config, model, params, found.class_scores
