"""The run's report: the paper's figures per round, the chosen round's table, report.md.

  python -m rsrl_jax.report --workdir=DIR

rebuilds `DIR/report/` from `metrics.jsonl` without training. report.md opens with a
verdict in words: the chosen round against round 1 on test, and whether the difference is
larger than the folds' spread; then how the round was chosen and what that choice missed
on test. Figures: macro F per round (validation and test), the training set size per round
stacked by class (paper Fig. 4), per-class precision/recall/F per round for validation and
test (Figs. 5-7), train vs test accuracy (Fig. 8), the chosen round's confusion matrix, the
SRCC and PLCC of the expected score per round (`aesthetic`; the rounds table and one line
give them too); on synthetic data the mislabelled share of what each selection dropped and kept
(`selection_truth.plot`, shown in the Selection section).
With several folds each curve is the mean over folds with a band of one standard deviation.
"""

import glob
import json
import os
import shutil

import numpy as np
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.analysis import selection_truth
from rsrl_jax.analysis.report_figures import (
    FIGURES,
    plot_accuracy,
    plot_aesthetic,
    plot_confusion,
    plot_macro_f1,
    plot_per_class,
    plot_training_set_size,
)
from rsrl_jax.analysis.report_text import markdown
from rsrl_jax.analysis.report_verdict import chosen_records
from rsrl_jax.files import write_atomic
from rsrl_jax.metrics import fold_stats
from rsrl_jax.run import completeness


def read_records(workdir: str) -> list[dict]:
    path = workdir_files.WorkdirFiles(workdir).metrics
    if not os.path.isfile(path):
        why = completeness.no_run(workdir)
        raise errors.NotFound(why or f"{path} not found: is {workdir} the workdir of a run?")
    records = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise errors.DataError(
                    f"{path} line {number}: not a whole JSON record ({e.msg}); run the run's "
                    "command again: a resume rebuilds metrics.jsonl from its checkpoints"
                ) from None
    return records


def write_report(
    workdir: str, records: list[dict] | None = None, rule: str = "per_fold", out: str | None = None
) -> str:
    """Writes `workdir/report/` (figures and report.md) from the run's metrics; returns its path.

    `rule` (fold_stats.ROUND_CHOICES) picks each fold's round; summary.json and the networks
    that predict and highlight use keep each fold's own choice whatever it is. `out`: another
    folder for the report (the run's highlight panels are copied there), so that a read-only
    workdir, or one a run is writing, is only read.
    """
    files = workdir_files.WorkdirFiles(workdir)
    records = read_records(workdir) if records is None else records
    if not records:
        raise errors.DataError(f"{workdir}/metrics.jsonl has no records yet")
    with open(files.classes) as f:
        class_scores = json.load(f)["class_scores"]
    with open(files.config) as f:
        config_json = f.read()
    chosen = fold_stats.chosen_rounds(records, rule)
    summary = fold_stats.summarize(records)
    extent = completeness.of_workdir(workdir, records)
    if extent.partial:
        logging.warning("%s: %s", workdir, extent.line())
    own = files.report_dir
    out = own if out is None else out
    os.makedirs(out, exist_ok=True)
    if os.path.isdir(own) and not os.path.samefile(out, own):
        for panel in glob.glob(os.path.join(glob.escape(own), workdir_files.HIGHLIGHTS_GLOB)):
            shutil.copy(panel, out)  # drawn by the run from its data: not redrawn here
    plot_macro_f1(records, chosen, workdir_files.report_file(out, FIGURES["macro_f1"]))
    plot_training_set_size(
        records, class_scores, workdir_files.report_file(out, FIGURES["training_set_size"])
    )
    for part in ("val", "test"):
        plot_per_class(
            records,
            class_scores,
            part,
            workdir_files.report_file(out, FIGURES[f"per_class_{part}"]),
        )
    plot_accuracy(records, workdir_files.report_file(out, FIGURES["accuracy"]))
    matrix = sum(np.asarray(r["test"]["confusion_matrix"]) for r in chosen_records(records, chosen))
    plot_confusion(
        matrix,
        class_scores,
        "Chosen round, test",
        workdir_files.report_file(out, FIGURES["confusion_matrix"]),
    )
    plot_aesthetic(records, workdir_files.report_file(out, FIGURES["aesthetic"]))
    selection_truth.plot(
        records, workdir_files.report_file(out, selection_truth.FIGURE)
    )  # synthetic only
    extra = sorted(
        os.path.basename(p)
        for p in glob.glob(os.path.join(glob.escape(out), "*.png"))  # out may hold [ ] * ?
        if os.path.basename(p) not in (*FIGURES.values(), selection_truth.FIGURE)
    )
    path = workdir_files.report_file(out)
    # whole or not at all: a kill or a full disk mid-write leaves the previous report.md
    write_atomic(path, markdown(records, summary, class_scores, config_json, extra, rule, extent))
    return path
