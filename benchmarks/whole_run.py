"""Our whole run against a plain PyTorch loop, each timed as a user times it: `--whole_run`.

  python -m benchmarks --whole_run [--whole_run_pairs=3] [--whole_run_overrides=...]

The job is configs/demo.py with `JOB` (3100 synthetic photos at 64px, the full-width AlexNet
from scratch, SGD with momentum, batch 32, 3 rounds of 1 epoch, K = 0.99, one split) and the
user's overrides. Untimed warm-up: the photos are prepared into the data cache once and
exported (photos, labels, the run's split) to one .npz for the PyTorch side. Then pairs of
runs in alternating order (ours, torch; torch, ours; ...), each in a new folder: ours is the
command a user types, `python -m rsrl_jax.main --config=configs/demo.py --config.X=...`;
torch's is `python -m benchmarks.torch_loop` (the same job written the obvious way).
A side's wall time runs from just before its process starts to its exit (`os.wait4`, which
also gives the process's peak resident memory).

Our time is split (`bench.run_split`) with what the run writes: its log lines' timestamps,
its timings.jsonl and JAX's own log of each compile (JAX_LOG_COMPILES=1 in the run's
environment: a few more log lines, the same run). By default every one of our runs compiles
into a new, empty compilation cache, as a user's first run of the job (`cache='shared'`: the
cache the environment names, warm after a first run).

Run from the repository root. `run` prints as it goes and returns every figure.
"""

import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import run_split
from rsrl_jax import errors, workdir_files
from rsrl_jax import overrides as override
from rsrl_jax.config import validate

DEMO = "configs/demo.py"
# The job over configs/demo.py: the full-size network from scratch with the paper's
# SGD with momentum (base_config's learning rate and weight decay; the demo's are Adam's).
JOB = (
    "data.num_examples=3100",
    "data.image_size=64",
    "model.pretrained=",
    "model.width=1.0",
    "model.fc_dim=4096",
    "model.dropout_rate=0.5",
    "train.optimizer=sgd",
    "train.learning_rate=0.001",
    "train.weight_decay=0.0005",
    "train.batch_size=32",
    "train.first_round_epochs=1",
    "train.epochs_per_round=1",
    "rsrl.rounds=3",
    "rsrl.thresholds=(0.99,0.99,0.99)",
    "protocol.folds=1",
)
CACHES = ("cold", "shared")
# What the PyTorch loop does, as config values: a job that needs another is refused.
TORCH_LOOP_DOES = {
    "model.name": "alexnet",
    "model.pretrained": "",
    "model.compute_dtype": "float32",
    "train.optimizer": "sgd",
    "train.epoch_samples": "kept",
    "method.selection": "rsrl",
    "method.loss": "cross_entropy",
    "method.sampling": "uniform",
    "rsrl.likelihood": "sigmoid",
    "rsrl.drop_quantile": 0.0,
    "rsrl.min_keep_per_class": 0,
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """`pairs` alternating pairs of runs; `overrides` (field=value) over `JOB`; `cache`: our
    runs' compilation cache, 'cold' (a new one each run) or 'shared' (the environment's)."""

    pairs: int = 3
    overrides: tuple[str, ...] = ()
    cache: str = "cold"


def job(overrides=()) -> tuple[object, list[str]]:
    """(config, its field=value items over configs/demo.py): `JOB`, then `overrides` (a
    field given again keeps its place in the list with the override's value).

    Raises ConfigError naming a wrong item, a value the run refuses, or a field whose value
    the PyTorch loop does not do (`TORCH_LOOP_DOES`) or a job of several folds.
    """
    from configs import demo  # configs/ sits at the repository root: run from there

    merged = {}  # each field once, as the run gets it: an override replaces JOB's value
    for item in [*JOB, *overrides]:
        merged[item.split("=", 1)[0]] = item
    items = list(merged.values())
    config = demo.get_config()
    override.apply(config, items)
    validate(config)
    for field, value in TORCH_LOOP_DOES.items():
        if config[field] != value:
            raise errors.ConfigError(
                f"--whole_run_overrides: {field}={config[field]!r}, but the PyTorch loop "
                f"does {field}={value!r} only; leave {field} as {value!r}"
            )
    if config.data.name == "embeddings":
        raise errors.ConfigError("--whole_run_overrides: the PyTorch loop trains on photos")
    if config.protocol.folds != 1 and config.protocol.max_folds != 1:
        raise errors.ConfigError(
            f"--whole_run_overrides: protocol.folds={config.protocol.folds}: the PyTorch loop "
            "runs one split; set protocol.folds=1 (or protocol.max_folds=1)"
        )
    return config, items


def prepare(config, root: str) -> dict:
    """Untimed warm-up: the photos prepared into the data cache (as the run finds them) and
    exported with their labels and the run's first split to `root/photos.npz`."""
    from rsrl_jax.data import datasets, splits

    start = time.perf_counter()
    data = datasets.load(config)
    split = splits.protocol_splits(
        data.labels, config.protocol, config.seed, data.official_test, data.groups
    )
    path = os.path.join(root, "photos.npz")
    np.savez(
        path,
        images=data.images,
        labels=data.labels,
        class_scores=np.asarray(data.class_scores),
        train=split[0].train,
        val=split[0].val,
        test=split[0].test,
    )
    return {
        "path": path,
        "seconds": time.perf_counter() - start,
        "photos": len(data),
        "stored_size": int(data.images.shape[1]),
        "split": {p: len(getattr(split[0], p)) for p in ("train", "val", "test")},
    }


def torch_spec(config, data_path: str, folder: str) -> dict:
    """What `bench.torch_loop` reads: the job's numbers, the .npz and where to write."""
    t, m = config.train, config.model
    return {
        "data": data_path,
        "workdir": os.path.join(folder, "run"),
        "out": os.path.join(folder, "torch.json"),
        "seed": config.seed,
        "image_size": config.data.image_size,
        "batch_size": t.batch_size,
        "eval_batch_size": t.eval_batch_size,
        "learning_rate": t.learning_rate,
        "momentum": t.momentum,
        "weight_decay": t.weight_decay,
        "head_lr_multiplier": t.head_lr_multiplier,
        "flip": t.flip,
        "random_crop": t.random_crop,
        "first_round_epochs": t.first_round_epochs or t.epochs_per_round,
        "epochs_per_round": t.epochs_per_round,
        "dropout_rate": m.dropout_rate,
        "width": m.width,
        "fc_dim": m.fc_dim,
        "rounds": config.rsrl.rounds,
        "num_majority": config.rsrl.num_majority,
        "thresholds": list(config.rsrl.thresholds),
    }


def timed_process(cmd: list[str], log_path: str, env: dict | None = None) -> dict:
    """Runs `cmd` (stdout and stderr into `log_path`); its wall time from just before the
    start to its exit, its CPU seconds (user and system, its threads and children), its peak
    RSS (MB) and its start and end stamps (time.time()).
    RuntimeError with the log's tail if it fails."""
    with open(log_path, "w") as log:
        start = time.time()
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        end = time.time()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if process.returncode != 0:
        with open(log_path) as log:
            tail = log.read()[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({process.returncode}):\n{tail}")
    return {
        "wall_s": end - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports KiB
        "start": start,
        "end": end,
    }


def run_ours(items: list[str], folder: str, cache: str) -> dict:
    """One timed run of our CLI on the job `items`, in the new folder `folder`."""
    workdir = os.path.join(folder, "run")
    env = {**os.environ, "JAX_LOG_COMPILES": "1"}
    if cache == "cold":
        env["JAX_COMPILATION_CACHE_DIR"] = os.path.join(folder, "xla_cache")
    cmd = [sys.executable, "-m", "rsrl_jax.main", f"--config={DEMO}", f"--workdir={workdir}"]
    cmd += [f"--config.{item}" for item in items]
    log_path = os.path.join(folder, "ours.log")
    process = timed_process(cmd, log_path, env)
    with open(workdir_files.WorkdirFiles(workdir).log) as f:  # the absl-prefixed log, stamped
        timed = run_split.split_ours(process, f.read(), workdir)
    shutil.rmtree(workdir)  # the checkpoints: hundreds of MB a run
    if cache == "cold":
        shutil.rmtree(env["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
    return {**process, **timed}


def run_torch(spec: dict, folder: str) -> dict:
    """One timed run of the PyTorch loop with `spec`, in the new folder `folder`."""
    spec = {
        **spec,
        "workdir": os.path.join(folder, "run"),
        "out": os.path.join(folder, "torch.json"),
    }
    cmd = [sys.executable, "-m", "benchmarks.torch_loop", json.dumps(spec)]
    process = timed_process(cmd, os.path.join(folder, "torch.log"), None)
    with open(spec["out"]) as f:
        result = json.load(f)
    shutil.rmtree(spec["workdir"])
    return {**process, **run_split.split_torch(process, result)}


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(settings: Settings) -> dict:
    """Prepares the data, times `settings.pairs` alternating pairs, prints and returns all."""
    from benchmarks import benchmark

    if settings.pairs < 1:
        raise errors.ConfigError(f"--whole_run_pairs={settings.pairs}: must be at least 1")
    if settings.cache not in CACHES:
        raise errors.ConfigError(f"--whole_run_cache={settings.cache!r}: one of {CACHES}")
    config, items = job(settings.overrides)
    info = benchmark.machine(with_torch=True)
    print(f"machine: {info}")
    print(f"whole run: {DEMO} with {' '.join(items)}; compilation cache {settings.cache}")
    root = tempfile.mkdtemp(prefix="rsrl-bench-whole-run-")
    try:
        data = prepare(config, root)
        print(
            f"warm-up (untimed): {data['photos']} photos at {data['stored_size']}px prepared "
            f"and exported in {data['seconds']:.1f}s; split {data['split']}",
            flush=True,
        )
        spec = torch_spec(config, data["path"], root)
        pairs = []
        for i in range(settings.pairs):
            order = ("ours", "torch") if i % 2 == 0 else ("torch", "ours")
            pair = {"order": list(order), "load_1min_before": os.getloadavg()[0]}
            for side in order:
                folder = os.path.join(root, f"pair{i + 1}_{side}")
                os.makedirs(folder)
                if side == "ours":
                    pair[side] = run_ours(items, folder, settings.cache)
                else:
                    pair[side] = run_torch(spec, folder)
            pair["load_1min_after"] = os.getloadavg()[0]
            pair["speed_ratio"] = pair["torch"]["wall_s"] / pair["ours"]["wall_s"]
            pairs.append(pair)
            print(
                f"pair {i + 1}/{settings.pairs} ({' then '.join(order)}): ours "
                f"{pair['ours']['wall_s']:.1f}s, torch {pair['torch']['wall_s']:.1f}s, speed "
                f"ours/torch {pair['speed_ratio']:.2f}x; load {pair['load_1min_before']:.2f} "
                f"-> {pair['load_1min_after']:.2f}",
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results = {
        "machine": info,
        "job": {"config": DEMO, "overrides": items, "cache": settings.cache, "data": data},
        "torch_spec": {k: v for k, v in spec.items() if k not in ("data", "workdir", "out")},
        "pairs": pairs,
        "summary": summarize(pairs),
        "load_1min_end": os.getloadavg()[0],
    }
    print_summary(results)
    return results


def summarize(pairs: list[dict]) -> dict:
    """Medians (and ranges) over the pairs: wall times, speed ratio, peak memory, splits."""
    out = {"speed_ratio": {**summary([p["speed_ratio"] for p in pairs])}}
    out["speed_ratio"]["pairs"] = [p["speed_ratio"] for p in pairs]
    for side, parts in (("ours", run_split.OUR_PARTS), ("torch", run_split.TORCH_PARTS)):
        runs = [p[side] for p in pairs]
        out[side] = {
            "wall_s": summary([r["wall_s"] for r in runs]),
            "peak_rss_mb": summary([r["peak_rss_mb"] for r in runs]),
            "split_median": {
                part: statistics.median(r["split"][part] for r in runs) for part in parts
            },
        }
    return out


def print_summary(results: dict) -> None:
    s, pairs = results["summary"], results["pairs"]
    ratio = s["speed_ratio"]
    print(
        f"\nwall time, median [min, max] over {len(pairs)} pairs: ours "
        f"{_range(s['ours']['wall_s'], 's')}, torch {_range(s['torch']['wall_s'], 's')}; speed "
        f"ours/torch (torch's time over ours) {ratio['median']:.2f}x "
        f"[{ratio['min']:.2f}, {ratio['max']:.2f}]"
    )
    print(
        f"peak memory (the process's RSS): ours {_range(s['ours']['peak_rss_mb'], ' MB', 0)}, "
        f"torch {_range(s['torch']['peak_rss_mb'], ' MB', 0)}"
    )
    print(f"\nwhere the time goes, median over the pairs:\n  {'':<20} {'ours':>15} {'torch':>15}")
    for part in run_split.OUR_PARTS:
        cells = []
        for side in ("ours", "torch"):
            value = s[side]["split_median"].get(part)
            wall = s[side]["wall_s"]["median"]
            cells.append(f"{value:7.1f}s {100 * value / wall:5.1f}%" if value is not None else "-")
        print(f"  {part[:-2]:<20} {cells[0]:>15} {cells[1]:>15}")
    last = pairs[-1]
    compiles = last["ours"]["details"]["compiles_by_function"]
    top = ", ".join(
        f"{n} {c['seconds']:.1f}s ({c['compiles']}x)" for n, c in list(compiles.items())[:5]
    )
    print(f"our compiles (last pair): {top}")
    print("what each learnt (last pair), val / test macro F by round:")
    for side in ("ours", "torch"):
        records = last[side]["records"]
        rounds = "  ".join(
            f"r{r['round']} n={r['train_size']} "
            f"{r['val']['macro_f1']:.3f}/{r['test']['macro_f1']:.3f}"
            for r in records["rounds"]
        )
        print(f"  {side:<6} {rounds}  chosen round {records['chosen_round']}")
    print(f"load average at the end: {results['load_1min_end']:.2f}")


def _range(figure: dict, unit: str, digits: int = 1) -> str:
    return (
        f"{figure['median']:.{digits}f}{unit} [{figure['min']:.{digits}f}, "
        f"{figure['max']:.{digits}f}]"
    )
