"""A study's wall time over all its commands: `DIR/commands.jsonl` (`StudyFiles.commands`).

A study is often several commands into one folder: one killed and run again, or extended with
more seeds or methods (`tools/answer.py` does). Each command that trains adds one line:
`began` (Unix seconds), `wall_s` (its seconds), `command` and `how` it ended: 'finished';
'killed' (its time up to the last round any run recorded, from the runs' metrics.jsonl
times, recovered by the next command; a command killed before any round was recorded adds
nothing); or 'before' (the `wall_s` of a study.json written before this file, which was the
last training command's time alone). A command that trains nothing adds nothing, so the
total is the time spent training the study's runs. The file is rewritten whole
(`write_atomic`) at a command's start (its line, with `wall_s` null until its end) and end.
"""

import json
import os

from rsrl_jax import workdir_files
from rsrl_jax.files import write_atomic


def read(files: workdir_files.StudyFiles) -> list[dict]:
    """The study's command lines (`files.commands`); [] when there is none."""
    try:
        with open(files.commands) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _write(files: workdir_files.StudyFiles, entries: list[dict]) -> None:
    write_atomic(files.commands, "".join(json.dumps(e) + "\n" for e in entries))


def begin(files: workdir_files.StudyFiles, began: float, command: str | None) -> None:
    """Records a command that starts at `began` (Unix seconds), after closing the lines of
    commands killed before (`recovered`); a study.json from before this file gives its
    `wall_s` as the first line."""
    entries = read(files)
    if not entries and os.path.exists(files.json):
        entries = _before(files)
    entries = [recovered(files, e, began) if e["wall_s"] is None else e for e in entries]
    entries = [e for e in entries if e["wall_s"]]  # killed before any round: nothing spent
    _write(files, [*entries, {"began": began, "wall_s": None, "command": command, "how": None}])


def end(files: workdir_files.StudyFiles, began: float, seconds: float | None) -> list[dict]:
    """Closes the line of the command that began at `began`: `seconds` of wall time, or, with
    None (it trained nothing), removes it. Returns every line."""
    entries = read(files)
    mine = next(e for e in entries if e["began"] == began and e["wall_s"] is None)
    if seconds is None:
        entries.remove(mine)
    else:
        mine.update(wall_s=seconds, how="finished")
    _write(files, entries)
    return entries


def total(entries: list[dict]) -> tuple[float, int]:
    """(wall seconds, commands) of the study's command lines."""
    return sum(e["wall_s"] for e in entries), len(entries)


def recovered(files: workdir_files.StudyFiles, entry: dict, now: float) -> dict:
    """A killed command's line closed: its time up to the last record (a round's line of
    metrics.jsonl) any run of the study's folder wrote after it began (and before `now`), 0
    if none: a run creates its metrics.jsonl empty when it starts, which is no round."""
    began = entry["began"]
    times = []
    for run in files.runs():
        metrics = workdir_files.WorkdirFiles(run).metrics
        if (
            os.path.exists(metrics)
            and os.path.getsize(metrics) > 0
            and began <= os.path.getmtime(metrics) <= now
        ):
            times.append(os.path.getmtime(metrics))
    return {**entry, "wall_s": max(times) - began if times else 0.0, "how": "killed"}


def _before(files: workdir_files.StudyFiles) -> list[dict]:
    try:
        with open(files.json) as f:
            out = json.load(f)
        seconds, command = float(out["wall_s"]), out.get("command")
    except (OSError, ValueError, KeyError, TypeError):  # none recorded: nothing to carry
        return []
    return [{"began": None, "wall_s": seconds, "command": command, "how": "before"}]
