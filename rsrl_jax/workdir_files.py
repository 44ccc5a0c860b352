"""Every file and folder of a run's workdir, and of compare's and study's folders, named once.

Readers and writers ask here for a path instead of joining names of their own, so that the
on-disk layout (docs/outputs.md) is read in one place. In the ground layer: the data record
(`data/identity.py`) and the skipped items (`data/builders.py`) live in a workdir too.

A run's workdir:

    config.json classes.json data_identity.npz skipped.jsonl duplicates.json
    metrics.jsonl timings.jsonl summary.json log.txt .lock .lock.json
    report/ (report.md, its figures, highlights_foldF.png, highlight_eval_foldF.json)
    tensorboard/fold_F/
    fold_F/round_RR/ (a round's checkpoint) fold_F/in_progress/step_S/ fold_F/.dropped/
    folds_in_progress/ (parallel folds' mid-round state) lanes_in_progress/<group>/

compare's folder: <method>/ (a run each), compare.json, compare.png, compare.md.
study's folder: noise_<n>/seed_<s>/<method>/ (a run each), study.json, study.png, study.md,
commands.jsonl (each command's wall time).
"""

import dataclasses
import glob
import os

CONFIG = "config.json"
CLASSES = "classes.json"
IDENTITY = "data_identity.npz"
SKIPPED = "skipped.jsonl"
DUPLICATES = "duplicates.json"
METRICS = "metrics.jsonl"
TIMINGS = "timings.jsonl"
SUMMARY = "summary.json"
LOG = "log.txt"
LOCK = ".lock"
LOCK_HOLDER = ".lock.json"
REPORT = "report"
REPORT_FILE = "report.md"
TENSORBOARD = "tensorboard"
IN_PROGRESS = "in_progress"  # a fold's mid-round state, inside fold_F/
FOLDS_IN_PROGRESS = "folds_in_progress"  # parallel folds' mid-round state
LANES_IN_PROGRESS = "lanes_in_progress"  # a group of lanes' mid-round state, in its first run
# Where Orbax renames a dropped round (CheckpointManagerOptions.todelete_subdir) before it is
# removed: not a step name, so never listed as a round.
DROPPED = ".dropped"
ROUND_PREFIX = "round"  # fold_F/round_RR/: Orbax's step prefix, two digits
ROUND_DIGITS = 2
STEP_PREFIX = "step"  # in_progress/step_S/
FOLD_PREFIX = "fold_"
FOLD_PATTERN = FOLD_PREFIX + r"(\d+)"
ROUND_PATTERN = ROUND_PREFIX + r"_(\d+)"
STEP_PATTERN = STEP_PREFIX + r"_(\d+)"


def fold_name(fold: int) -> str:
    return f"{FOLD_PREFIX}{fold}"


@dataclasses.dataclass(frozen=True)
class WorkdirFiles:
    """The paths of one run's workdir (joined to `workdir` as given, unless said)."""

    workdir: str

    def file(self, name: str) -> str:
        return os.path.join(self.workdir, name)

    @property
    def config(self) -> str:
        return self.file(CONFIG)

    @property
    def classes(self) -> str:
        return self.file(CLASSES)

    @property
    def identity(self) -> str:
        return self.file(IDENTITY)

    @property
    def skipped(self) -> str:
        return self.file(SKIPPED)

    @property
    def duplicates(self) -> str:
        return self.file(DUPLICATES)

    @property
    def metrics(self) -> str:
        return self.file(METRICS)

    @property
    def timings(self) -> str:
        return self.file(TIMINGS)

    @property
    def summary(self) -> str:
        return self.file(SUMMARY)

    @property
    def log(self) -> str:
        """Absolute: the log file stays where it was opened whatever the process's folder."""
        return os.path.abspath(self.file(LOG))

    @property
    def lock(self) -> str:
        return self.file(LOCK)

    @property
    def lock_holder(self) -> str:
        return self.file(LOCK_HOLDER)

    @property
    def report_dir(self) -> str:
        return self.file(REPORT)

    @property
    def report(self) -> str:
        return os.path.join(self.report_dir, REPORT_FILE)

    def highlights(self, fold: int) -> str:
        """The highlight panel of `fold` the run draws (`HIGHLIGHTS_GLOB` finds them all)."""
        return os.path.join(self.report_dir, f"highlights_fold{fold}.png")

    def highlight_eval(self, fold: int, report_dir: str | None = None) -> str:
        """highlight_eval's figures of `fold`, in `report_dir` (a reader's --out) or report/."""
        folder = self.report_dir if report_dir is None else report_dir
        return os.path.join(folder, f"highlight_eval_fold{fold}.json")

    def tensorboard(self, fold: int) -> str:
        return os.path.join(self.workdir, TENSORBOARD, fold_name(fold))

    def fold(self, fold: int) -> str:
        """Absolute: Orbax's managers take absolute paths."""
        return os.path.join(os.path.abspath(self.workdir), fold_name(fold))

    def in_progress(self, fold: int) -> str:
        """The fold's mid-round training state (a group of that one lane)."""
        return os.path.join(self.fold(fold), IN_PROGRESS)

    @property
    def folds_in_progress(self) -> str:
        return self.file(FOLDS_IN_PROGRESS)

    @property
    def lanes_in_progress(self) -> str:
        return self.file(LANES_IN_PROGRESS)

    def lanes_group_in_progress(self, group_id: str) -> str:
        return os.path.join(self.lanes_in_progress, group_id)


HIGHLIGHTS_GLOB = "highlights_fold*.png"


def report_file(report_dir: str, name: str = REPORT_FILE) -> str:
    """A file of a report folder (the run's report/ or a reader's --out)."""
    return os.path.join(report_dir, name)


@dataclasses.dataclass(frozen=True)
class CompareFiles:
    """compare's folder: one run per method, and the table over them."""

    workdir: str

    def run(self, method: str) -> str:
        return os.path.join(self.workdir, method)

    @property
    def json(self) -> str:
        return os.path.join(self.workdir, "compare.json")

    @property
    def figure(self) -> str:
        return os.path.join(self.workdir, "compare.png")

    @property
    def table(self) -> str:
        return os.path.join(self.workdir, "compare.md")


NOISE_DIR, SEED_DIR = "noise_", "seed_"  # a study run's folders: study_run_dir


def study_run_dir(noise: float, seed: int, method: str) -> str:
    """A study run's folder, relative to the study's: noise_<n>/seed_<s>/<method>."""
    return os.path.join(f"{NOISE_DIR}{noise:g}", f"{SEED_DIR}{seed}", method)


@dataclasses.dataclass(frozen=True)
class StudyFiles:
    """study's folder: one run per (noise, seed, method), and the analysis over them."""

    workdir: str

    def run(self, noise: float, seed: int, method: str) -> str:
        return os.path.join(self.workdir, study_run_dir(noise, seed, method))

    def runs(self) -> list[str]:
        """Every run folder the study's folder holds, whichever command's grid made it."""
        pattern = os.path.join(self.workdir, f"{NOISE_DIR}*", f"{SEED_DIR}*", "*")
        return sorted(p for p in glob.glob(pattern) if os.path.isdir(p))

    @property
    def commands(self) -> str:
        """One JSON line per study command that trained: its wall time (`study_commands`)."""
        return os.path.join(self.workdir, "commands.jsonl")

    @property
    def json(self) -> str:
        return os.path.join(self.workdir, "study.json")

    @property
    def figure(self) -> str:
        return os.path.join(self.workdir, "study.png")

    @property
    def table(self) -> str:
        return os.path.join(self.workdir, "study.md")
