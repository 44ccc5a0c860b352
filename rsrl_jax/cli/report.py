"""Rebuilds a run's report from its metrics.jsonl.

python -m rsrl_jax.report --workdir=DIR [--round_choice=per_fold|over_folds]
"""

from absl import app, flags

from rsrl_jax import cli
from rsrl_jax.analysis.fold_stats import ROUND_CHOICES
from rsrl_jax.analysis.report import write_report
from rsrl_jax.run import stops


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    workdir = flags.FLAGS.workdir
    stops.writing(workdir, "copy the workdir to a writable folder and run the report there")
    print(write_report(workdir, rule=flags.FLAGS.round_choice))


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
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
