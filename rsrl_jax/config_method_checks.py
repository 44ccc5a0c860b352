"""`config.validate`'s checks of the method: rsrl.* (rounds, thresholds, the majority
classes) and method.* (selection, losses, sampling, confident learning).

Each `check_*(config, check)` raises errors.ConfigError through `check`
(`config_checks.checker`) at the first field of its section the run cannot use.
"""

import ml_collections

from rsrl_jax.config_checks import SEVERAL, real_numbers
from rsrl_jax.config_data_checks import max_classes
from rsrl_jax.method import confident_learning, losses, sampling, selection

LIKELIHOODS = ("sigmoid", "softmax")


def check_rsrl(config: ml_collections.ConfigDict, check) -> None:
    """rsrl.*: one threshold K in (0, 1] per majority class."""
    rsrl = config.rsrl
    check(rsrl.rounds >= 1, "rsrl.rounds", "must be >= 1")
    check(rsrl.num_majority >= 0, "rsrl.num_majority", "must be >= 0 (0 = no class is thinned)")
    most, why_most = max_classes(config)
    classes = (
        f"{why_most} at most {most} classes"
        if why_most.endswith(("allows", "makes"))
        else f"{why_most}: at most {most} classes"
    )
    range_fix = f"0 to {most - 1}: RSRL thins the num_majority largest classes and keeps a class"
    data_fields = ("data.name", "data.score_range", "data.ava_bins")
    check(
        rsrl.num_majority < most,
        # Its own range: blamed itself when the command line set it, else the data's fields.
        "rsrl.num_majority"
        if "rsrl.num_majority" in check.given
        else ("rsrl.num_majority",) + tuple(f for f in data_fields if f in check.given)[:1],
        {
            "rsrl.num_majority": f"must be {range_fix} ({classes})",
            **dict.fromkeys(
                data_fields,
                f"{classes}, not more than rsrl.num_majority={rsrl.num_majority}: set "
                f"--config.rsrl.num_majority={most - 1} or less",
            ),
        },
    )
    n, ks = rsrl.num_majority, rsrl.thresholds
    check(
        real_numbers(ks) and all(0 < k <= 1 for k in ks),
        "rsrl.thresholds",
        f"must be numbers K in (0, 1], one per majority class, e.g. "
        f"'({','.join(['0.99'] * (n if 1 < n <= 8 else 3))})'",
    )
    example = n if n <= 8 else len(ks) + 1
    both = (
        f"--config.rsrl.num_majority={example} "
        f"--config.rsrl.thresholds='({','.join([str(ks[-1] if ks else 0.99)] * example)}"
        f"{',' if example == 1 else ''})'"
    )
    check(
        len(ks) >= n,
        ("rsrl.thresholds", "rsrl.num_majority"),
        {
            "rsrl.thresholds": f"has {len(ks)} value(s), but rsrl.num_majority={n} needs one K "
            f"in (0, 1] per majority class: give {n}, or set --config.rsrl.num_majority="
            f"{len(ks)} or less",
            "rsrl.num_majority": f"must be at most {len(ks)} (0 to {len(ks)}; also below the "
            f"data's number of classes): rsrl.thresholds has {len(ks)} value(s), one K per "
            f"majority class; to thin more classes set both, e.g. {both}",
            SEVERAL: f"rsrl.num_majority={n} majority classes need one K in (0, 1] each, and "
            f"rsrl.thresholds has {len(ks)}: give {n} thresholds, or set "
            f"--config.rsrl.num_majority={len(ks)} or less",
        },
    )
    check(rsrl.likelihood in LIKELIHOODS, "rsrl.likelihood", f"must be one of {LIKELIHOODS}")
    check(rsrl.min_keep_per_class >= 0, "rsrl.min_keep_per_class", "must be >= 0")
    check(
        0 <= rsrl.drop_quantile < 1,
        "rsrl.drop_quantile",
        "must be in [0, 1): 0 = the paper's absolute K, q drops about a share q of each "
        "majority class",
    )


def check_method(config: ml_collections.ConfigDict, check) -> None:
    """train.epoch_samples and method.*: selection, losses, sampling, confident learning."""
    train = config.train
    check(
        train.epoch_samples in sampling.EPOCH_SAMPLES,
        "train.epoch_samples",
        f"must be one of {sampling.EPOCH_SAMPLES}",
    )
    method = config.method
    check(
        method.selection in selection.SELECTIONS,
        "method.selection",
        f"must be one of {selection.SELECTIONS}",
    )
    check(
        method.random_drop_rule in selection.RANDOM_DROP_RULES,
        "method.random_drop_rule",
        f"must be one of {selection.RANDOM_DROP_RULES}",
    )
    check(method.cl_folds >= 2, "method.cl_folds", "must be >= 2 (copies held out of a part each)")
    check(method.cl_epochs >= 1, "method.cl_epochs", "must be >= 1")
    check(
        method.cl_filter_by in confident_learning.FILTERS,
        "method.cl_filter_by",
        f"must be one of {confident_learning.FILTERS}",
    )
    check(method.loss in losses.LOSSES, "method.loss", f"must be one of {losses.LOSSES}")
    check(
        method.class_weights in losses.CLASS_WEIGHTS,
        "method.class_weights",
        f"must be one of {losses.CLASS_WEIGHTS}",
    )
    check(
        0 <= method.effective_number_beta < 1,
        "method.effective_number_beta",
        "must be in [0, 1)",
    )
    check(method.focal_gamma >= 0, "method.focal_gamma", "must be >= 0")
    check(method.logit_adjustment_tau >= 0, "method.logit_adjustment_tau", "must be >= 0")
    check(
        method.sampling in sampling.SAMPLINGS,
        "method.sampling",
        f"must be one of {sampling.SAMPLINGS}",
    )
    check(
        method.hardness_target >= 0, "method.hardness_target", "must be >= 0 (0 = smallest class)"
    )
