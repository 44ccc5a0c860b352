"""A group of lanes' mid-round state: where it is kept (a fold's `in_progress/`, a run's
`folds_in_progress/`, or `lanes_in_progress/<group id>/` of the group's first run), saved
after a step, restored only by the same group and round, and the line a stop mid-round says.
"""

import hashlib
import json
import os

from rsrl_jax import workdir_files
from rsrl_jax.engine.lane import Lane
from rsrl_jax.run import checkpoints, stops


def group_progress_dir(lanes: list[Lane]) -> str:
    """Where a group of lanes of several runs keeps its mid-round state: a folder of the
    first lane's run named after the group's lanes (`lanes_in_progress/<id>`), so that only
    the same group, formed again, resumes from it."""
    names = json.dumps([[os.path.abspath(lane.exp.workdir), lane.index] for lane in lanes])
    group_id = hashlib.sha256(names.encode()).hexdigest()[:16]
    return workdir_files.WorkdirFiles(lanes[0].exp.workdir).lanes_group_in_progress(group_id)


def group_names(lanes) -> list:
    return [[os.path.abspath(f.exp.workdir), f.index] for f in lanes]


def restore_progress(progress_mngr, state, zero_sums, round_, group, names):
    """The group's mid-round state of round `round_`, or None: a state of another round, or
    of another group or set of trainings (its meta names them), is not this one's."""
    meta = checkpoints.progress_meta(progress_mngr)
    if meta is None or meta["round"] != round_:
        return None
    if meta.get("lanes", names) != names or meta.get("group", group) != group:
        return None
    return checkpoints.restore_progress(progress_mngr, {"state": state, "sums": zero_sums()})


def save_progress(progress_mngr, done, state, sums, folds, round_, epoch, batch, group) -> None:
    """The mid-round state after step `done` (batch `batch` of epoch `epoch`)."""
    checkpoints.save_progress(
        progress_mngr,
        done,
        {"state": state, "sums": sums},
        {
            "folds": [f.index for f in folds],
            "lanes": group_names(folds),
            "group": group,
            "round": round_,
            "epoch": epoch,
            "batch": batch,
        },
    )


def interrupted(folds, round_: int, done: int) -> stops.Interrupted:
    signum = stops.requested()
    runs = list(dict.fromkeys(f.exp.workdir for f in folds))
    label = f"fold{'s' if len(folds) > 1 else ''} {', '.join(str(f.index) for f in folds)}"
    if len(runs) > 1:
        label = f"{len(folds)} lanes of {len(runs)} runs"
    where = runs[0] if len(runs) == 1 else f"{len(runs)} runs' folders ({runs[0]}, ...)"
    saved = f"the training state at step {done} was saved in {where}"
    return stops.Interrupted(
        signum, stops.stopped_line(signum, f"{label} round {round_} at step {done}", saved)
    )
