"""compare's methods over seeds and rater-noise levels, with paired intervals to `plain`.

  python -m rsrl_jax.study --config=configs/demo.py [--config.a.b=v] [--workdir=DIR]
      [--seeds=0,1,2] [--folds=K] [--label_noise=0.1,0.5,1.0]
      [--methods=plain,rsrl,random_drop,focal,logit_adjusted] [--sweep=FIELD=V1,V2,...]

The library function is `rsrl_jax.experiments.study.study`.
"""

import shlex
import sys

from absl import app, flags
from ml_collections import config_flags

from rsrl_jax import commands, errors, workdir_files
from rsrl_jax.experiments.compare import PARTS
from rsrl_jax.experiments.study import (
    DEFAULT_METHODS,
    DEFAULT_NOISE,
    DEFAULT_SEEDS,
    EMBEDDINGS_SEEDS,
    study,
)

FLAGS = flags.FLAGS


def parse_values(flag: str, values, kind):
    """The flag's list items as `kind` (int or float); ConfigError naming the flag."""
    out = []
    for value in values:
        try:
            out.append(kind(value))
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise errors.ConfigError(f"--{flag}: {value!r} is not {what}") from None
    return out


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.quiet_libraries()
    commands.enable_compilation_cache()  # a study run again, or resumed, compiles nothing
    # by default the data's seeds (`default_seeds`: more on embeddings)
    seeds = parse_values("seeds", FLAGS.seeds, int) if FLAGS["seeds"].present else None
    noise = parse_values("label_noise", FLAGS.label_noise, float)
    if not FLAGS["label_noise"].present:
        noise = None  # the default levels on synthetic data, none to vary on real photos
    workdir = (
        FLAGS.workdir if FLAGS.workdir is not None else commands.default_workdir(prefix="study_")
    )
    commands.log_to_file(workdir)
    command = shlex.join(["python", "-m", "rsrl_jax.study", *sys.argv[1:]])
    study(
        FLAGS.config,
        workdir,
        FLAGS.methods,
        seeds,
        noise,
        FLAGS.equal_steps,
        lanes=FLAGS.lanes,
        folds=FLAGS.folds,
        command=command,
        sweep=FLAGS.sweep,
    )
    print(workdir_files.StudyFiles(workdir).table)


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
    flags.DEFINE_string("workdir", None, "Output directory; default runs/study_<config name>.")
    flags.DEFINE_list(
        "seeds",
        [str(s) for s in DEFAULT_SEEDS],
        "Seeds (config.seed), each >= 0; on embeddings (data.name=embeddings) by default "
        f"{','.join(map(str, EMBEDDINGS_SEEDS))}.",
    )
    flags.DEFINE_integer(
        "folds",
        None,
        "K-fold cross-validation per seed (config.protocol.folds of every run; 1 = one split "
        "with protocol.test_fraction); seeds x folds are the paired units. Default: the "
        "config's.",
    )
    flags.DEFINE_list(
        "label_noise",
        [f"{n:g}" for n in DEFAULT_NOISE],
        "Rater-noise levels (config.data.label_noise, synthetic data), each >= 0; on real "
        "photos, by default the config's own (unused) level.",
    )
    flags.DEFINE_list(
        "methods",
        list(DEFAULT_METHODS),
        f"Methods as compare's: parts {list(PARTS)}, joined by '+' to combine (e.g. rsrl+focal).",
    )
    commands.define_lane_flags()
    flags.DEFINE_string(
        "sweep",
        None,
        "A config field as a study axis, FIELD=V1,V2,... (e.g. rsrl.thresholds=0.9,0.99, "
        "rsrl.drop_quantile=0.3,0.5, train.first_round_epochs=5,20): every method but plain "
        "runs at each value, paired against plain; study.md shows the kept share per class.",
    )
    flags.mark_flags_as_required(["config"])
    commands.run(main)
