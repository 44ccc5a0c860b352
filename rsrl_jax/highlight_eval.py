"""How much of the highlight falls on the subject (synthetic runs only).

python -m rsrl_jax.highlight_eval --workdir=DIR [--fold=F] [--round=I] [--k=1] [--out=OUT]

The library is `rsrl_jax.analysis.highlight_eval` (evaluate, write_evaluation, format_table).
"""

from absl import app, flags, logging

from rsrl_jax import commands
from rsrl_jax.analysis.highlight_eval import evaluate, format_table, write_evaluation

FLAGS = flags.FLAGS


def define_flags():
    commands.define_pair_flags(
        "Workdir of a finished run on synthetic data.",
        "Fold whose test photos and networks to use.",
    )
    flags.DEFINE_string(
        "out",
        None,
        "Folder for highlight_eval_fold<F>.json (created if missing); default WORKDIR/report. "
        "Another folder leaves the workdir untouched.",
    )
    flags.mark_flags_as_required(["workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.quiet_libraries()
    result = evaluate(FLAGS.workdir, FLAGS.fold, FLAGS.round, FLAGS.k)
    path = write_evaluation(result, FLAGS.out)
    print(format_table(result), flush=True)
    logging.info("figures written to %s", path)


if __name__ == "__main__":
    define_flags()
    commands.run(main)
