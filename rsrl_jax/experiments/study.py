"""Does RSRL's edge hold over seeds and rater noise? compare's methods, run many times.

  python -m rsrl_jax.study --config=configs/demo.py [--seeds=0,1,2] [--folds=K]
      [--label_noise=0.1,0.5,1.0] [--methods=plain,rsrl,random_drop,focal,logit_adjusted]
      [--workdir=DIR]

Each (noise level, seed, method) is the config with compare's method fields
(`compare.method_config`, the equal-steps budget), `seed` and `data.label_noise` set, run by
`DIR/noise_<noise>/seed_<seed>/<method>/`: an ordinary run, resumable, so the same command
carries on and reuses finished runs. The runs' folds train as lanes of one program
(`rsrl.run_lanes`, `--lanes`: 0 as many as fit in memory, 1 one at a time).

Per method and noise level, over every seed x fold (a unit): the test figures of the round
chosen on validation macro F (`fold_stats.verdict_figures`: macro F, balanced accuracy,
minority and majority recall; and the expected score's `aesthetic.FIGURES`: SRCC, PLCC,
MAE, RMSE, binary accuracy), mean ± std over the units; the paired difference to `plain`
(same seed, same fold: same photos, same split) with a 95 % t interval; and, pooled over
units, rounds >= 2 and majority classes, the mislabelled share of the photos the selections
dropped and kept (`selection_truth`, synthetic data). Each difference's power (`power`):
whether its interval excludes 0, in words, its half-width (the smallest difference the study
could detect) and the units a half-width of TARGET_HALF_WIDTH needs. Writes `DIR/study.md`,
`study.json` (with the budget: runs, folds, wall time, command) and `study.png`.
"""

import json
import math
import os
import time

import ml_collections
import numpy as np
from absl import logging

from rsrl_jax import errors
from rsrl_jax.analysis import (
    compare_table,
    report,
    selection_truth,
    study_advice,
)
from rsrl_jax.config import validate
from rsrl_jax.config_data_checks import GENERATED
from rsrl_jax.data.inputs import reads_features
from rsrl_jax.engine import rsrl
from rsrl_jax.experiments import compare, study_sweep
from rsrl_jax.files import write_atomic
from rsrl_jax.metrics import aesthetic, fold_stats
from rsrl_jax.run import completeness, workdir_lock

DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_NOISE = (0.1, 0.5, 1.0)
# On embeddings (configs/embeddings.py: 5 folds), 6 seeds x 5 folds = 30 paired units bring
# the half-width of rsrl - plain in macro F to at most 0.01 (docs/study.md "Does RSRL help?",
# measured by tools/study_budget.py).
EMBEDDINGS_SEEDS = tuple(range(6))
# plain (the reference of every difference), RSRL, its control, and compare's two
# strongest loss baselines.
DEFAULT_METHODS = ("plain", "rsrl", "random_drop", "focal", "logit_adjusted")
REFERENCE = "plain"
FIGURES = fold_stats.VERDICT_FIGURES
# The expected score's figures (`aesthetic`): a table of their own per noise level.
AESTHETIC = aesthetic.FIGURES
TITLES = {
    "macro_f1": "macro F",
    "balanced_accuracy": "balanced acc.",
    "minority_recall": "minority R",
    "majority_recall": "majority R",
    **aesthetic.TITLES,
}
PLOTTED = (*FIGURES, "srcc", "plcc")
CONFIDENCE = 0.95
# The difference in macro F a study should resolve: the half-width its power note aims at.
TARGET_HALF_WIDTH = 0.01


def check_grid(methods, seeds, noise) -> tuple[list[str], list[int], list[float]]:
    """The study's methods, seeds and noise levels, deduplicated; a bad one raises
    ConfigError naming its flag."""
    methods, seeds, noise = (list(dict.fromkeys(x)) for x in (methods, seeds, noise))
    if not methods:
        raise errors.ConfigError("--methods: name at least one method")
    for method in methods:
        compare.method_fields(
            study_sweep.base(method)
        )  # unknown parts: "--methods: unknown part ..."
    if not seeds:
        raise errors.ConfigError("--seeds: name at least one seed")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise errors.ConfigError(f"--seeds: {seed!r} is not an integer >= 0")
    if not noise:
        raise errors.ConfigError("--label_noise: name at least one noise level")
    for level in noise:
        if not isinstance(level, int | float) or not math.isfinite(level) or level < 0:
            raise errors.ConfigError(f"--label_noise: {level!r} is not a number >= 0")
    noise = [float(x) for x in noise]
    folders = [f"{n:g}" for n in noise]
    for i, name in enumerate(folders):
        if name in folders[:i]:
            raise errors.ConfigError(
                f"--label_noise: {noise[folders.index(name)]!r} and {noise[i]!r} would share "
                f"the folder noise_{name}; give levels that differ within 6 significant digits"
            )
    return methods, seeds, noise


def default_seeds(config) -> tuple[int, ...]:
    """The seeds a study runs when none are given: EMBEDDINGS_SEEDS on embeddings (cheap
    runs, a budget that resolves 0.01 macro F), DEFAULT_SEEDS otherwise."""
    return EMBEDDINGS_SEEDS if reads_features(config) else DEFAULT_SEEDS


def noise_levels(config, noise) -> tuple[float, ...]:
    """The rater-noise levels to run: `noise`, or by default (None) `DEFAULT_NOISE` on
    synthetic data and the config's own level on real photos, which have no rater to vary
    (ConfigError when given several there)."""
    synthetic = config.data.name in GENERATED
    if noise is None:
        return DEFAULT_NOISE if synthetic else (config.data.label_noise,)
    if not synthetic and set(noise) - {config.data.label_noise}:
        raise errors.ConfigError(
            f"--label_noise: rater noise is drawn only on synthetic data, not "
            f"{config.data.name!r}, whose scores are what they are; leave the flag out"
        )
    return tuple(noise)


def run_dir(noise: float, seed: int, method: str) -> str:
    """A run's folder, relative to the study's workdir."""
    return os.path.join(f"noise_{noise:g}", f"seed_{seed}", method)


def check_folds(folds, config=None) -> int | None:
    """`--folds` as given: None (the config's `protocol.folds`) or an integer >= 1; a bad
    value, or K > 1 where the data's own test list makes one split (AVA's official split),
    raises ConfigError naming the flag."""
    if folds is None:
        return None
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise errors.ConfigError(
            f"--folds: {folds!r} is not an integer >= 1 (K-fold cross-validation per seed; "
            "1 = one split with protocol.test_fraction)"
        )
    if folds > 1 and config is not None:
        data = config.data
        if data.name == "ava" and data.ava_official_split:
            raise errors.ConfigError(
                f"--folds: {folds} folds, but data.ava_official_split=True tests on AVA's own "
                "test list (generic_test.jpgl): one split per seed; set "
                "--config.data.ava_official_split=False for K folds, or leave --folds out"
            )
    return folds


def run_config(config, method: str, seed: int, noise: float, equal_steps: bool = True, folds=None):
    config = compare.method_config(config, study_sweep.base(method), equal_steps)
    study_sweep.apply(config, method)  # a swept cell's field (`--sweep`)
    config.seed = seed
    if folds is not None:  # seeds x folds are the paired units
        config.protocol.folds = folds
    if config.data.name in GENERATED:
        config.data.label_noise = noise
    return config


def paired_interval(diffs, confidence: float = CONFIDENCE) -> dict:
    """{mean, std, n, low, high}: the mean of paired differences and its t interval
    (scipy.stats.t; low/high None for fewer than two pairs). std: the sample std (ddof 1)."""
    from scipy import stats

    d = np.asarray([x for x in diffs if x is not None], np.float64)
    if d.size == 0:
        return {"mean": None, "std": None, "n": 0, "low": None, "high": None}
    mean = float(d.mean())
    if d.size < 2:
        return {"mean": mean, "std": None, "n": 1, "low": None, "high": None}
    std = float(d.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, d.size - 1)) * std / math.sqrt(d.size)
    return {"mean": mean, "std": std, "n": int(d.size), "low": mean - half, "high": mean + half}


def t_half_width(std: float, n: int, confidence: float = CONFIDENCE) -> float:
    """t_{(1+confidence)/2, n-1} * std / sqrt(n): the half-width of a t interval over n."""
    from scipy import stats

    return float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)


def units_needed(std, target: float = TARGET_HALF_WIDTH, confidence: float = CONFIDENCE):
    """The fewest paired units n (>= 2) whose t interval's half-width, at the observed sd
    `std`, is at most `target`; None without an sd (fewer than two pairs)."""
    if std is None:
        return None
    if std == 0:
        return 2
    from scipy import stats

    z = float(stats.norm.ppf((1 + confidence) / 2))
    n = max(2, math.ceil((z * std / target) ** 2))  # t > z: a lower bound
    while t_half_width(std, n, confidence) > target:
        n += 1
    return n


def power(interval: dict, method: str, per_seed: int | None = None) -> dict:
    """What a paired difference (`paired_interval`) resolves: `half_width` (the smallest
    difference the study could detect), `excludes_zero`, `words` ("excludes 0: rsrl is lower
    than plain" / "includes 0: no detectable difference"), `units_needed` for a half-width of
    TARGET_HALF_WIDTH at the observed sd, and with `per_seed` units a seed (its folds), the
    `seeds_needed` for it."""
    n = interval["n"]
    if interval["low"] is None:
        return {
            "half_width": None,
            "excludes_zero": None,
            "words": "no paired units" if not n else "one paired unit: no interval",
            "units_needed": None,
            "seeds_needed": None,
        }
    half = (interval["high"] - interval["low"]) / 2
    excludes = interval["low"] > 0 or interval["high"] < 0
    words = (
        f"excludes 0: {method} is {'higher' if interval['low'] > 0 else 'lower'} than {REFERENCE}"
        if excludes
        else "includes 0: no detectable difference"
    )
    need = units_needed(interval["std"])
    return {
        "half_width": half,
        "excludes_zero": excludes,
        "words": words,
        "units_needed": need,
        "seeds_needed": math.ceil(need / per_seed) if need and per_seed else None,
    }


def units(records_by_seed: dict[int, list[dict]], num_majority: int) -> list[dict]:
    """One entry per seed x fold: the round chosen on validation and its verdict figures."""
    out = []
    for seed, records in sorted(records_by_seed.items()):
        for fold, rs in fold_stats.by_fold(records).items():
            majority = fold_stats.majority_scores(rs[0], num_majority)
            chosen = fold_stats.choose_round(rs, "val")
            on_test = fold_stats.choose_round(rs, "test")  # the paper's protocol: optimistic
            out.append(
                {
                    "seed": seed,
                    "fold": fold,
                    "round": chosen["round"],
                    "val_macro_f1": chosen["val"]["macro_f1"],  # what the advice picks on
                    "test_round": on_test["round"],
                    "test_chosen_macro_f1": on_test["test"]["macro_f1"],
                    **fold_stats.verdict_figures(chosen, majority),
                    **aesthetic.figures(chosen["test"]),
                }
            )
    return out


def cell_summary(records_by_seed: dict[int, list[dict]], num_majority: int) -> dict:
    """One method at one noise level: its units, their mean ± std, the selection's truth."""
    us = units(records_by_seed, num_majority)
    rows = [
        row
        for records in records_by_seed.values()
        for row in selection_truth.truth_rows(records)
        if row["round"] >= 2
    ]
    return {
        "units": us,
        **{
            name: fold_stats.mean_std([u[name] for u in us if u[name] is not None])
            for name in FIGURES + AESTHETIC
        },
        "selection": selection_truth.pooled(rows) if rows else None,
        "kept": study_sweep.kept_shares(records_by_seed, num_majority),
        "paper_protocol": paper_protocol(us),
    }


def paper_protocol(us: list[dict]) -> dict:
    """Test macro F of the round chosen on test (the paper's protocol) over the units, and
    how much it inflates the round chosen on validation's: the paired difference, >= 0 by
    construction, with its 95 % interval."""
    inflation = [u["test_chosen_macro_f1"] - u["macro_f1"] for u in us]
    return {
        "macro_f1": fold_stats.mean_std([u["test_chosen_macro_f1"] for u in us]),
        "inflation": paired_interval(inflation),
    }


def against_reference(cell: dict, reference: dict, method: str = "method") -> dict:
    """Per figure, the paired difference cell - reference over the units both have, and what
    it resolves (`power`)."""
    ref = {(u["seed"], u["fold"]): u for u in reference["units"]}
    seeds = {u["seed"] for u in cell["units"]}
    per_seed = math.ceil(len(cell["units"]) / len(seeds)) if seeds else None
    out = {}
    for name in FIGURES + AESTHETIC:
        diffs = []
        for u in cell["units"]:
            r = ref.get((u["seed"], u["fold"]))
            if r is not None and u[name] is not None and r[name] is not None:
                diffs.append(u[name] - r[name])
        interval = paired_interval(diffs)
        out[name] = {**interval, **power(interval, method, per_seed)}
    return out


def summarize(records: dict, num_majority: int) -> dict:
    """records[noise][method][seed] = that run's metrics.jsonl records ->
    {noise: {method: summary}} (with `diff` to plain when plain is in the study)."""
    out = {}
    for noise, by_method in records.items():
        cells = {m: cell_summary(by_seed, num_majority) for m, by_seed in by_method.items()}
        for method, cell in cells.items():
            cell["diff"] = (
                against_reference(cell, cells[REFERENCE], method)
                if REFERENCE in cells and method != REFERENCE
                else None
            )
        out[f"{noise:g}"] = cells
    return out


def study(
    config: ml_collections.ConfigDict,
    workdir: str,
    methods=DEFAULT_METHODS,
    seeds=None,
    noise=None,
    equal_steps: bool = True,
    lanes: int | None = None,
    folds: int | None = None,
    command: str | None = None,
    sweep: str | None = None,
) -> dict:
    """Runs (or resumes) every run of the grid; writes study.md, study.json and study.png.

    The runs train as lanes (`rsrl.run_lanes`): `lanes` at most a group (None or 0: as many
    as fit in memory; 1: one run after the other, each run's folds one at a time).
    `seeds`: None = the default for the data (`default_seeds`).
    `noise`: the rater-noise levels (`noise_levels`: None = the default for the data).
    `folds`: K-fold cross-validation per seed (None: the config's `protocol.folds`).
    `command`: the command line, recorded in study.json with the wall time (the budget).
    `sweep`: 'FIELD=V1,V2,...' (`study_sweep`): every method but plain that reads the field
    at each value.
    Raises ConfigError naming the flag for a bad method, seed, level or fold count, before
    any run.
    """
    rsrl.check_lanes(lanes)
    seeds = default_seeds(config) if seeds is None else seeds
    methods, seeds, noise = check_grid(methods, seeds, noise_levels(config, noise))
    folds = check_folds(folds, config)
    swept = study_sweep.parse(sweep, config)
    methods = study_sweep.cells(methods, swept, REFERENCE, config)  # where the field is read
    grid = [(n, s, m) for n in noise for s in seeds for m in methods]
    configs = {key: run_config(config, key[2], key[1], key[0], equal_steps, folds) for key in grid}
    for (_, _, method), run in configs.items():  # a bad value stops the study before any run
        try:
            validate(run)
        except errors.ConfigError as e:
            if study_sweep.swept(method) is None:
                raise
            raise errors.ConfigError(f"--sweep: {method}: {e}") from None
    with workdir_lock.hold(workdir):  # each run locks its own folder too
        return _study(
            config,
            workdir,
            methods,
            seeds,
            noise,
            grid,
            configs,
            equal_steps,
            lanes,
            command,
            swept,
        )


def _study(
    config,
    workdir: str,
    methods,
    seeds,
    noise,
    grid,
    configs,
    equal_steps,
    lanes,
    command=None,
    swept=None,
) -> dict:
    os.makedirs(workdir, exist_ok=True)
    start, began = time.perf_counter(), time.time()
    logging.info("%d runs (noise x seed x method), as lanes", len(grid))
    # no report per run: its figures cost more than its training (`report` draws one)
    runs = [(configs[key], os.path.join(workdir, run_dir(*key))) for key in grid]
    rsrl.run_lanes(runs, lanes, reports=False)
    records = {
        n: {
            m: {s: report.read_records(os.path.join(workdir, run_dir(n, s, m))) for s in seeds}
            for m in methods
        }
        for n in noise
    }
    extents = {
        key: completeness.of_workdir(
            os.path.join(workdir, run_dir(*key)), records[key[0]][key[2]][key[1]]
        )
        for key in grid
    }
    for key, extent in extents.items():
        if extent.partial:
            logging.warning("%s: %s", os.path.join(workdir, run_dir(*key)), extent.line())
    out = {
        "methods": {m: compare.method_fields(study_sweep.base(m)) for m in methods},
        "sweep": None if swept is None else {"field": swept[0], "values": swept[1]},
        "seeds": seeds,
        "label_noise": noise,
        "reference": REFERENCE if REFERENCE in methods else None,
        "confidence": CONFIDENCE,
        "equal_steps": equal_steps,
        "noise": summarize(records, config.rsrl.num_majority),
        **partial_runs(extents, len(seeds)),
        "advice": {},
        # the budget: this command's runs, folds per run, wall time (runs it found finished
        # cost nothing), as the docs' power note reports it
        "runs": len(grid),
        "folds": next(iter(configs.values())).protocol.folds,
        "wall_s": wall_seconds(workdir, grid, began, time.perf_counter() - start),
        "cpus": os.cpu_count(),
        "command": command,
        "config": json.loads(config.to_json()),
    }
    out["advice"] = {
        key: study_advice.advise(cells, len(seeds), REFERENCE, TARGET_HALF_WIDTH)
        for key, cells in out["noise"].items()
    }
    write_atomic(os.path.join(workdir, "study.json"), json.dumps(out, indent=2))
    plot(out, os.path.join(workdir, "study.png"))
    table = markdown(out, config)
    write_atomic(os.path.join(workdir, "study.md"), table)
    logging.info("study of %d runs in %.0fs:\n%s", len(grid), time.perf_counter() - start, table)
    return out


def wall_seconds(workdir: str, grid, began: float, elapsed: float) -> float:
    """The study's wall time: this command's `elapsed` seconds, unless it trained nothing (no
    run's metrics.jsonl written since `began`): then the time the study.json it found
    records, so rebuilding the tables over finished runs keeps the budget it measured."""
    for key in grid:
        metrics = os.path.join(workdir, run_dir(*key), "metrics.jsonl")
        if not os.path.exists(metrics) or os.path.getmtime(metrics) >= began:
            return elapsed
    try:
        with open(os.path.join(workdir, "study.json")) as f:
            return float(json.load(f)["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return elapsed  # none recorded (a study from before the budget was)


def partial_runs(extents: dict, seeds: int) -> dict:
    """What the study's runs (`extents`: (noise, seed, method) -> `Completeness`) lack:
    `partial_runs`, one entry per partial run with its line; `units_planned`, the seed x fold
    units a figure would rest on with every fold run (None: unknown)."""
    folds = [e.folds for e in extents.values() if e.folds is not None]
    return {
        "partial_runs": [
            {"label_noise": n, "seed": s, "method": m, "line": e.line()}
            for (n, s, m), e in extents.items()
            if e.partial
        ],
        "units_planned": seeds * max(folds) if folds else None,
    }


def _stat(s: dict) -> str:
    if not s["n"]:
        return "–"
    return f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if s["n"] > 1 else "")


def _signed(x: float) -> str:
    return f"{round(x, 3) + 0.0:+.3f}"  # + 0.0: a difference that rounds to 0 is +0.000


def _diff(d: dict | None, planned: int | None = None) -> str:
    """A paired difference and its interval; with `planned` units (a study with partial
    runs), how many pairs it rests on when fewer."""
    if d is None or not d["n"]:
        return "–"
    pairs = f" (n={d['n']} of {planned})" if planned and d["n"] < planned else ""
    if d["low"] is None:
        return _signed(d["mean"]) + pairs
    return f"{_signed(d['mean'])} [{_signed(d['low'])}, {_signed(d['high'])}]{pairs}"


def power_lines(cells: dict, planned: int | None = None) -> list[str]:
    """Per method, its differences to plain in words: macro F's interval, whether it excludes
    0, the smallest difference the study could detect (the half-width) and the units (seeds)
    a half-width of TARGET_HALF_WIDTH needs; then every other figure's verdict."""
    compared = [(m, c["diff"]) for m, c in cells.items() if c["diff"] is not None]
    if not compared:
        return []
    lines = [
        "",
        f"Power: each difference to `{REFERENCE}` in words (does its "
        f"{100 * CONFIDENCE:.0f} % interval exclude 0?) and the smallest difference the study "
        "could detect (the interval's half-width, t × sd / √n over the n paired units).",
        "",
    ]
    for method, diff in compared:
        d = diff["macro_f1"]
        text = f"- **{method} − {REFERENCE}**, macro F: {_diff(d, planned)}"
        if d["half_width"] is None:
            text += f" ({d['words']}): no interval, so no detectable difference to state."
        else:
            text += (
                f" over n = {d['n']} paired units (seed × fold): {d['words']}. The study could "
                f"detect differences of about ±{d['half_width']:.3f} macro F (half-width)"
            )
            if d["half_width"] <= TARGET_HALF_WIDTH:
                text += f", within the ±{TARGET_HALF_WIDTH:g} aimed at."
            else:
                seeds = d.get("seeds_needed")
                text += (
                    f"; at the observed sd ({d['std']:.3f}), {d['units_needed']} units"
                    + (f" ({seeds} seeds of this study's folds)" if seeds else "")
                    + f" would bring it to ±{TARGET_HALF_WIDTH:g}."
                )
        others = [
            f"{TITLES[n]} {_diff(diff[n])}: {diff[n]['words']}"
            for n in FIGURES + AESTHETIC
            if n != "macro_f1"
        ]
        lines.append(text + " Others: " + "; ".join(others) + ".")
    return lines


def _pct(share) -> str:
    return "–" if share is None else f"{100 * share:.0f} %"


def markdown(out: dict, config) -> str:
    seeds, noise = out["seeds"], out["label_noise"]
    first = next(iter(next(iter(out["noise"].values())).values()))
    folds = len({u["fold"] for u in first["units"]})
    synthetic = config.data.name in GENERATED
    levels = ", ".join(f"{n:g}" for n in noise)
    partial = out.get("partial_runs") or []
    planned = out.get("units_planned") if partial else None  # n shown only where runs lack
    marked = {(f"{p['label_noise']:g}", p["method"]) for p in partial}
    lines = [
        "# RSRL over seeds and rater noise" if synthetic else "# RSRL over seeds",
        "",
        f"`{config.data.name}` data; seeds {', '.join(map(str, seeds))}; "
        + (f"rater noise (`data.label_noise`) {levels}; " if synthetic else "")
        + f"{folds} fold(s) per seed, "
        f"{config.rsrl.rounds} round(s) per run; "
        + (
            "every epoch a pass over all of D, so every method spends the same steps."
            if out["equal_steps"]
            else "the config's epochs (steps may differ)."
        ),
        "Each cell: the test figure of the round chosen on validation macro F, mean ± std over "
        "seeds x folds; below each method, the paired difference to `plain` (same seed, same "
        f"fold) with its {100 * out['confidence']:.0f} % t interval. Majority: the "
        f"{config.rsrl.num_majority} largest classes of each fold's D.",
        "",
    ]
    if partial:
        lines += [
            f"Rows marked{compare_table.PARTIAL} hold a partial run: their figures rest on the "
            "folds and rounds that ran, and each difference to `plain` says on how many paired "
            f"units (n) it rests when fewer than the {planned} planned. "
            + " ".join(
                f"`{run_dir(p['label_noise'], p['seed'], p['method'])}`: {p['line']}."
                for p in partial
            ),
            "",
        ]
    for key, cells in out["noise"].items():
        lines += [
            f"## Rater noise {key}" if synthetic else "## Results",
            "",
            "| method | " + " | ".join(TITLES[n] for n in FIGURES) + " | dropped / kept "
            "mislabelled (chance) |",
            "| --- | " + " | ".join("---" for _ in FIGURES) + " | --- |",
        ]
        for method, cell in cells.items():
            sel = cell["selection"]
            truth = (
                "–"
                if sel is None
                else f"{_pct(sel['dropped'])} / {_pct(sel['kept'])} ({_pct(sel['chance'])})"
            )
            name = method + (compare_table.PARTIAL if (key, method) in marked else "")
            lines.append(
                f"| {name} | " + " | ".join(_stat(cell[n]) for n in FIGURES) + f" | {truth} |"
            )
            if cell["diff"] is not None:
                lines.append(
                    "| − plain | "
                    + " | ".join(_diff(cell["diff"][n], planned) for n in FIGURES)
                    + " | |"
                )
        lines += [
            "",
            f"Aesthetic figures{f', rater noise {key}' if synthetic else ''}: the expected "
            "score (softmax-weighted mean "
            "of the class scores) against the true score on test; binary accuracy: good above "
            f"{config.eval.good_threshold:g}. A unit where a correlation is undefined (constant "
            "predictions) is left out.",
            "",
            "| method | " + " | ".join(TITLES[n] for n in AESTHETIC) + " |",
            "| --- | " + " | ".join("---" for _ in AESTHETIC) + " |",
        ]
        for method, cell in cells.items():
            name = method + (compare_table.PARTIAL if (key, method) in marked else "")
            lines.append(f"| {name} | " + " | ".join(_stat(cell[n]) for n in AESTHETIC) + " |")
            if cell["diff"] is not None:
                lines.append(
                    "| − plain | "
                    + " | ".join(_diff(cell["diff"][n], planned) for n in AESTHETIC)
                    + " |"
                )
        lines += power_lines(cells, planned)
        lines += study_sweep.markdown(out, key, REFERENCE)
        lines.append("")
    lines += [
        (
            "Mislabelled: the photo's score differs from the noiseless rater's; pooled over "
            "seeds, folds, rounds >= 2 and majority classes. "
            if synthetic
            else "Mislabelled shares need a known rater (synthetic data): none here. "
        )
        + "Each run (metrics, checkpoints) is in `noise_<noise>/seed_<seed>/<method>/`; "
        + "`python -m rsrl_jax.report --workdir=<that folder>` draws its report.",
        "",
        "![study](study.png)",
        "",
    ]
    lines += advice_lines(out, synthetic)
    return "\n".join(lines)


def advice_lines(out: dict, synthetic: bool) -> list[str]:
    """study.md's closing section: what the evidence supports (`study_advice`), per level."""
    advice = out.get("advice") or {}
    if not advice:
        return []
    lines = [
        "## What the evidence supports",
        "",
        "The method with the best validation macro F, recommended only where its test interval "
        f"against `{REFERENCE}` excludes 0.",
        "",
    ]
    for key, given in advice.items():
        lines.append((f"- Rater noise {key}: " if synthetic else "- ") + given["words"])
    return lines + [""]


def plot(out: dict, path: str) -> None:
    """One panel per figure of PLOTTED: mean ± std over seeds x folds against rater noise, per
    method, each axis fitted to its values (within 0..1, a correlation's within -1..1)."""
    from rsrl_jax.analysis.figures import fit_y, legend_below, new_figure

    noise = out["label_noise"]
    methods = list(out["methods"])
    fig = new_figure(4 * len(PLOTTED), 3.8)
    axes = fig.subplots(1, len(PLOTTED))
    for ax, name in zip(axes, PLOTTED, strict=True):
        for i, method in enumerate(methods):
            stats = [out["noise"][f"{n:g}"][method][name] for n in noise]
            mean = [s["mean"] if s["n"] else np.nan for s in stats]
            std = [s["std"] if s["n"] else 0.0 for s in stats]
            x = np.arange(len(noise)) + (i - (len(methods) - 1) / 2) * 0.06
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=2, label=method)
        ax.set_xticks(np.arange(len(noise)), [f"{n:g}" for n in noise])
        ax.set(title=TITLES[name], xlabel="rater noise (data.label_noise)")
        fit_y(ax, -1 if name in AESTHETIC else 0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test, round chosen on validation")
    legend_below(fig, axes[0])  # below the panels: never on the error bars
    fig.savefig(path, dpi=100)
