"""Prints the synthetic photos' two ceilings and runs' figures beside them.

  python -m rsrl_jax.ceilings --config=configs/demo.py [--workdirs=runs/demo,runs/scratch]

The library is `rsrl_jax.analysis.ceilings` (what each ceiling means).
"""

from absl import app, flags
from ml_collections import config_flags

from rsrl_jax import cli
from rsrl_jax.analysis import ceilings
from rsrl_jax.analysis.fold_stats import mean_std

FLAGS = flags.FLAGS


def _pm(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f} (n={stat['n']})"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    folds = ceilings.ceilings(FLAGS.config)
    print(f"test macro F on the config's {len(folds)} fold(s), mean ± std over folds:")
    for name in ("latent_quality", "scene_factors"):
        print(f"  ceiling, {name.replace('_', ' ')}: {_pm(mean_std([f[name] for f in folds]))}")
    for workdir in FLAGS.workdirs:
        fig = ceilings.run_figures(workdir)
        print(
            f"  {workdir}: round 1 train accuracy on D {_pm(fig['round1_train_accuracy'])}, "
            f"test macro F {_pm(fig['round1_test_macro_f1'])}; chosen round(s) "
            f"{fig['chosen_rounds']} test macro F {_pm(fig['chosen_test_macro_f1'])}"
        )


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
    flags.DEFINE_list("workdirs", [], "Workdirs of runs of that config to show beside.")
    flags.mark_flags_as_required(["config"])
    cli.run(main)
