"""How far a network could get on the synthetic photos: two ceilings, and runs beside them.

  python -m rsrl_jax.ceilings --config=configs/demo.py [--workdirs=runs/demo,runs/scratch]
  python -m rsrl_jax.ceilings --config=configs/synthetic_embeddings.py  # the same rater

On the run's own folds (the same seed and protocol give the same splits), per fold:

* **latent quality**: the noiseless quality q that the synthetic rater scores, cut into
  classes by thresholds fitted on the training part (D and validation: q's quantiles at the
  training part's class shares). The best any classifier of the photos can do, up to how
  noisy the rater is (`data.label_noise`).
* **scene factors**: gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier,
  its defaults, seeded) given the seven exact factors the rater scores. What a learner that
  saw each factor exactly, but not the rater's formula, reaches from this many photos.

Beside them, each workdir's round 1 (training accuracy on D, test macro F) and its
validation-chosen round (test macro F). Test macro F is over the classes present, as every
figure of a run (`metrics.classification.classification_report`).
"""

from __future__ import annotations

import json
import os

import numpy as np

from rsrl_jax import overrides, workdir_files
from rsrl_jax.analysis import report, report_verdict
from rsrl_jax.config_data_checks import GENERATED
from rsrl_jax.data import splits as splits_lib
from rsrl_jax.data import synthetic
from rsrl_jax.errors import ConfigError, NotFound
from rsrl_jax.metrics import classification, fold_stats
from rsrl_jax.run import completeness


def _macro_f(y_true, y_pred, num_classes: int) -> float:
    return classification.classification_report(y_true, y_pred, num_classes)["macro_f1"]


def latent_quality_prediction(q_train, y_train, q_test, num_classes: int) -> np.ndarray:
    """Classes of `q_test` by thresholds on q fitted on (q_train, y_train).

    The threshold between class c and c+1 is q_train's quantile at the share of training
    samples in classes <= c: classes by rank, as the rater assigns them.
    """
    shares = np.cumsum(np.bincount(y_train, minlength=num_classes))[:-1] / len(y_train)
    thresholds = np.quantile(q_train, shares)
    return np.searchsorted(thresholds, q_test, side="right").astype(np.int32)


def factor_prediction(f_train, y_train, f_test, seed: int) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier  # only this command needs it

    model = HistGradientBoostingClassifier(random_state=seed)
    return model.fit(f_train, y_train).predict(f_test).astype(np.int32)


def ceilings(config) -> list[dict]:
    """Per fold: {fold, latent_quality, scene_factors} test macro F on `config`'s splits
    (those of its `seed`)."""
    if config.data.name not in GENERATED:
        named = overrides.named(config, "data.name", overrides.given_on_command_line())
        raise ConfigError(
            f"{named}: ceilings need a known rater: the synthetic photos (data.name="
            "'synthetic') or vectors (data.name='synthetic_embeddings')"
        )
    # Both data sets rate the same scenes: their factors and scores, without rendering
    _, photos = synthetic.rated_scenes(
        config.data.num_examples, config.seed, config.data.label_noise
    )
    scores = photos.scores
    class_scores = np.unique(scores)
    labels = np.searchsorted(class_scores, scores).astype(np.int32)
    c = len(class_scores)
    factors = np.stack([photos.factors[k] for k in synthetic.FACTOR_NAMES], axis=1)
    q = photos.factors["quality"]
    out = []
    folds = splits_lib.protocol_splits(labels, config.protocol, config.seed)
    if config.protocol.max_folds:
        folds = folds[: config.protocol.max_folds]
    for f, split in enumerate(folds):
        fit = np.concatenate([split.train, split.val])
        latent = latent_quality_prediction(q[fit], labels[fit], q[split.test], c)
        trees = factor_prediction(factors[fit], labels[fit], factors[split.test], config.seed)
        out.append(
            {
                "fold": f,
                "latent_quality": _macro_f(labels[split.test], latent, c),
                "scene_factors": _macro_f(labels[split.test], trees, c),
            }
        )
    return out


def run_figures(*workdirs: str) -> dict:
    """Runs' round 1 (train accuracy on D, test macro F) and chosen round (test macro F),
    each as fold_stats.mean_std over the folds of all `workdirs` (e.g. one run per seed)."""
    records = [r for w in workdirs for r in _tagged(report.read_records(w), w)]
    for w in workdirs:  # its figures rest on the folds and rounds that ran
        completeness.warn_if_partial(w)
    first = [r for r in records if r["round"] == 1]
    choice = fold_stats.chosen_rounds(records)
    chosen = report_verdict.chosen_records(records, choice)
    missed = fold_stats.against_test_best(records, choice)
    return {
        "round1_train_accuracy": fold_stats.mean_std([r["train"]["accuracy"] for r in first]),
        "round1_test_macro_f1": fold_stats.mean_std([r["test"]["macro_f1"] for r in first]),
        "chosen_test_macro_f1": fold_stats.mean_std([r["test"]["macro_f1"] for r in chosen]),
        "chosen_rounds": [r["round"] for r in chosen],
        "against_test_best": missed,
    }


def _tagged(records: list[dict], workdir: str) -> list[dict]:
    """Records with `fold` made unique across workdirs, so runs pool as folds do."""
    return [{**r, "fold": (workdir, r["fold"])} for r in records]


def run_seed(workdir: str) -> int:
    """The seed a run used (its config.json); errors.NotFound if `workdir` holds no run."""
    report.read_records(workdir)  # names a missing workdir or metrics.jsonl
    path = workdir_files.WorkdirFiles(workdir).config
    if not os.path.isfile(path):
        raise NotFound(f"{path} not found: is {workdir} the workdir of a run?")
    with open(path) as f:
        return int(json.load(f)["seed"])


def seeds_for(given: list[int], run_seeds: dict[str, int], config_seed: int) -> list[int]:
    """The seeds whose splits the ceilings are computed on: `given`, else the runs' seeds
    (each once, in order), else the config's. errors.ConfigError if a run's seed is not
    among `given`: its figures would sit beside other splits' ceilings."""
    for workdir, seed in run_seeds.items():
        if given and seed not in given:
            raise ConfigError(
                f"--seeds={','.join(map(str, given))}: {workdir} is a run of seed {seed}; "
                f"add it to --seeds or leave --seeds out (the runs' seeds are used)"
            )
    if given:
        return given
    return list(dict.fromkeys(run_seeds.values())) or [config_seed]
