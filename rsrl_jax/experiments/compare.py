"""Does RSRL beat the standard fixes for imbalance? One harness, one budget, one table.

  python -m rsrl_jax.compare --config=configs/demo.py [--config.a.b=v] [--workdir=DIR]
      [--methods=plain,focal,rsrl,random_drop,rsrl+focal]

Each method is the config with a few `method.*` fields set (`PARTS`; `a+b` combines parts,
e.g. RSRL with the focal loss), run into `DIR/<method>/` (all methods as lanes of one
program, `rsrl.run_lanes`; `--lanes` as study's): the same folds, the
same rounds, the same seed, and each is resumable as any run (the same command carries on).

The budget: every method trains `rsrl.rounds` rounds of `train.*epochs*` epochs, and
`train.epoch_samples='all'` makes every epoch as long as a pass over all of D, whatever the
round's selection kept, so each method spends exactly the same optimizer steps per fold
(the table's `steps` column shows it). Methods that select nothing fine-tune on all of D
round after round (a fresh optimizer state each round, as RSRL's), and for every method the
round is chosen on validation macro F. `--equal_steps=False` keeps the config's epochs
instead (RSRL then trains fewer steps on its smaller rounds, as in the paper).

Writes `DIR/compare.md`, `DIR/compare.json` and `DIR/compare.png` (`compare_table`): test
macro F, balanced accuracy, accuracy, the minority- and majority-class averages of precision
and recall, per-class recall and the expected score's aesthetic figures (SRCC, PLCC, MAE,
RMSE, binary accuracy), mean ± std over folds, for the round chosen on validation and,
beside it, the round chosen on test (the paper's protocol, optimistic).
"""

import copy
import json
import os
import time

import ml_collections
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.analysis import compare_table, report
from rsrl_jax.engine import rsrl
from rsrl_jax.files import write_atomic
from rsrl_jax.run import completeness, workdir_lock

# A method is one or more parts joined by '+'; each part sets `method.*` fields (the
# quantile parts also `rsrl.drop_quantile`) over the baseline below (all of D every round,
# cross-entropy, uniform sampling).
BASE = {
    "method.selection": "none",
    "method.loss": "cross_entropy",
    "method.sampling": "uniform",
    "method.random_drop_rule": "rsrl",
}
PARTS = {
    "plain": {},
    "weighted_ce": {
        "method.loss": "weighted_cross_entropy",
        "method.class_weights": "inverse_frequency",
    },
    "effective_number": {
        "method.loss": "weighted_cross_entropy",
        "method.class_weights": "effective_number",
    },
    "focal": {"method.loss": "focal"},
    "logit_adjusted": {"method.loss": "logit_adjusted"},
    # NIMA's ordinal loss (Talebi & Milanfar 2018): the scores are ordered classes.
    "emd": {"method.loss": "emd"},
    "balanced_sampling": {"method.sampling": "class_balanced"},
    "hardness": {"method.selection": "hardness"},
    "rsrl": {"method.selection": "rsrl"},
    # RSRL's class sizes per round, its samples drawn at random: selection against shrinking.
    "random_drop": {"method.selection": "random_drop"},
    # RSRL's quantile rule (rsrl.drop_quantile = 0.5: each round drops about half of each
    # majority class, the least likely first; K unused) and its random_drop control.
    "rsrl_q50": {"method.selection": "rsrl", "rsrl.drop_quantile": 0.5},
    "random_drop_q50": {"method.selection": "random_drop", "rsrl.drop_quantile": 0.5},
    # Confident learning (cleanlab) drops the majority classes' label issues, found from
    # out-of-sample probabilities of cross-fitted copies (extra fits each round).
    "confident_learning": {"method.selection": "confident_learning"},
    # Its counts per round, its samples drawn at random: its control, as random_drop is RSRL's.
    "random_drop_cl": {
        "method.selection": "random_drop",
        "method.random_drop_rule": "confident_learning",
    },
}
# Every part but confident learning's two, whose cross-fitting costs extra fits each round.
DEFAULT_METHODS = tuple(
    p
    for p in PARTS
    if p not in ("confident_learning", "random_drop_cl", "rsrl_q50", "random_drop_q50")
)


def method_fields(method: str) -> dict:
    """The `method.*` fields of a method name such as 'rsrl+focal'."""
    fields, set_by = dict(BASE), {}
    for part in method.split("+"):
        if part not in PARTS:
            raise errors.ConfigError(
                f"--methods: unknown part {part!r} in {method!r}; parts: {list(PARTS)}"
            )
        for key, value in PARTS[part].items():
            if key in set_by and fields[key] != value:
                raise errors.ConfigError(
                    f"--methods: {method!r} sets {key} twice ({set_by[key]!r}: {fields[key]!r}, "
                    f"{part!r}: {value!r}); combine parts that set different fields"
                )
            fields[key], set_by[key] = value, part
    return fields


def method_config(config: ml_collections.ConfigDict, method: str, equal_steps: bool):
    """A copy of `config` with the method's fields (and the equal-steps budget) set."""
    config = copy.deepcopy(config)
    fields = method_fields(method)
    if equal_steps:
        fields["train.epoch_samples"] = "all"
    config.update_from_flattened_dict(fields)
    return config


def compare(
    config: ml_collections.ConfigDict,
    workdir: str,
    methods,
    equal_steps: bool = True,
    lanes: int | None = None,
) -> dict:
    """Runs (or resumes) each method into `workdir/<method>`; writes the table and the plot.

    The methods' runs train as lanes (`rsrl.run_lanes`): `lanes` at most a group (None or
    0: as many as fit in memory; 1: one run after the other)."""
    rsrl.check_lanes(lanes)
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise errors.ConfigError("--methods: name at least one method")
    configs = {m: method_config(config, m, equal_steps) for m in methods}  # bad names fail here
    with workdir_lock.hold(workdir):  # the methods' runs lock their own folders too
        return _compare(config, workdir, methods, configs, equal_steps, lanes)


def _compare(config, workdir: str, methods: list[str], configs: dict, equal_steps, lanes) -> dict:
    os.makedirs(workdir, exist_ok=True)
    start = time.perf_counter()
    for i, method in enumerate(methods):
        logging.info(
            "method %d/%d: %s (%s)",
            i + 1,
            len(methods),
            method,
            ", ".join(f"{k}={configs[method][k]!r}" for k in method_fields(method)),
        )
    files = workdir_files.CompareFiles(workdir)
    rsrl.run_lanes([(configs[m], files.run(m)) for m in methods], lanes)
    summaries = {
        m: compare_table.method_summary(report.read_records(files.run(m)), config.rsrl.num_majority)
        for m in methods
    }
    extents = {m: completeness.of_workdir(files.run(m)) for m in methods}
    partial = {m: e.line() for m, e in extents.items() if e.partial}
    for method, line in partial.items():
        logging.warning("%s: %s", files.run(method), line)
    steps = {m: s["steps"]["mean"] for m, s in summaries.items()}
    if len(set(steps.values())) > 1:
        logging.warning("the methods spent different optimizer steps per fold: %s", steps)
    with open(workdir_files.WorkdirFiles(files.run(methods[0])).classes) as f:
        class_scores = json.load(f)["class_scores"]
    out = {
        "methods": {
            m: {
                "fields": method_fields(m),
                "workdir": m,
                "completeness": extents[m].to_json(),
                **summaries[m],
            }
            for m in methods
        },
        "class_scores": class_scores,
        "equal_steps": equal_steps,
        "config": json.loads(config.to_json()),
    }
    write_atomic(files.json, json.dumps(out, indent=2))
    compare_table.plot(summaries, class_scores, files.figure)
    table = compare_table.markdown(summaries, class_scores, config, equal_steps, partial)
    write_atomic(files.table, table)
    logging.info(
        "compared %d methods in %.0fs:\n%s", len(methods), time.perf_counter() - start, table
    )
    return out
