"""One study four ways: `python -m benchmarks --study`.

  python -m benchmarks --study [--study_data=embeddings|photos] [--study_seeds=10]
      [--study_methods=plain,rsrl,random_drop] [--study_folds=5] [--study_rounds=6]
      [--study_examples=3000] [--study_dim=128] [--study_overrides=field=value,...]

(a) our study (`experiments.study.study`, runs packed into lanes: `lanes=None`), (b) the same
runs one at a time (`lanes=1`, today's way), (c) a plain PyTorch loop of the same runs
(`bench.torch_loop.run_study`: configs/embeddings.py's MLP head, the same vectors, splits,
schedule and selection rule per method, one process, torch's threads = this machine's
cores as XLA's), (d) the study's FLOP-bound time: its matmul FLOPs (`study_flops`) at this
machine's best measured sgemm rate (`sgemm_rate`). A `study` without a `lanes` parameter
(before lanes) runs (a) as (b): both sides are then the loop.

The yardstick: one 5-fold run of the same config (`python -m rsrl_jax.main`, method rsrl,
seed 0) against the whole study. Every side is its own process, timed from its start to its
exit; our processes share one new compilation cache, filled first (`warmup`, untimed) by
each of them at a short schedule (`WARMUP_SCHEDULE`): the same programs, so that each
timed side is its work with a warm cache, as a user's second try. The PyTorch loop
compiles nothing (eager). `sides`: which of (a), (b), (c) to time; (d) and the yardstick
always. (a) and (b) are split with what the
runs write (their timings.jsonl, file times) and JAX's compile events (`split_study`).

Embeddings: `examples` x `dim` vectors with the demo's class shares (`embeddings_data`),
read by data.name=embeddings. Photos: configs/demo.py with `PHOTO_BUDGET` ((a) and (b)
only: the PyTorch loop and the FLOP count are the head's).
"""

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from benchmarks import whole_run
from rsrl_jax import errors

DATA = ("embeddings", "photos")
# Per data kind: (seeds, folds, rounds) when the flags leave them out. Embeddings: the
# issue's yardstick, 3 methods x 10 seeds, 5 folds, 6 rounds on 3000 x 128 vectors.
SIZES = {"embeddings": (10, 5, 6), "photos": (2, 1, 3)}
DEFAULT_METHODS = ("plain", "rsrl", "random_drop")
# The photo study's budget over configs/demo.py: a few epochs a round.
PHOTO_BUDGET = ("train.first_round_epochs=3", "train.epochs_per_round=1")
# The warm-up's schedule: 2 rounds of 1 epoch train every program of a longer run (the
# rounds after the first select; the step's shapes do not depend on the epochs).
WARMUP_SCHEDULE = ("rsrl.rounds=2", "train.first_round_epochs=1", "train.epochs_per_round=1")
SGEMM_SIZES = ((64, 128, 512), (1024, 128, 512), (512, 512, 512), (1024, 1024, 1024))
SIDES = {
    "a": "(a) our study on lanes",
    "b": "(b) our runs one at a time",
    "c": "(c) PyTorch loop of the runs",
    "d": "(d) FLOP bound at sgemm rate",
}
OUR_PARTS = (
    "imports_s",
    "compile_s",
    "training_s",
    "evaluation_s",
    "checkpoints_s",
    "reporting_s",
    "other_s",
)
TORCH_PARTS = (
    "imports_s",
    "setup_s",
    "training_s",
    "likelihood_passes_s",
    "evaluation_s",
    "selection_s",
    "checkpoints_s",
    "other_s",
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The study the benchmark times (the `--study_*` flags say what each field means)."""

    data: str = "embeddings"
    seeds: int | None = None  # None: SIZES[data]
    methods: tuple[str, ...] = DEFAULT_METHODS
    folds: int | None = None
    rounds: int | None = None
    examples: int = 3000
    dim: int = 128
    overrides: tuple[str, ...] = ()
    warmup: bool = True
    torch: bool = True
    torch_threads: int = 0  # 0: this machine's cores, as XLA:CPU's
    sides: tuple[str, ...] = ("a", "b", "c")  # (d) and the yardstick always

    def resolved(self) -> "Settings":
        seeds, folds, rounds = SIZES[self.data]
        return dataclasses.replace(
            self,
            seeds=seeds if self.seeds is None else self.seeds,
            folds=folds if self.folds is None else self.folds,
            rounds=rounds if self.rounds is None else self.rounds,
        )


def check(settings: Settings) -> Settings:
    """The settings with their sizes filled in; ConfigError naming the flag of a bad one."""
    if settings.data not in DATA:
        raise errors.ConfigError(f"--study_data={settings.data}: one of {list(DATA)}")
    s = settings.resolved()
    for flag, value, least in (
        ("study_seeds", s.seeds, 1),
        ("study_folds", s.folds, 1),
        ("study_rounds", s.rounds, 1),
        ("study_examples", s.examples, 20),
        ("study_dim", s.dim, 1),
        ("study_torch_threads", s.torch_threads, 0),
    ):
        if value < least:
            raise errors.ConfigError(f"--{flag}={value}: must be at least {least}")
    unknown = [side for side in s.sides if side not in ("a", "b", "c")]
    if unknown or "a" not in s.sides:
        raise errors.ConfigError(
            f"--study_sides={','.join(s.sides)}: some of a, b, c, with a (the ratios' base)"
        )
    if not s.methods:
        raise errors.ConfigError("--study_methods: name at least one method")
    from rsrl_jax.experiments import compare

    for method in s.methods:
        try:
            compare.method_fields(method)
        except errors.ConfigError as e:  # it names --methods, study's flag
            raise errors.ConfigError(str(e).replace("--methods", "--study_methods", 1)) from None
    return s


def embeddings_data(folder: str, examples: int, dim: int, seed: int = 0) -> str:
    """Writes `folder`/embeddings.npz: `examples` x `dim` float32 vectors whose scores have the
    synthetic photos' class shares (`synthetic.scores_by_rank`). A latent quality q and 7 more
    latent factors, mapped to `dim` features by a fixed random matrix, plus noise; the score
    is the rank cut of q plus rater noise: a signal a head can learn, not perfectly."""
    from rsrl_jax.data import embeddings, synthetic

    rng = np.random.default_rng([seed, examples, dim])
    latent = rng.standard_normal((examples, 8))
    mixing = rng.standard_normal((8, dim)) / np.sqrt(8)
    x = latent @ mixing + 0.5 * rng.standard_normal((examples, dim))
    scores = synthetic.scores_by_rank(latent[:, 0] + 0.5 * rng.standard_normal(examples))
    ids = [f"v{i}" for i in range(examples)]
    return embeddings.write(folder, x.astype(np.float32), ids, scores)


def study_config(settings: Settings, data_dir: str | None):
    """(config, its field=value items over the data kind's config file)."""
    from configs import demo, embeddings
    from rsrl_jax import overrides as override
    from rsrl_jax.config import validate

    items = [f"protocol.folds={settings.folds}", f"rsrl.rounds={settings.rounds}"]
    if settings.data == "embeddings":
        items.insert(0, f"data.dir={data_dir}")
        config = embeddings.get_config()
    else:
        items += list(PHOTO_BUDGET)
        config = demo.get_config()
    merged = {item.split("=", 1)[0]: item for item in [*items, *settings.overrides]}
    items = list(merged.values())
    override.apply(config, items)  # ConfigError naming a wrong field or value
    validate(config)
    return config, items


def study_flops(dims: list[int], split_sizes: list[tuple[int, int, int]], config) -> dict:
    """The study's matmul FLOPs, per run (method) summed over `split_sizes` [(|D|, |val|,
    |test|)], one entry per seed x fold, and times the methods by the caller.

    A dense layer of `a` inputs and `b` outputs costs 2ab FLOPs a sample forward and 3x that
    trained (forward, the input's and the weights' gradients). Each round trains its epochs
    on |D| samples (the study's equal steps: every epoch as long as D) and passes its network
    over D, validation and test once. `dims`: D, the hidden widths, the classes.
    """
    forward = sum(2 * a * b for a, b in zip(dims[:-1], dims[1:], strict=True))
    rounds = config.rsrl.rounds
    first = config.train.first_round_epochs or config.train.epochs_per_round
    epochs = first + (rounds - 1) * config.train.epochs_per_round
    train = sum(3 * forward * epochs * d for d, _, _ in split_sizes)
    evaluation = sum(forward * rounds * (d + v + t) for d, v, t in split_sizes)
    return {
        "forward_per_sample": forward,
        "epochs_per_fold": epochs,
        "training": train,
        "evaluation": evaluation,
        "total": train + evaluation,
    }


def sgemm_rate(sizes=SGEMM_SIZES, repeats: int = 5) -> dict:
    """This machine's float32 matmul rate (numpy's BLAS, all cores): GFLOP/s per size
    (m, k, n), best of `repeats` timings of enough products for ~0.1 s, and the best."""
    rng = np.random.default_rng(0)
    rates = {}
    for m, k, n in sizes:
        a = rng.standard_normal((m, k), np.float32)
        b = rng.standard_normal((k, n), np.float32)
        a @ b  # warm
        products = max(1, int(2e8 // (2 * m * k * n)))
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(products):
                a @ b
            best = min(best, (time.perf_counter() - start) / products)
        rates[f"{m}x{k}x{n}"] = 2 * m * k * n / best / 1e9
    return {"gflops_by_size": rates, "gflops": max(rates.values())}


def export_splits(config, settings: Settings, seeds: list[int], path: str) -> dict:
    """The vectors, labels and every seed's folds as the runs split them, into one .npz for
    the PyTorch loop; returns the data's shape and the (|D|, |val|, |test|) of each fold."""
    from rsrl_jax.data import datasets, splits

    data = datasets.load(config)
    arrays = {"embeddings": np.asarray(data.images), "labels": data.labels}
    sizes = []
    for seed in seeds:
        folds = splits.protocol_splits(
            data.labels, config.protocol, seed, data.official_test, data.groups
        )
        for f, split in enumerate(folds):
            for part in ("train", "val", "test"):
                arrays[f"seed{seed}_fold{f}_{part}"] = getattr(split, part)
            sizes.append((len(split.train), len(split.val), len(split.test)))
    np.savez(path, **arrays)
    return {"examples": len(data), "classes": data.num_classes, "split_sizes": sizes}


def run_ours(settings, items, seeds, lanes, folder, env) -> dict:
    """Our study in a new process (`bench.study_side`) in `folder`: wall time and its split."""
    spec = {
        "data": settings.data,
        "overrides": items,
        "methods": list(settings.methods),
        "seeds": seeds,
        "lanes": lanes,
        "workdir": os.path.join(folder, "study"),
        "out": os.path.join(folder, "side.json"),
    }
    cmd = [sys.executable, "-m", "benchmarks.study_side", json.dumps(spec)]
    process = whole_run.timed_process(cmd, os.path.join(folder, "side.log"), env)
    with open(spec["out"]) as f:
        side = json.load(f)
    shutil.rmtree(spec["workdir"])
    return {**process, "split": split_study(process, side), "side": side}


def split_study(process: dict, side: dict) -> dict:
    """Our study's wall time in `OUR_PARTS` (they add up to it): imports (process start to
    the study's call), compile (JAX's traces, lowerings and compiles), training and
    evaluation (passes over D, validation, test: the runs' timings.jsonl, less the compiles
    of the steps inside them; a group's training seconds, which each of its k lanes records
    whole, count 1/k a lane), checkpoints (timings.jsonl), reporting (the last round of any
    run, its timings.jsonl, to the study's end: every run's summary.json, written once all
    runs are trained, and the study's tables and plot) and the rest (data, set-up,
    selection between rounds). A run's other files say nothing of when it ended: its
    summary.json is written at the study's end, long after its last round in a loop of
    runs."""
    compiles = side["compiles"]

    def compiled(fragment: str = "") -> float:
        return sum(
            e["trace_s"] + e["lower_s"] + e["compile_s"]
            for name, e in compiles.items()
            if fragment in name
        )

    timings = [t for run in side["runs"].values() for t in run["timings"]]
    end = side["stamps"]["study_end"]
    trained = max((r["last_round_at"] for r in side["runs"].values()), default=end)
    split = {
        "imports_s": side["stamps"]["study_start"] - process["start"],
        "compile_s": compiled(),
        "training_s": max(
            sum(t["train_s"] / t.get("lanes", 1) for t in timings) - compiled("train_step"), 0.0
        ),
        "evaluation_s": max(sum(t["eval_s"] for t in timings) - compiled("eval_step"), 0.0),
        "checkpoints_s": sum(t["checkpoint_s"] for t in timings),
        "reporting_s": max(end - trained, 0.0),
    }
    split["other_s"] = process["wall_s"] - sum(split.values())
    return split


def warm_up(settings: Settings, items, seeds, folder, env) -> None:
    """Untimed: each of our timed processes (the yardstick's run, (a), (b)) at
    `WARMUP_SCHEDULE`, filling `env`'s compilation cache with the programs it compiles."""
    short = list({i.split("=", 1)[0]: i for i in [*items, *WARMUP_SCHEDULE]}.values())
    os.makedirs(os.path.join(folder, "single"))
    run_single(settings.data, short, os.path.join(folder, "single"), env)
    for key, lanes in (("a", None), ("b", 1)):
        if key in settings.sides:
            os.makedirs(os.path.join(folder, key))
            run_ours(settings, short, seeds, lanes, os.path.join(folder, key), env)


def run_single(data: str, items, folder, env) -> dict:
    """One run of the study's config (method rsrl, seed 0, all its folds) as a user types it."""
    from rsrl_jax.experiments import compare

    fields = compare.method_fields("rsrl") | {"train.epoch_samples": "all"}
    config = "configs/embeddings.py" if data == "embeddings" else whole_run.DEMO
    cmd = [sys.executable, "-m", "rsrl_jax.main", f"--config={config}"]
    cmd += [f"--workdir={os.path.join(folder, 'run')}", "--config.seed=0"]
    cmd += [f"--config.{item}" for item in items]
    cmd += [f"--config.{k}={v}" for k, v in fields.items()]
    process = whole_run.timed_process(cmd, os.path.join(folder, "single.log"), env)
    shutil.rmtree(os.path.join(folder, "run"))
    return process


def torch_spec(config, settings, seeds, data: dict, data_path: str, folder: str) -> dict:
    """What `torch_loop.run_study` reads: the study's runs, head and schedule, and where."""
    spec = {
        "kind": "embeddings_study",
        "data": data_path,
        "workdir": os.path.join(folder, "run"),
        "out": os.path.join(folder, "torch.json"),
        "seeds": seeds,
        "methods": list(settings.methods),
        "folds": settings.folds,
        "rounds": config.rsrl.rounds,
        "num_classes": data["classes"],
        "hidden_widths": list(config.model.hidden_widths) if config.model.name == "mlp" else [],
        "dropout_rate": config.model.dropout_rate,
        "learning_rate": config.train.learning_rate,
        "batch_size": config.train.batch_size,
        "eval_batch_size": config.train.eval_batch_size,
        "first_round_epochs": config.train.first_round_epochs or config.train.epochs_per_round,
        "epochs_per_round": config.train.epochs_per_round,
        "epoch_samples": "all",  # the study's equal steps
        "num_majority": config.rsrl.num_majority,
        "thresholds": list(config.rsrl.thresholds),
        "threads": settings.torch_threads or len(os.sched_getaffinity(0)),
    }
    return spec


def run_torch(spec: dict, folder: str) -> dict:
    """The PyTorch loop of the study's runs in a new process; wall time and its split."""
    cmd = [sys.executable, "-m", "benchmarks.torch_loop", json.dumps(spec)]
    process = whole_run.timed_process(cmd, os.path.join(folder, "torch.log"))
    with open(spec["out"]) as f:
        result = json.load(f)
    shutil.rmtree(spec["workdir"])
    records = [r for run in result["runs"] for r in run["records"]]
    stamps = result["stamps"]
    split = {
        "imports_s": stamps["imported"] - process["start"],
        "setup_s": stamps["built"] - stamps["imported"],
        "training_s": sum(r["train_s"] for r in records),
        "likelihood_passes_s": sum(r["likelihood_s"] for r in records),
        "evaluation_s": sum(r["evaluation_s"] for r in records),
        "selection_s": sum(r["selection_s"] for r in records),
        "checkpoints_s": sum(r["checkpoint_s"] for r in records),
    }
    split["other_s"] = process["wall_s"] - sum(split.values())
    return {**process, "split": split, "threads": result["threads"], "runs": result["runs"]}


def torch_unsupported(config, settings: Settings) -> str | None:
    """Why the PyTorch loop cannot run this study (None: it can)."""
    from benchmarks import torch_loop

    if settings.data != "embeddings":
        return "the PyTorch loop is the embeddings head's; photos compare (a) with (b)"
    if not settings.torch:
        return "--nostudy_torch"
    others = [m for m in settings.methods if m not in torch_loop.STUDY_SELECTIONS]
    if others:
        return f"the PyTorch loop does {', '.join(torch_loop.STUDY_SELECTIONS)}, not {others}"
    fields = {
        "model.name": ("mlp", "linear"),
        "train.optimizer": ("adam",),
        "train.weight_decay": (0.0,),
        "train.head_lr_multiplier": (1.0,),
        "rsrl.likelihood": ("sigmoid",),
        "rsrl.drop_quantile": (0.0,),
        "rsrl.min_keep_per_class": (0,),
    }
    for field, values in fields.items():
        if config[field] not in values:
            return f"the PyTorch loop does {field} in {values}, not {config[field]!r}"
    return None


def run(settings: Settings) -> dict:
    """Builds the data, times every side, prints the table; returns every figure."""
    from benchmarks import benchmark, study_side
    from rsrl_jax.experiments import study as study_module

    settings = check(settings)
    seeds = list(range(settings.seeds))
    info = benchmark.machine(with_torch=True)
    print(f"machine: {info}")
    root = tempfile.mkdtemp(prefix="rsrl-bench-study-")
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": os.path.join(root, "xla_cache")}
    lanes = study_side.lanes_supported()
    try:
        data_dir = os.path.join(root, "embeddings") if settings.data == "embeddings" else None
        if data_dir:
            embeddings_data(data_dir, settings.examples, settings.dim)
        config, items = study_config(settings, data_dir)
        study_module.check_grid(settings.methods, seeds, [config.data.label_noise])
        runs = len(seeds) * len(settings.methods)
        what = (
            f"{settings.examples} x {settings.dim} embeddings (configs/embeddings.py)"
            if data_dir
            else "the demo's photos (configs/demo.py)"
        )
        print(
            f"study: {what}; {', '.join(settings.methods)} x seeds 0..{seeds[-1]} = {runs} "
            f"runs of {settings.folds} fold(s), {settings.rounds} rounds; {' '.join(items)}"
        )
        if not lanes:
            print("this study() has no lanes parameter: (a) runs one run at a time, as (b)")
        results: dict = {
            "machine": info,
            "settings": dataclasses.asdict(settings),
            "overrides": items,
            "lanes_supported": lanes,
        }
        exported = None
        if data_dir:
            exported = export_splits(config, settings, seeds, os.path.join(root, "data.npz"))
        if settings.warmup:
            print(
                "warm-up (untimed): each timed process at 2 rounds of 1 epoch fills the "
                "compilation cache...",
                flush=True,
            )
            warm_up(settings, items, seeds, os.path.join(root, "warmup"), env)
        sides: dict = {}
        os.makedirs(os.path.join(root, "single"))
        sides["single"] = run_single(settings.data, items, os.path.join(root, "single"), env)
        print(f"one {settings.folds}-fold run: {sides['single']['wall_s']:.1f}s", flush=True)
        for key, lanes_value in (("a", None), ("b", 1)):
            if key not in settings.sides:
                continue
            folder = os.path.join(root, key)
            os.makedirs(folder)
            load = os.getloadavg()[0]
            sides[key] = run_ours(settings, items, seeds, lanes_value, folder, env)
            sides[key]["load_1min_before"] = load
            print(f"{SIDES[key]}: {sides[key]['wall_s']:.1f}s", flush=True)
        why_not = (
            torch_unsupported(config, settings)
            if "c" in settings.sides
            else f"--study_sides={','.join(settings.sides)}"
        )
        if why_not is None:
            folder = os.path.join(root, "c")
            os.makedirs(folder)
            path = os.path.join(root, "data.npz")
            spec = torch_spec(config, settings, seeds, exported, path, folder)
            load = os.getloadavg()[0]
            sides["c"] = run_torch(spec, folder)
            sides["c"]["load_1min_before"] = load
            print(f"{SIDES['c']}: {sides['c']['wall_s']:.1f}s", flush=True)
        results["torch_skipped"] = why_not
        if data_dir:
            dims = [settings.dim]
            if config.model.name == "mlp":
                dims += list(config.model.hidden_widths)
            dims.append(exported["classes"])
            flops = study_flops(dims, exported["split_sizes"], config)
            flops = {k: v * len(settings.methods) if k in ("training", "evaluation", "total")
                     else v for k, v in flops.items()}  # fmt: skip
            rate = sgemm_rate()
            flops["sgemm"] = rate
            flops["bound_s"] = flops["total"] / (rate["gflops"] * 1e9)
            results["flops"] = flops
            results["data"] = exported
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results["sides"] = sides
    results["summary"] = summarize(results)
    results["load_1min_end"] = os.getloadavg()[0]
    print_table(results)
    return results


def summarize(results: dict) -> dict:
    """The table's figures: each side's wall seconds and the ratios the issue sets goals on."""
    sides = results["sides"]
    wall = {k: sides[k]["wall_s"] for k in ("a", "b", "c") if k in sides}
    if "flops" in results:
        wall["d"] = results["flops"]["bound_s"]

    def ratio(x, y):
        return wall[x] / wall[y] if x in wall and y in wall else None

    return {
        "wall_s": wall,
        "single_run_s": sides["single"]["wall_s"],
        "a_over_d": ratio("a", "d"),
        "c_over_a": ratio("c", "a"),
        "b_over_a": ratio("b", "a"),
        "a_over_single": wall["a"] / sides["single"]["wall_s"],
        "b_over_single": wall["b"] / sides["single"]["wall_s"] if "b" in wall else None,
    }


def print_table(results: dict) -> None:
    s, sides = results["summary"], results["sides"]
    photos = results["settings"]["data"] == "photos"
    print(f"\n{'side':<32} {'wall s':>9}")
    for key, title in SIDES.items():
        value = s["wall_s"].get(key)
        print(f"{title:<32} {'-' if value is None else f'{value:.2f}':>9}")
    goals = (  # the goals: embeddings (a) against (d) and (c); photos (a) against (b)
        ("(a)/(d)", s["a_over_d"], "" if photos else "goal <= 2"),
        ("(c)/(a)", s["c_over_a"], "" if photos else "goal >= 1.5"),
        ("(b)/(a)", s["b_over_a"], "goal >= 2" if photos else ""),
    )
    print(
        "ratios: "
        + "   ".join(
            f"{name} {'-' if v is None else f'{v:.2f}x'}{f' ({goal})' if goal else ''}"
            for name, v, goal in goals
        )
    )
    folds = results["settings"]["folds"]
    print(
        f"yardstick: one {folds}-fold run {s['single_run_s']:.1f}s; the study (a) "
        f"{s['a_over_single']:.1f}x it{'' if photos else ' (goal <= 3)'}"
        + ("" if s["b_over_single"] is None else f", (b) {s['b_over_single']:.1f}x")
    )
    print(
        "CPU s (user + system) of each process: "
        + ", ".join(
            f"{SIDES[k][:3]} {sides[k]['cpu_s']:.1f}" for k in ("a", "b", "c") if k in sides
        )
        + f", one run {sides['single']['cpu_s']:.1f}"
    )
    print(
        "compiles (served by the warm-up's persistent cache; PyTorch compiles nothing): "
        + ", ".join(
            f"{SIDES[k][:3]} {sum(e['compiles'] for e in sides[k]['side']['compiles'].values())}"
            f" ({sides[k]['side']['cache_hits']})"
            for k in ("a", "b")
            if k in sides
        )
    )
    if results["torch_skipped"]:
        print(f"(c) not run: {results['torch_skipped']}")
    if not results["lanes_supported"]:
        print("(a) ran one run at a time: this study() has no lanes parameter yet")
    if "flops" in results:
        f = results["flops"]
        rates = ", ".join(f"{k} {v:.0f}" for k, v in f["sgemm"]["gflops_by_size"].items())
        print(
            f"(d): {f['total'] / 1e12:.3f} TFLOP (training {f['training'] / 1e12:.3f}, "
            f"passes over D, val, test {f['evaluation'] / 1e12:.3f}; {f['forward_per_sample']} "
            f"FLOP a sample forward, {f['epochs_per_fold']} epochs a fold) at "
            f"{f['sgemm']['gflops']:.1f} GFLOP/s (numpy sgemm, best of sizes m x k x n: {rates})"
        )
    print("\nwhere the time goes, seconds (share of the side's wall time):")
    ours = [k for k in ("a", "b") if k in sides]
    print(f"  {'part':<22}" + "".join(f"{SIDES[k][:3]:>16}" for k in ours))
    for part in OUR_PARTS:
        seconds = [sides[k]["split"][part] for k in ours]
        cells = [
            f"{v:7.1f} {100 * v / sides[k]['wall_s']:5.1f}%"
            for v, k in zip(seconds, ours, strict=True)
        ]
        print(f"  {part[:-2]:<22}" + "".join(f"{c:>16}" for c in cells))
    if "c" in sides:
        c = sides["c"]
        parts = ", ".join(f"{p[:-2]} {c['split'][p]:.1f}" for p in TORCH_PARTS)
        print(f"  (c), {c['threads']} torch threads: {parts}")
    loads = {k: sides[k].get("load_1min_before") for k in ("a", "b", "c") if k in sides}
    print(
        "load average before each side: "
        + ", ".join(f"({k}) {v:.2f}" for k, v in loads.items())
        + f"; at the end {results['load_1min_end']:.2f}"
    )
