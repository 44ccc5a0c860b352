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
`study.json` (with the budget: runs, folds, the wall time of all the study's commands and
their number, command) and `study.png`.
"""

import json
import math
import os
import time

import ml_collections
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.analysis import (
    report,
    study_advice,
)
from rsrl_jax.config import validate
from rsrl_jax.config_data_checks import GENERATED
from rsrl_jax.data.inputs import reads_features
from rsrl_jax.engine import rsrl
from rsrl_jax.experiments import compare, study_commands, study_sweep

# The study's numbers and tables live in study_stats and study_table; their names stay
# importable from here.
from rsrl_jax.experiments.study_stats import AESTHETIC as AESTHETIC
from rsrl_jax.experiments.study_stats import CONFIDENCE as CONFIDENCE
from rsrl_jax.experiments.study_stats import FIGURES as FIGURES
from rsrl_jax.experiments.study_stats import REFERENCE as REFERENCE
from rsrl_jax.experiments.study_stats import TARGET_HALF_WIDTH as TARGET_HALF_WIDTH
from rsrl_jax.experiments.study_stats import against_reference as against_reference
from rsrl_jax.experiments.study_stats import paired_interval as paired_interval
from rsrl_jax.experiments.study_stats import paper_protocol as paper_protocol
from rsrl_jax.experiments.study_stats import power as power
from rsrl_jax.experiments.study_stats import summarize as summarize
from rsrl_jax.experiments.study_stats import units_needed as units_needed
from rsrl_jax.experiments.study_table import PLOTTED as PLOTTED
from rsrl_jax.experiments.study_table import _diff as _diff
from rsrl_jax.experiments.study_table import _signed as _signed
from rsrl_jax.experiments.study_table import _stat as _stat
from rsrl_jax.experiments.study_table import markdown as markdown
from rsrl_jax.experiments.study_table import plot as plot
from rsrl_jax.experiments.study_table import power_lines as power_lines
from rsrl_jax.files import write_atomic
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
    `command`: the command line, recorded in study.json and commands.jsonl with its wall time
    (the budget: `study_commands`).
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
    files = workdir_files.StudyFiles(workdir)
    study_commands.begin(files, began, command)
    runs = [(configs[key], files.run(*key)) for key in grid]
    rsrl.run_lanes(runs, lanes, reports=False)
    records = {
        n: {m: {s: report.read_records(files.run(n, s, m)) for s in seeds} for m in methods}
        for n in noise
    }
    extents = {
        key: completeness.of_workdir(files.run(*key), records[key[0]][key[2]][key[1]])
        for key in grid
    }
    for key, extent in extents.items():
        if extent.partial:
            logging.warning("%s: %s", files.run(*key), extent.line())
    elapsed = time.perf_counter() - start
    trained = trained_since(files, grid, began)
    wall_s, commands = study_commands.total(
        study_commands.end(files, began, elapsed if trained else None)
    )
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
        # the budget: this command's runs, folds per run, and the wall time of every command
        # that trained them (`study_commands`: runs found finished cost nothing), as the
        # docs' power note reports it
        "runs": len(grid),
        "folds": next(iter(configs.values())).protocol.folds,
        "wall_s": wall_s,
        "commands": commands,
        "cpus": os.cpu_count(),
        "command": command,
        "config": json.loads(config.to_json()),
    }
    out["advice"] = {
        key: study_advice.advise(cells, len(seeds), REFERENCE, TARGET_HALF_WIDTH)
        for key, cells in out["noise"].items()
    }
    write_atomic(files.json, json.dumps(out, indent=2))
    plot(out, files.figure)
    table = markdown(out, config)
    write_atomic(files.table, table)
    logging.info("study of %d runs in %.0fs:\n%s", len(grid), time.perf_counter() - start, table)
    return out


def trained_since(files: workdir_files.StudyFiles, grid, began: float) -> bool:
    """Whether this command, started at `began` (Unix seconds), trained any run of `grid`:
    a run's metrics.jsonl missing (a run that has not recorded a round yet) or written
    since."""
    for key in grid:
        metrics = workdir_files.WorkdirFiles(files.run(*key)).metrics
        if not os.path.exists(metrics) or os.path.getmtime(metrics) >= began:
            return True
    return False


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
