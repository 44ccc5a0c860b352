"""Runs an RSRL experiment: `python -m rsrl_jax.main --config=configs/demo.py`."""

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from rsrl_jax import commands
from rsrl_jax.engine import rsrl
from rsrl_jax.run import distributed

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory; default runs/<config name>.")
flags.DEFINE_enum(
    "distributed",
    "auto",
    distributed.MODES,
    "Join a multi-process run (jax.distributed): auto = when a coordinator is given, in a "
    "SLURM step of several tasks, or on a Cloud TPU VM.",
)
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
flags.DEFINE_integer("num_processes", None, "How many processes the run has.")
flags.DEFINE_integer("process_id", None, "This process's index, 0..num_processes-1.")
flags.mark_flags_as_required(["config"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.quiet_libraries()
    cache = commands.enable_compilation_cache()
    # Before any JAX computation: the processes of a multi-process run find each other.
    joined = distributed.initialize(
        FLAGS.distributed, FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
    )
    if joined and jax.process_index() != 0:
        logging.set_verbosity(logging.WARNING)  # process 0 speaks for the run
    workdir = FLAGS.workdir if FLAGS.workdir is not None else commands.default_workdir()
    if jax.process_index() == 0:  # process 0 writes the run's files
        commands.log_to_file(workdir)
    logging.info("workdir %s; compiled steps cached in %s", workdir, cache or "(off)")
    rsrl.run(FLAGS.config, workdir)


if __name__ == "__main__":
    commands.run(main)
