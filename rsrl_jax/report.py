"""Rebuilds a run's report from its metrics.jsonl.

python -m rsrl_jax.report --workdir=DIR [--round_choice=per_fold|over_folds] [--out=OUT]

A reader: it never takes the workdir's lock, and with --out writes nothing into the workdir.
"""

from absl import app, flags

from rsrl_jax import commands
from rsrl_jax.analysis.report import write_report
from rsrl_jax.metrics.fold_stats import ROUND_CHOICES
from rsrl_jax.run import stops


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    if f.out:
        stops.writing(f.out, "give another --out")
    else:
        stops.writing(
            f.workdir, "write the report elsewhere with --out=DIR (the workdir is then only read)"
        )
    print(write_report(f.workdir, rule=f.round_choice, out=f.out))


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    flags.DEFINE_string("workdir", None, "Workdir of a run (holds metrics.jsonl).")
    flags.DEFINE_enum(
        "round_choice",
        "per_fold",
        list(ROUND_CHOICES),
        "per_fold: each fold's best round on validation macro F (the run's own choice); "
        "over_folds: the round with the best validation macro F averaged over the folds, "
        "for every fold (steadier, but each fold's validation part lies in other folds' "
        "test parts).",
    )
    flags.DEFINE_string(
        "out",
        None,
        "Folder for report.md and its figures (created if missing); default WORKDIR/report. "
        "Another folder leaves the workdir untouched (a read-only one, or one a run is writing).",
    )
    flags.mark_flags_as_required(["workdir"])
    commands.run(main)
