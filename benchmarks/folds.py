"""How much faster are the k folds trained at once? `python -m benchmarks.folds`.

  python -m benchmarks.folds --config=configs/demo.py --config.protocol.folds=5 [...]
      [--json_out=FILE]

The timed loops are `benchmarks.fold_benchmark`'s; this module holds the flags and main.
"""

import json
import os
import sys
import tempfile

from absl import app, flags, logging
from ml_collections import config_flags

from benchmarks.fold_benchmark import largest_gap, run_folds, warm_up
from rsrl_jax import commands, errors, overrides
from rsrl_jax.config import validate
from rsrl_jax.data import splits
from rsrl_jax.engine import rsrl

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=False)
flags.mark_flags_as_required(["config"])
flags.DEFINE_string("json_out", None, "Also write every figure to this JSON file.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.quiet_libraries()
    config = FLAGS.config
    config.log.progress = False
    config.checkpoint.every_steps = 0  # both modes save round checkpoints only
    validate(config)
    given = overrides.given_on_command_line()
    if config.protocol.folds < 2:
        raise errors.ConfigError(
            f"{overrides.named(config, 'protocol.folds', given)}: one fold has nothing to train "
            "in parallel; compare with several (2 or more), e.g. --config.protocol.folds=5"
        )
    if config.protocol.max_folds == 1:
        raise errors.ConfigError(
            f"{overrides.named(config, 'protocol.max_folds', given)}: one fold has nothing to "
            "train in parallel; set 0 (all folds) or 2 or more"
        )
    with tempfile.TemporaryDirectory(prefix="rsrl_jax_fold_benchmark_") as root:
        experiment = rsrl.Experiment.build(config, root)
        data = experiment.data
        fold_splits = splits.protocol_splits(
            data.labels, config.protocol, config.seed, data.official_test, data.groups
        )
        if config.protocol.max_folds > 0:
            fold_splits = fold_splits[: config.protocol.max_folds]
        for k in (1, len(fold_splits)):  # both modes' steps compiled before the clocks start
            warm_up(experiment, k)
        seq_s, seq = run_folds(experiment, fold_splits, os.path.join(root, "sequential"), False)
        par_s, par = run_folds(experiment, fold_splits, os.path.join(root, "parallel"), True)
    logging.info("sequential %.1fs, parallel %.1fs", seq_s, par_s)
    if FLAGS.json_out:
        figures = {
            "command": " ".join(["python -m benchmarks.folds", *sys.argv[1:]]),
            "folds": len(fold_splits), "rounds": config.rsrl.rounds, "photos": len(data),
            "devices": experiment.mesh.size, "sequential_s": seq_s, "parallel_s": par_s,
            "largest_gap": largest_gap(seq, par), "cpu_count": os.cpu_count(),
            "load_1min_end": os.getloadavg()[0],
        }  # fmt: skip
        with open(FLAGS.json_out, "w") as f:
            json.dump(figures, f, indent=2)
    print(
        f"{len(fold_splits)} folds x {config.rsrl.rounds} rounds, {len(data)} photos, "
        f"{experiment.mesh.size} device(s): sequential {seq_s:.1f}s, parallel {par_s:.1f}s, "
        f"speed-up {seq_s / par_s:.2f}x; largest val/test metric gap {largest_gap(seq, par):.2g}"
    )


if __name__ == "__main__":
    commands.run(main)
