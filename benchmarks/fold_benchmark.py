"""How much faster are the k folds trained at once? Prints sequential vs parallel seconds.

  python -m benchmarks.folds --config=configs/demo.py --config.protocol.folds=5 [...]

Runs the config's round loop over its folds twice on the same compiled steps, in temporary
workdirs: fold after fold (`protocol.parallel_folds=False`) and all folds at once (True).
Both modes' steps are compiled first (`warm_up`), so compilation is left out of the times.
Prints the seconds of each (training, likelihood passes, evaluation and checkpoints of every
round, as a run spends them), their ratio, and how far the two runs' metrics are apart.
The command (flags, the two timed runs and the printing) is `benchmarks.folds`.
"""

import os
import time

import jax
import numpy as np

from rsrl_jax.engine import evaluation, fold_axis, train
from rsrl_jax.method import losses
from rsrl_jax.models import pretrained


def run_folds(experiment, fold_splits, workdir: str, parallel: bool) -> tuple[float, list]:
    """(seconds, records) of the whole round loop over `fold_splits` in a new `workdir`."""
    os.makedirs(workdir, exist_ok=True)
    start = time.perf_counter()
    records = experiment.in_workdir(workdir).run_folds(fold_splits, parallel=parallel)
    return time.perf_counter() - start, records


def warm_up(experiment, k: int) -> None:
    """Compiles the train step over `k` folds and the forward step (a throwaway state and an
    empty batch), so that compilation is left out of the timed runs."""
    config, placer = experiment.config, experiment.lane_placer(k)
    params = experiment.placer.replicate(pretrained.initial_params(config, experiment.model, 0))
    state = placer.replicate(fold_axis.stack([train.new_state(params, experiment.tx)] * k))
    sums = placer.replicate(fold_axis.stack([train.zero_sums()] * k))
    index = np.zeros((k, config.train.batch_size), np.int64)
    images, labels = experiment.data.images[index], experiment.data.labels[index]
    x, y, m = placer.shard(images, labels, np.zeros(index.shape, np.float32))
    keys = fold_axis.round_keys(config.seed, list(range(k)), 1, placer.replicated)
    counts = np.bincount(experiment.data.labels, minlength=experiment.data.num_classes)
    terms = placer.replicate(fold_axis.stack([losses.loss_terms(counts, config.method)] * k))
    jax.block_until_ready(experiment.fold_step(k)(state, sums, x, y, m, keys, terms))
    evaluation.logits(experiment, params, np.arange(1))


def largest_gap(a: list[dict], b: list[dict]) -> float:
    """The largest difference of val/test macro F and accuracy between matching records."""
    key = lambda r: (r["fold"], r["round"])  # noqa: E731
    gaps = [
        abs(x[part][name] - y[part][name])
        for x, y in zip(sorted(a, key=key), sorted(b, key=key), strict=True)
        for part in ("val", "test")
        for name in ("macro_f1", "accuracy")
    ]
    return max(gaps)
