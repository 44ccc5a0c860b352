"""A run's Orbax checkpoints: one per (fold, round), plus the latest mid-round state.

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
(`orbax_paths.orbax_path`).

Below `run.completeness`, which reads the rounds' records when metrics.jsonl is gone;
`run.checkpoints` (a saved round read back, checked against the run's plan) re-exports these
names. Its folders' names are `rsrl_jax.workdir_files`'.
"""

import os
import shutil

import jax
import orbax.checkpoint as ocp

from rsrl_jax import workdir_files
from rsrl_jax.run import stops
from rsrl_jax.run.orbax_paths import orbax_path


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
    extra = {} if read_only else {"todelete_subdir": workdir_files.DROPPED}
    options = _options(
        read_only,
        background=True,  # a group's lanes save a round at once (`save_round(wait=False)`)
        step_prefix=workdir_files.ROUND_PREFIX,
        step_format_fixed_length=workdir_files.ROUND_DIGITS,
        max_to_keep=None,
        **extra,
    )
    return ocp.CheckpointManager(
        _manager_path(workdir_files.WorkdirFiles(workdir).fold(fold), read_only),
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
    """Deletes the checkpoints of `rounds`, each renamed into `workdir_files.DROPPED` by Orbax
    first (atomic), then removed with whatever an earlier, interrupted deletion left there.
    Every process of the run calls it (Orbax's delete syncs them); process 0 deletes."""
    with stops.deferred():
        empty_trash(mngr)
        for r in rounds:
            mngr.delete(r)
        empty_trash(mngr)


def empty_trash(mngr: ocp.CheckpointManager) -> None:
    if jax.process_index() == 0:
        folder = os.path.realpath(str(mngr.directory))
        shutil.rmtree(os.path.join(folder, workdir_files.DROPPED), True)


def progress_manager(workdir: str, fold: int) -> ocp.CheckpointManager:
    """The fold's mid-round training state; only the latest is kept."""
    return progress_manager_at(workdir_files.WorkdirFiles(workdir).in_progress(fold))


def progress_manager_at(directory: str) -> ocp.CheckpointManager:
    """Mid-round training states in `directory`; only the latest is kept."""
    options = _options(False, step_prefix=workdir_files.STEP_PREFIX, max_to_keep=1)
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


def recorded_records(workdir: str, round_by_round: bool = False) -> list[dict]:
    """The metrics records of every finished round of every fold, from their checkpoints:
    fold by fold, or round by round (as a run of parallel folds writes them)."""
    records, fold = [], 0
    while os.path.isdir(workdir_files.WorkdirFiles(workdir).fold(fold)):
        mngr = manager(workdir, fold, read_only=True)
        records += round_records(mngr)
        mngr.close()
        fold += 1
    if round_by_round:
        records.sort(key=lambda r: (r["round"], r["fold"]))
    return records
