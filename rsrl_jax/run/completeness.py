"""Whether a run did all it was set to do: the folds and rounds it planned against those recorded.

A run killed after 2 of its 3 rounds, one still training in another process, or one limited
by `protocol.max_folds` holds fewer records in `metrics.jsonl` than its config plans. Every
command that reads a run (report, predict, highlight, compare, study) asks `of_workdir` and
says so in one line (`Completeness.line`), so that a round that never ran is not read as a
round that brought no gain, and a request for it is told apart from a round not kept.

The plan: `rsrl.rounds` and `protocol.folds` / `protocol.max_folds` of the run's config.json
(rewritten by each resume, so a `--config.resume=force` with more rounds plans more), the
number of folds from the run's data record (`data_identity.npz`: an official test list is
one fold whatever `protocol.folds` says). What ran: one record per fold and round.
"""

import dataclasses
import json
import os

from absl import logging

from rsrl_jax import workdir_files
from rsrl_jax.data import identity
from rsrl_jax.run.checkpoint_files import recorded_records


def span(numbers) -> str:
    """'1-3, 5' for [1, 2, 3, 5]."""
    numbers = sorted(set(numbers))
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(n) if n == start else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def _named(word: str, numbers) -> str:
    """'round 3', 'rounds 1-2'."""
    numbers = sorted(set(numbers))
    return f"{word}{'s' if len(numbers) > 1 else ''} {span(numbers)}"


@dataclasses.dataclass(frozen=True)
class Completeness:
    """A run's plan and what of it ran.

    `folds`: folds planned (None: unknown); `rounds`: `rsrl.rounds` planned (None: unknown,
    config.json gone: the fold with the most rounds stands for the plan); `max_folds`:
    `protocol.max_folds` (0 = all); `done`: fold -> the rounds with a record, ascending;
    `protocol_folds`: `protocol.folds` as the config says (None: unknown).
    """

    folds: int | None
    rounds: int | None
    max_folds: int
    done: dict[int, tuple[int, ...]]
    protocol_folds: int | None = None

    @property
    def planned_rounds(self) -> int:
        if self.rounds is not None:
            return self.rounds
        return max((max(r) for r in self.done.values() if r), default=0)

    @property
    def missing_folds(self) -> list[int]:
        """Planned folds without a single record."""
        return [f for f in range(self.folds or 0) if not self.done.get(f)]

    def missing_rounds(self, fold: int) -> list[int]:
        """Planned rounds of `fold` without a record (every planned round for a fold not run)."""
        have = set(self.done.get(fold, ()))
        return [r for r in range(1, self.planned_rounds + 1) if r not in have]

    @property
    def partial(self) -> bool:
        return bool(self.missing_folds) or self.rounds_missing

    @property
    def rounds_missing(self) -> bool:
        """Some fold that ran lacks planned rounds: its conclusions rest on the rounds that ran."""
        return any(self.missing_rounds(f) for f, rs in self.done.items() if rs)

    def ran(self, fold: int, round_: int | None = None) -> bool:
        have = self.done.get(fold, ())
        return bool(have) if round_ is None else round_ in have

    def outside_plan(self, fold: int, round_: int | None = None) -> str | None:
        """Why `fold` (or `round_` of it) can never be read: the run does not plan it (a fold
        beyond its folds, a round beyond `rsrl.rounds` or below 1); None when the plan has it
        or the plan is unknown (config.json and the data record gone)."""
        if self.folds is not None and not 0 <= fold < self.folds:
            if self.protocol_folds is None:  # config.json gone
                why = "as recorded"
            elif self.protocol_folds == self.folds:
                why = f"protocol.folds={self.folds}"
            else:  # an official test list: one fold whatever protocol.folds says
                why = f"its data record, with protocol.folds={self.protocol_folds}"
            return f"fold {fold} does not exist: the run has folds 0..{self.folds - 1} ({why})"
        if round_ is not None and self.rounds is not None and not 1 <= round_ <= self.rounds:
            return (
                f"round {round_} does not exist: the run plans "
                f"{_named('round', range(1, self.rounds + 1))} (rsrl.rounds={self.rounds})"
            )
        return None

    def not_run(self, fold: int, round_: int | None = None) -> str | None:
        """Why `fold` (and `round_` of it) has nothing to read when the plan has it but it did
        not run; None when it ran or is outside the plan (another message says that)."""
        if not self.done.get(fold):
            if self.folds is None or not 0 <= fold < self.folds:
                return None
            return f"fold {fold} did not run ({self._folds_ran()}); {self._remedy([fold])}"
        if round_ is None or round_ in self.done[fold] or not 1 <= round_ <= self.planned_rounds:
            return None
        have = self.done[fold]
        return (
            f"round {round_} of fold {fold} did not run (fold {fold} has "
            f"{_named('round', have)} of rsrl.rounds={self.planned_rounds}); use one of those, "
            "or, if the run is not still training, run its command again on the workdir to "
            "finish it"
        )

    def _folds_ran(self) -> str:
        ran = [f for f, rs in self.done.items() if rs]
        of = f"of protocol.folds={self.folds}"
        return f"{_named('fold', ran)} {of} ran" if ran else f"no fold {of} has a round yet"

    def _left_out(self, folds) -> list[int]:
        """The folds of `folds` that protocol.max_folds leaves out."""
        return [f for f in folds if self.max_folds and f >= self.max_folds]

    def _remedy(self, folds) -> str:
        if self._left_out(folds) and len(self._left_out(folds)) == len(folds):
            return (
                f"protocol.max_folds={self.max_folds} left it out: run the run's command "
                "again with --config.protocol.max_folds=0 to add it"
            )
        return "if the run is not still training, run its command again on the workdir to finish it"

    def line(self) -> str:
        """One line naming what did not run and what to do; '' for a complete run.

        e.g. "partial run: fold 0 has rounds 1-2 of rsrl.rounds=3 (round 3 did not run);
        folds 2-4 of protocol.folds=5 did not run; ..."
        """
        if not self.partial:
            return ""
        parts = []
        short: dict[tuple, list[int]] = {}
        for fold, have in sorted(self.done.items()):
            if have and self.missing_rounds(fold):
                short.setdefault((have, tuple(self.missing_rounds(fold))), []).append(fold)
        for (have, missing), folds in short.items():
            verb = "has" if len(folds) == 1 else "have"
            parts.append(
                f"{_named('fold', folds)} {verb} {_named('round', have)} of "
                f"rsrl.rounds={self.planned_rounds} ({_named('round', missing)} did not run)"
            )
        left_out = self._left_out(self.missing_folds)
        unfinished = [f for f in self.missing_folds if f not in left_out]
        of = f"of protocol.folds={self.folds}"
        if unfinished:
            parts.append(f"{_named('fold', unfinished)} {of} did not run")
        if left_out:
            parts.append(
                f"{_named('fold', left_out)} {of} did not run (protocol.max_folds="
                f"{self.max_folds} leaves them out; --config.protocol.max_folds=0 adds them)"
            )
        if short or unfinished:
            parts.append(
                "if the run is not still training, run its command again on the workdir to "
                "finish it"
            )
        return "partial run: " + "; ".join(parts)

    def to_json(self) -> dict:
        """For summary.json and the compare and study tables' json."""
        return {
            "partial": self.partial,
            "folds_planned": self.folds,
            "rounds_planned": self.planned_rounds,
            "max_folds": self.max_folds,
            "rounds_ran": {str(f): list(rs) for f, rs in sorted(self.done.items())},
            "missing_folds": self.missing_folds,
            "missing_rounds": {
                str(f): self.missing_rounds(f) for f in sorted(self.done) if self.missing_rounds(f)
            },
            "line": self.line(),
        }


def of_records(records, config: dict | None, folds: int | None = None) -> Completeness:
    """The completeness of a run whose metrics records are `records`, planned by `config`
    (config.json as a dict; None or a partial dict: what it lacks is unknown) with `folds`
    folds (the data record's count; default `protocol.folds`, or the folds seen)."""
    config = config or {}
    protocol = config.get("protocol", {})
    rounds = config.get("rsrl", {}).get("rounds")
    done: dict[int, set[int]] = {}
    for r in records:
        if (
            isinstance(r, dict)
            and isinstance(r.get("fold"), int)
            and isinstance(r.get("round"), int)
        ):
            done.setdefault(r["fold"], set()).add(r["round"])  # others are no metrics records
    if folds is None:
        folds = protocol.get("folds")
    if folds is None and done:
        folds = max(done) + 1
    return Completeness(
        folds=folds,
        rounds=rounds,
        max_folds=int(protocol.get("max_folds") or 0),
        done={f: tuple(sorted(rs)) for f, rs in sorted(done.items())},
        protocol_folds=protocol.get("folds"),
    )


def no_run(workdir: str) -> str | None:
    """Every reader's one line for a path that holds no run (missing, a file, or a folder
    with no config.json, metrics.jsonl or fold_N/), saying what to give; None otherwise."""
    fix = "give the workdir of a finished run (python -m rsrl_jax.main --workdir=DIR)"
    if os.path.isfile(workdir):
        return f"{workdir} is a file, not a run's workdir: {fix}"
    if not os.path.isdir(workdir):
        return f"{workdir} not found: {fix}"
    names = os.listdir(workdir)
    recorded = workdir_files.CONFIG in names or workdir_files.METRICS in names
    if recorded or any(n.startswith(workdir_files.FOLD_PREFIX) for n in names):
        return None
    inside = _a_run_inside(workdir)
    if inside:  # compare's <method>/ or study's noise_<n>/seed_<s>/<method>/
        return (
            f"{workdir} holds runs, not a run (a compare's or study's folder): give one of "
            f"them, e.g. {inside}"
        )
    return f"{workdir} holds no run (no {workdir_files.CONFIG}, no fold_N/): {fix}"


def _a_run_inside(folder: str, depth: int = 3) -> str | None:
    """The first folder (sorted, at most `depth` levels down) holding a run's config.json."""
    if depth == 0:
        return None
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not os.path.isdir(path):
            continue
        if os.path.isfile(os.path.join(path, workdir_files.CONFIG)):
            return path
        found = _a_run_inside(path, depth - 1)
        if found:
            return found
    return None


def recorded(workdir: str) -> list[dict]:
    """The run's metrics records: metrics.jsonl (a line cut short by a kill left out: the
    report names it), or, where the file is gone, the round checkpoints' own records."""
    path = workdir_files.WorkdirFiles(workdir).metrics
    if not os.path.isfile(path):
        return recorded_records(workdir) if os.path.isdir(workdir) else []
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def planned_folds(workdir: str) -> int | None:
    """The number of folds in the run's data record (None without one)."""
    return identity.fold_count(workdir) or None


def read_config(workdir: str) -> dict | None:
    try:
        with open(workdir_files.WorkdirFiles(workdir).config) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def of_workdir(workdir: str, records: list[dict] | None = None) -> Completeness:
    """The completeness of the run in `workdir` (`records`: its metrics records, if read)."""
    records = recorded(workdir) if records is None else records
    return of_records(records, read_config(workdir), planned_folds(workdir))


def warn_if_partial(workdir: str, using: str = "") -> Completeness:
    """Logs the partial run's line (and `using`: what the command reads of it) as one
    warning; returns the completeness."""
    found = of_workdir(workdir)
    if found.partial:
        logging.warning("%s: %s%s", workdir, found.line(), f"; {using}" if using else "")
    return found
