"""RSRL against the standard fixes for imbalance, one budget, one table.

  python -m rsrl_jax.compare --config=configs/demo.py [--config.a.b=v] [--workdir=DIR]
      [--methods=plain,focal,rsrl,random_drop,rsrl+focal] [--equal_steps=False] [--lanes=N]

The library function is `rsrl_jax.experiments.compare.compare`.
"""

from absl import app, flags
from ml_collections import config_flags

from rsrl_jax import commands, workdir_files
from rsrl_jax.experiments.compare import DEFAULT_METHODS, PARTS, compare

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.quiet_libraries()
    workdir = (
        FLAGS.workdir if FLAGS.workdir is not None else commands.default_workdir(prefix="compare_")
    )
    commands.log_to_file(workdir)
    compare(FLAGS.config, workdir, FLAGS.methods, FLAGS.equal_steps, FLAGS.lanes)
    print(workdir_files.CompareFiles(workdir).table)


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
    flags.DEFINE_string("workdir", None, "Output directory; default runs/compare_<config name>.")
    flags.DEFINE_list(
        "methods",
        list(DEFAULT_METHODS),
        f"Methods to compare: parts {list(PARTS)}, joined by '+' to combine (e.g. rsrl+focal).",
    )
    commands.define_lane_flags()
    flags.mark_flags_as_required(["config"])
    commands.run(main)
