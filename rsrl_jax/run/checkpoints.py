"""Orbax checkpoints of a run: one per (fold, round), plus the latest mid-round state.

`workdir/fold_F/round_RR/` holds round RR's parameters and a JSON record: the round's
metrics line and those of the fold's earlier rounds (`earlier_records`: kept when their
checkpoints are dropped), the selection for the next round, and the round's model contract
(`run.contract`), so predict and highlight rebuild the network from the round alone and a
resumed run rebuilds metrics.jsonl. `workdir/fold_F/in_progress/step_S/` holds the training
state of the round in progress (parameters, optimizer state, the epoch's metric sums) and
where the data order stood.

Orbax writes each checkpoint into a temporary folder and renames it when complete, so a
kill during a save leaves the previous checkpoints as they were. A dropped round
(`checkpoint.keep='needed'`, `run.retention`) is renamed into `fold_F/.dropped/` (one atomic
rename; Orbax lists no step there) and removed from there, so a kill during a deletion
leaves every round whole or absent; what is left in `.dropped/` goes at the next deletion.

Any folder name works: Orbax and TensorStore get a path that none of them parses
(`orbax_path`), never the user's own when it holds other characters than letters, digits and
`._-+/`.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid

import jax
import orbax.checkpoint as ocp
from absl import logging

from rsrl_jax import errors
from rsrl_jax.analysis import fold_stats
from rsrl_jax.config import base_config
from rsrl_jax.data import inputs
from rsrl_jax.engine import train
from rsrl_jax.errors import DataError
from rsrl_jax.run import completeness, contract, stops

# The POSIX portable file name characters and `/`: a path of these reaches every library
# unchanged. Others are parsed by some: Orbax lists a checkpoint's per-process folders with
# etils' `Path.glob`, which joins the folder's own path into the pattern, so `[v1]`, `*` and `?`
# in it are glob syntax (the save then skips merging its parts and the checkpoint cannot be
# restored); TensorStore's file driver reads `\` as a folder separator on every system.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._+/-]*")
# Where Orbax renames a dropped round (CheckpointManagerOptions.todelete_subdir) before we
# remove it: not a step name, so never listed as a round.
TRASH = ".dropped"


def orbax_path(directory: str) -> str:
    """A path to `directory` that Orbax and TensorStore read literally.

    `directory` itself (made absolute) when that path is plain (`_PLAIN_PATH`). Otherwise a
    symbolic link to it with a plain name, in this user's private folder under the temporary
    folder: no escaping lets TensorStore address a folder whose name holds a backslash, and
    Orbax's globs take no escaped path. Files are still written in `directory`: the link
    holds nothing. It is named by a digest of the absolute path (one link for every process
    and call) and replaced atomically if it points elsewhere; links to removed folders are dropped.
    Raises DataError if the private folder is not private.
    """
    target = os.path.abspath(directory)
    if _PLAIN_PATH.fullmatch(target):
        return target
    link = os.path.join(_alias_folder(), hashlib.sha256(os.fsencode(target)).hexdigest()[:32])
    try:
        if os.readlink(link) == target:
            return link
    except OSError:  # no link yet
        pass
    _remove_dangling_links(os.path.dirname(link))
    fresh = f"{link}.{uuid.uuid4().hex}"
    os.symlink(target, fresh)
    os.replace(fresh, link)  # atomic: processes making the same link at once all succeed
    return link


def _remove_dangling_links(folder: str) -> None:
    """Drops the links of `folder` whose folder is gone, so links do not pile up."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.islink(path) and not os.path.exists(path):
            try:
                os.remove(path)
            except FileNotFoundError:  # another process removed it first
                pass


def _alias_folder() -> str:
    """This user's folder of links (`orbax_path`), created with mode 0700 if missing."""
    base = tempfile.gettempdir()
    folder = os.path.join(base, f"rsrl_jax-{os.getuid()}-paths")
    if not _PLAIN_PATH.fullmatch(folder):
        raise DataError(
            f"the temporary folder {base!r} holds characters that checkpoint libraries parse; "
            "set TMPDIR to a folder named with letters, digits and ._-+ only"
        )
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"cannot create {folder} ({e.strerror}), where checkpoints of a folder named with "
            "characters that Orbax or TensorStore parse get a plainly named link: set TMPDIR "
            "to a writable folder"
        ) from e
    info = os.lstat(folder)
    if not os.path.isdir(folder) or os.path.islink(folder) or info.st_uid != os.getuid():
        raise DataError(f"{folder} is not a folder of this user: remove it, then run again")
    if info.st_mode & 0o077:  # another user could point our links elsewhere
        raise DataError(f"{folder} is open to other users: remove it, then run again")
    return folder


def fold_dir(workdir: str, fold: int) -> str:
    return os.path.join(os.path.abspath(workdir), f"fold_{fold}")


def _options(read_only: bool, background: bool = False, **kw) -> ocp.CheckpointManagerOptions:
    """Writing managers span every process of a run (all call save; process 0 is primary).

    A read-only one is this process's alone: reading needs no other process, so process 0
    can load networks for the report while the others are elsewhere. `background`: saves
    write in Orbax's threads until `wait_until_finished` (`save_round(wait=False)`).
    """
    if read_only:
        me = jax.process_index()
        kw["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
            primary_host=me, active_processes={me}
        )
    if not read_only:  # a save that a full disk or a kill cut short leaves a temporary folder
        kw["cleanup_tmp_directories"] = True
    return ocp.CheckpointManagerOptions(
        create=not read_only,
        read_only=read_only,
        save_interval_steps=0 if read_only else 1,
        enable_async_checkpointing=background and not read_only,
        **kw,
    )


def manager(workdir: str, fold: int, read_only: bool = False) -> ocp.CheckpointManager:
    """The fold's round checkpoints. Orbax deletes none by itself (`max_to_keep=None`);
    `run.retention` drops rounds with `drop_rounds`."""
    extra = {} if read_only else {"todelete_subdir": TRASH}
    options = _options(
        read_only,
        background=True,  # a group's lanes save a round at once (`save_round(wait=False)`)
        step_prefix="round",
        step_format_fixed_length=2,
        max_to_keep=None,
        **extra,
    )
    return ocp.CheckpointManager(
        _manager_path(fold_dir(workdir, fold), read_only),
        options=options,
        item_names=("params", "meta"),
    )


def _manager_path(directory: str, read_only: bool) -> str:
    """`orbax_path(directory)`, creating `directory` first for a writing manager (Orbax
    cannot create a folder through a link to a folder that does not exist yet)."""
    if not read_only:
        os.makedirs(directory, exist_ok=True)
    return orbax_path(directory)


def save_round(
    mngr: ocp.CheckpointManager, round_: int, params, meta: dict, wait: bool = True
) -> None:
    """Saves a round whole: SIGINT/SIGTERM wait for the save's end (`stops.deferred`).

    `wait=False`: returns once the save has started (its files are written in Orbax's
    threads); `finish_saves` waits for it. A group's lanes save their rounds so at once: a
    save is mostly waiting on its threads and the disk (~80 ms wall against ~35 ms CPU for
    an MLP head on 2 cores), so concurrent saves overlap. Until its end the round is absent
    from `mngr.all_steps()` (Orbax renames its folder when complete), so a kill meanwhile
    leaves it to be trained again.
    """
    with stops.deferred():
        mngr.save(
            round_,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave(params), meta=ocp.args.JsonSave(meta)
            ),
        )
        if wait:
            mngr.wait_until_finished()


def finish_saves(mngrs) -> None:
    """Waits for the saves `save_round(wait=False)` started on `mngrs`."""
    with stops.deferred():
        for mngr in mngrs:
            mngr.wait_until_finished()


def restore_round(mngr: ocp.CheckpointManager, round_: int, abstract_params=None):
    """Returns (params, meta) of a round; `abstract_params` fixes shapes/shardings if given."""
    restored = mngr.restore(
        round_,
        args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params), meta=ocp.args.JsonRestore()
        ),
    )
    return restored["params"], restored["meta"]


def restore_meta(mngr: ocp.CheckpointManager, round_: int) -> dict:
    """The JSON record of a saved round (no parameters read)."""
    return mngr.restore(round_, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]


def round_records(mngr: ocp.CheckpointManager) -> list[dict]:
    """The metrics records of the fold's finished rounds, by round: from each kept round's
    checkpoint, with its `earlier_records` (rounds whose checkpoints were dropped)."""
    records = {}
    for r in sorted(mngr.all_steps()):
        meta = restore_meta(mngr, r)
        for record in [*meta.get("earlier_records", []), meta["record"]]:
            records[record["round"]] = record
    return [records[r] for r in sorted(records)]


def drop_rounds(mngr: ocp.CheckpointManager, rounds) -> None:
    """Deletes the checkpoints of `rounds`, each renamed into `TRASH` by Orbax first (atomic),
    then removed with whatever an earlier, interrupted deletion left there. Every process
    of the run calls it (Orbax's delete syncs them); process 0 deletes."""
    with stops.deferred():
        empty_trash(mngr)
        for r in rounds:
            mngr.delete(r)
        empty_trash(mngr)


def empty_trash(mngr: ocp.CheckpointManager) -> None:
    if jax.process_index() == 0:
        shutil.rmtree(os.path.join(os.path.realpath(str(mngr.directory)), TRASH), True)


def progress_dir(workdir: str, fold: int) -> str:
    """The folder of the fold's mid-round training state (a group of that one lane)."""
    return os.path.join(fold_dir(workdir, fold), "in_progress")


def progress_manager(workdir: str, fold: int) -> ocp.CheckpointManager:
    """The fold's mid-round training state; only the latest is kept."""
    return progress_manager_at(progress_dir(workdir, fold))


def progress_manager_at(directory: str) -> ocp.CheckpointManager:
    """Mid-round training states in `directory`; only the latest is kept."""
    options = _options(False, step_prefix="step", max_to_keep=1)
    return ocp.CheckpointManager(
        _manager_path(directory, False), options=options, item_names=("state", "meta")
    )


def save_progress(mngr: ocp.CheckpointManager, step: int, state, meta: dict) -> None:
    """`state` is any pytree of arrays (TrainState and the epoch's sums); `meta` JSON. Saved
    whole: a signal waits for the end (`stops.deferred`)."""
    with stops.deferred():
        mngr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        mngr.wait_until_finished()


def clear_progress(mngr: ocp.CheckpointManager) -> None:
    """Drops the mid-round state once its round's checkpoint is saved."""
    with stops.deferred():
        for step in mngr.all_steps():
            mngr.delete(step)


def close_progress(mngr: ocp.CheckpointManager) -> None:
    """Closes a mid-round manager and removes its folder if it holds nothing (every state
    cleared), so a finished run leaves no empty `in_progress/`. A later run recreates it."""
    directory = os.path.realpath(str(mngr.directory))  # the folder, not a link to it
    mngr.close()
    try:
        os.rmdir(directory)  # only ever removes an empty folder
    except OSError:  # not empty (a state of a round not run), or removed by another process
        pass


def progress_meta(mngr: ocp.CheckpointManager) -> dict | None:
    """The meta of the latest mid-round checkpoint (which round, which lanes), or None;
    read before its state, whose shapes depend on the lanes it names."""
    step = mngr.latest_step()
    if step is None:
        return None
    return mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]


def restore_progress(mngr: ocp.CheckpointManager, abstract_state):
    """(state, meta) of the latest mid-round checkpoint, or None if there is none."""
    step = mngr.latest_step()
    if step is None:
        return None
    restored = mngr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
        ),
    )
    return restored["state"], restored["meta"]


def read_json(workdir: str, name: str):
    """A JSON file a run writes into its workdir; a clear error if the run did not write it."""
    path = os.path.join(workdir, name)
    if not os.path.isfile(path):
        raise errors.NotFound(f"{path} not found: is {workdir} the workdir of a finished run?")
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
    if not os.path.isdir(workdir):
        raise errors.NotFound(f"{workdir} not found: no run's workdir there")
    found = completeness.of_workdir(workdir)
    outside = found.outside_plan(fold)
    if outside:
        raise errors.NotFound(f"{workdir}: {outside}")
    if not os.path.isdir(fold_dir(workdir, fold)):
        why = found.not_run(fold)
        if why:  # planned, but not run (yet): not the same as a fold the run never had
            raise errors.NotFound(f"{workdir}: {why}")
        raise errors.NotFound(f"{fold_dir(workdir, fold)} not found: the run has no fold {fold}")


def chosen_round(workdir: str, fold: int) -> int:
    """The round chosen on validation for `fold`: as summary.json records it, or, where the
    run wrote no summary or one that misses rounds it has since recorded (killed, still
    training, resumed with more rounds), the best on validation among the rounds that ran."""
    _check_fold(workdir, fold)
    ran = completeness.recorded(workdir)
    records = [r for r in ran if r["fold"] == fold]
    path = os.path.join(workdir, "summary.json")
    summary = read_json(workdir, "summary.json") if os.path.isfile(path) else None
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
    config.update(read_json(workdir, "config.json"))
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
        return errors.DataError(f"{outside}; use --round in that range, or leave it out")
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
            os.path.join(workdir, "config.json"),
        )
        try:
            config = run_config(workdir)
            scores = meta.get("class_scores") or read_json(workdir, "classes.json")["class_scores"]
        except errors.NotFound as e:
            raise errors.DataError(
                f"{where} was saved by an older version without a model contract, and {e}; "
                "copy config.json and classes.json from the run's original workdir"
            ) from None
        found = contract.of(config, scores, hash_weights=False)
    found.check(where)
    return found


def load_network(workdir: str, fold: int, round_: int):
    """Rebuilds round `round_`'s network of a finished run from the round alone.

    Returns (config, model, params, class_scores): the config of the round's model contract
    (`Contract.config`: model.* and the photo options, the rest defaults), the model
    `train.make_model` builds from it, the round's parameters on the default device, and the
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
        model = train.make_model(config, len(found.class_scores))
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        view = inputs.of_network(config, _saved_shapes(mngr, round_))  # photos or vectors of D
        abstract = train.abstract_params(model, view, device)
        params, _ = restore_round(mngr, round_, abstract)
    finally:
        mngr.close()
    return config, model, params, found.class_scores
