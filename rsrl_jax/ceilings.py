"""Prints the synthetic photos' two ceilings and runs' figures beside them.

  python -m rsrl_jax.ceilings --config=configs/demo.py [--seeds=0,1,2] [--workdirs=A,B,C]

With several seeds the ceilings pool every seed's folds; with several workdirs (e.g. one run
per seed) their figures are printed per workdir and pooled.

The library is `rsrl_jax.analysis.ceilings` (what each ceiling means).
"""

from absl import app, flags
from ml_collections import config_flags

from rsrl_jax import commands, errors
from rsrl_jax.analysis import ceilings
from rsrl_jax.metrics.fold_stats import mean_std

FLAGS = flags.FLAGS


def _pm(stat: dict) -> str:
    if stat["n"] == 1:
        return f"{stat['mean']:.3f}"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f} (n={stat['n']})"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        given = [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise errors.ConfigError(f"--seeds={','.join(FLAGS.seeds)}: must be integers") from None
    run_seeds = {w: ceilings.run_seed(w) for w in FLAGS.workdirs}  # read first: fail fast
    seeds = ceilings.seeds_for(given, run_seeds, FLAGS.config.seed)
    folds = []
    for seed in seeds:
        config = FLAGS.config.copy_and_resolve_references()
        config.seed = seed
        folds += ceilings.ceilings(config)
    print(f"test macro F, mean ± std over {len(folds)} fold(s) of seed(s) {seeds}:")
    for name in ("latent_quality", "scene_factors"):
        print(f"  ceiling, {name.replace('_', ' ')}: {_pm(mean_std([f[name] for f in folds]))}")
    groups = [[w] for w in FLAGS.workdirs]
    if len(FLAGS.workdirs) > 1:
        groups.append(FLAGS.workdirs)
    for group in groups:
        fig = ceilings.run_figures(*group)
        missed = fig["against_test_best"]
        name = group[0] if len(group) == 1 else f"all {len(group)} workdirs"
        print(
            f"  {name}: round 1 train accuracy on D {_pm(fig['round1_train_accuracy'])}, "
            f"test macro F {_pm(fig['round1_test_macro_f1'])}; chosen round(s) "
            f"{fig['chosen_rounds']} test macro F {_pm(fig['chosen_test_macro_f1'])}; the "
            f"validation choice was not the test-best round in {missed['not_test_best']} of "
            f"{len(missed['folds'])} fold(s)"
        )


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
    flags.DEFINE_list(
        "seeds",
        [],
        "Seeds whose splits the ceilings pool; default the workdirs' (else the config's).",
    )
    flags.DEFINE_list("workdirs", [], "Workdirs of runs of that config to show beside.")
    flags.mark_flags_as_required(["config"])
    commands.run(main)
