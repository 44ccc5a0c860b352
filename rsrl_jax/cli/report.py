"""Rebuilds a run's report from its metrics.jsonl.

python -m rsrl_jax.report --workdir=DIR
"""

from absl import app, flags

from rsrl_jax import cli
from rsrl_jax.analysis.report import write_report


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    print(write_report(flags.FLAGS.workdir))


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    flags.DEFINE_string("workdir", None, "Workdir of a run (holds metrics.jsonl).")
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
