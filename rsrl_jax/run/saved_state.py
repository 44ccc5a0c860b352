"""What a run's workdir holds to resume from, in words: each fold's last saved round and any
mid-round state, read from the folder names alone (quick, even under SIGTERM), for the line
a stopped command ends with (`stops.stopped_line`).
"""

import os
import re

from rsrl_jax import workdir_files


def saved_text(workdir: str) -> str:
    """What a run's workdir holds to resume from: each fold's last saved round and any
    mid-round state (read from the folder names alone: quick, even under SIGTERM). True
    also once the command has ended: a workdir holding nothing but this run's lock is
    removed then (`workdir_lock`), so it is not said to hold anything."""
    parts = []
    files = workdir_files.WorkdirFiles(workdir)
    folds = _numbered(workdir, workdir_files.FOLD_PATTERN)
    for fold in folds:
        rounds = _numbered(files.fold(fold), workdir_files.ROUND_PATTERN)
        steps = _numbered(files.in_progress(fold), workdir_files.STEP_PATTERN)
        text = f"fold {fold} up to round {max(rounds)}" if rounds else ""
        if steps:
            text += (
                " and " if text else f"fold {fold}: "
            ) + f"a mid-round state (step {max(steps)})"
        parts.append(text or f"fold {fold}: no round yet")
    steps = _numbered(files.folds_in_progress, workdir_files.STEP_PATTERN)
    if steps:
        parts.append(f"the folds' mid-round state (step {max(steps)})")
    if not any(p for p in parts if "no round yet" not in p):
        try:
            held = set(os.listdir(workdir)) - {workdir_files.LOCK, workdir_files.LOCK_HOLDER}
        except OSError:
            held = set()
        if not held:
            return f"nothing was saved yet for {workdir}"
        return f"no round was saved yet in {workdir}"
    return f"saved in {workdir}: " + "; ".join(parts)


def _numbered(folder: str, pattern: str) -> list[int]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := re.fullmatch(pattern, n)))
