"""Runs an RSRL experiment: `python -m rsrl_jax.main --config=configs/demo.py`."""

import os

from absl import app, flags, logging
from ml_collections import config_flags

from rsrl_jax import rsrl

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory; default runs/<config name>.")
flags.mark_flags_as_required(["config"])


class _QuietLibraries(logging.logging.Filter):
    """Keeps INFO lines of this package; other libraries (Orbax is chatty) speak at WARNING."""

    def filter(self, record):
        return record.levelno >= logging.WARNING or f"{os.sep}rsrl_jax{os.sep}" in record.pathname


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.get_absl_handler().addFilter(_QuietLibraries())
    workdir = FLAGS.workdir
    if workdir is None:
        name = os.path.splitext(
            os.path.basename(config_flags.get_config_filename(FLAGS["config"]))
        )[0]
        workdir = os.path.join("runs", name)
    logging.info("workdir %s", workdir)
    rsrl.run(FLAGS.config, workdir)


if __name__ == "__main__":
    app.run(main)
