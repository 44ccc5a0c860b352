"""Runs an RSRL experiment: `python -m rsrl_jax.main --config=configs/demo.py`."""

import os

from absl import app, flags, logging
from ml_collections import config_flags

from rsrl_jax import cli, rsrl

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory; default runs/<config name>.")
flags.mark_flags_as_required(["config"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cli.quiet_libraries()
    workdir = FLAGS.workdir
    if workdir is None:
        config_file = config_flags.get_config_filename(FLAGS["config"])
        workdir = os.path.join("runs", os.path.splitext(os.path.basename(config_file))[0])
    logging.info("workdir %s", workdir)
    rsrl.run(FLAGS.config, workdir)


if __name__ == "__main__":
    app.run(main)
