"""Our train and forward steps against PyTorch's, side by side; the input pipeline; a run.

  python -m benchmarks [--model=alexnet|resnet50] [--rounds=10] [--variants=ours]
      [--torch] [--demo]
  python -m benchmarks --device_report [--model=resnet50] [--compute_dtype=bfloat16]
      [--peak_tflops=X]

Steps: the full-size AlexNet (batch 32, 224x224, float32, SGD with momentum) as the run
trains it (`engine.train.make_steps`'s jitted steps) and the same network and step in PyTorch
(`benchmarks.torch_alexnet`, torch's defaults: NCHW, all cores).

`--model=resnet50` times torchvision's ResNet-50 instead (`--width` times its 64 stem
channels) with the same optimizer, batch and photos: ours is model.name='resnet50', torch's
`benchmarks.torch_resnet.TorchResNet`. With `--batch_norm=frozen` (model.batch_norm's
default) torch's BatchNorm modules stay in eval mode while the rest of the network trains
(running statistics, BatchNorm's weight and bias still learn), as ours; `--batch_norm=updated`
normalises with the batch's statistics and updates the running ones on both sides (torch's
BatchNorm in train mode). The torch side of ResNet also imports JAX and flax (the reference
shares `models.resnet`'s layout constants), which its peak memory includes.

Each side runs in its own process, and the timing windows alternate (A B, B A, ...) for
`--rounds` rounds, so a change in the machine's load hits both sides alike; the ratio is
taken within each round. Reported: median, min and max images/s of each side, the per-round
ratios, the load average, each side's peak memory and how many times each jitted step
compiled.

`--variants` adds JAX sides for before/after comparisons (either model): `xla_gradients`
(XLA's own max-pool gradient), `xla_libraries` (XLA:CPU's default choice of matmul and convolution
libraries), `before` (both), `bfloat16` (ours with `model.compute_dtype=bfloat16`).

`--demo` then runs configs/demo.py (with `--demo_overrides`, a shorter budget by default)
in this process and splits its wall time into data loading, training, likelihood passes,
evaluation, compilation and the rest. Run from the repository root.

`--device_report` (for a GPU or TPU): our steps of `--model` only, images/s and model FLOP
utilisation, from the compiled step's FLOP count (`cost_analysis`) and the device's peak.

The flags are `benchmarks.__main__`'s; here every choice is a field of `Settings`.

One module of about 430 lines: the driver of one benchmark (its settings, the worker
processes, the alternating windows, the report); the steps it times are built
in `benchmarks/rig.py`.
"""

import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

from rsrl_jax import errors
from rsrl_jax import overrides as override
from rsrl_jax.config import validate


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the benchmark times and how (the command's flags say what each field means)."""

    batch_size: int = 32
    image_size: int = 224
    num_classes: int = 10  # the head's classes when torch runs alone
    rounds: int = 10
    train_steps: int = 1  # per timing window
    forward_steps: int = 2
    warmup_steps: int = 1
    variants: tuple[str, ...] = ("ours",)
    steps: bool = True
    torch: bool = True
    pipeline: bool = True
    demo: bool = False
    demo_overrides: tuple[str, ...] = ("train.first_round_epochs=15", "rsrl.rounds=3")
    demo_workdir: str | None = None
    device_report: bool = False
    compute_dtype: str = "float32"
    peak_tflops: float | None = None
    model: str = "alexnet"
    width: float = 1.0  # resnet50: times torchvision's 64 stem channels
    batch_norm: str = "frozen"  # resnet50: model.batch_norm on both sides


MODELS = ("alexnet", "resnet50")  # the networks with a PyTorch peer


# (what the variant changes, JAX side spec fields)
VARIANTS = {
    "ours": {"fast_gradients": True, "cpu_options": True},
    "xla_gradients": {"fast_gradients": False, "cpu_options": True},
    "xla_libraries": {"fast_gradients": True, "cpu_options": False},
    "before": {"fast_gradients": False, "cpu_options": False},
    "bfloat16": {"fast_gradients": True, "cpu_options": True, "compute_dtype": "bfloat16"},
}
PIPELINE_IMAGES = 4096
# Dense peak TFLOP/s by device kind (bf16 / f32 where the device has no faster bf16 path);
# vendors' data sheets. Pass --peak_tflops for anything else.
PEAK_TFLOPS = {
    "bfloat16": {"H200": 989, "H100": 989, "A100": 312, "L4": 121, "TPU v4": 275,
                 "TPU v5 lite": 197, "TPU v5e": 197, "TPU v5p": 459, "TPU v6": 918},
    "float32": {"H200": 67, "H100": 67, "A100": 19.5, "L4": 30, "TPU v4": 275,
                "TPU v5 lite": 197, "TPU v5e": 197, "TPU v5p": 459, "TPU v6": 918},
}  # fmt: skip


class Worker:
    """One side in its own process (`benchmarks.bench_workers`), asked one JSON line a time."""

    def __init__(self, name: str, spec: dict):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"rsrl-bench-{name}-", suffix=".log")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_workers", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.ready = self._reply()

    def _reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"benchmark side {self.name!r} died:\n{tail}")
        return json.loads(line)

    def ask(self, run: str, **fields) -> dict:
        self.process.stdin.write(json.dumps({"run": run, **fields}) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def close(self):
        try:
            self.process.stdin.write(json.dumps({"run": "quit"}) + "\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.process.kill()
        self.log.close()


def base_spec(settings: Settings) -> dict:
    from rsrl_jax.config import base_config
    from rsrl_jax.engine import train

    config = base_config()
    config.model.width = settings.width
    t = config.train
    return {
        "model": settings.model,
        "width": settings.width,
        "channels": train.resnet_width(config),  # resnet50: the torch side's stem channels
        "batch_norm": settings.batch_norm,
        "batch_size": settings.batch_size,
        "image_size": settings.image_size,
        "num_classes": settings.num_classes,
        "warmup_steps": settings.warmup_steps,
        "pipeline_images": PIPELINE_IMAGES,
        "compute_dtype": settings.compute_dtype,
        "learning_rate": t.learning_rate,
        "momentum": t.momentum,
        "weight_decay": t.weight_decay,
        "head_x": t.head_lr_multiplier,
        "dropout_rate": base_config().model.dropout_rate,
    }


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def check_variants(variants) -> None:
    """Raises ConfigError naming the first variant that is not one of `VARIANTS`."""
    for variant in variants:
        if variant not in VARIANTS:
            raise errors.ConfigError(f"unknown variant {variant!r}; one of {list(VARIANTS)}")


def check_model(settings: Settings) -> None:
    """Raises ConfigError naming a flag that does not apply to `settings.model`."""
    if settings.model not in MODELS:
        raise errors.ConfigError(f"--model={settings.model}: one of {list(MODELS)}")
    if settings.width <= 0:
        raise errors.ConfigError(f"--width={settings.width}: must be positive, e.g. 0.5")
    smallest = 32 if settings.model == "resnet50" else 63
    if settings.image_size < smallest:
        raise errors.ConfigError(
            f"--image_size={settings.image_size}: --model={settings.model} needs at least "
            f"{smallest} pixels"
        )
    if settings.model == "alexnet" and settings.width != 1.0:
        raise errors.ConfigError(
            "--width applies to --model=resnet50 (the AlexNet peer is torchvision's): drop it"
        )
    if settings.model == "alexnet" and settings.batch_norm != "frozen":
        raise errors.ConfigError(
            "--batch_norm applies to --model=resnet50 (AlexNet has none): drop it"
        )
    if settings.model != "alexnet" and settings.demo:
        raise errors.ConfigError(
            f"--demo times configs/demo.py's own network, not --model={settings.model}: "
            "drop one (set the demo's with --demo_overrides=model.name=...)"
        )


def model_line(settings: Settings) -> str | None:
    """What network the steps are, for any but the default AlexNet (whose output is as it was)."""
    if settings.model == "alexnet":
        return None
    bn = {
        "frozen": "frozen (running statistics; torch's BatchNorm in eval mode while training)",
        "updated": "updated (batch statistics, running ones updated; torch's in train mode)",
    }[settings.batch_norm]
    channels = base_spec(settings)["channels"]
    return (
        f"model: resnet50 (torchvision's ResNet-50, width {settings.width:g} = {channels} stem "
        f"channels), BatchNorm {bn}, batch {settings.batch_size}, "
        f"{settings.image_size}x{settings.image_size}, {settings.compute_dtype}"
    )


def start_workers(spec: dict, variants, with_torch: bool) -> dict[str, Worker]:
    check_variants(variants)
    workers = {}
    for variant in variants:
        print(f"starting jax:{variant} (builds and compiles its steps)...", flush=True)
        workers[f"jax:{variant}"] = Worker(variant, {**spec, "side": "jax", **VARIANTS[variant]})
    if with_torch:
        print("starting torch...", flush=True)
        ours = list(workers.values())
        classes = ours[0].ready["num_classes"] if ours else spec["num_classes"]
        workers["torch"] = Worker("torch", {**spec, "side": "torch", "num_classes": classes})
    return workers


def alternate(workers: dict[str, Worker], settings: Settings) -> dict:
    """Timing windows in alternating order; images/s per side, kind and round; loads."""
    names = list(workers)
    figures = {name: {"train": [], "forward": []} for name in names}
    loads = []
    windows = (("train", settings.train_steps), ("forward", settings.forward_steps))
    for r in range(settings.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for kind, steps in windows:
            for name in order:
                reply = workers[name].ask(kind, steps=steps)
                figures[name][kind].append(reply["images_per_s"])
        loads.append(os.getloadavg()[0])
        line = "  ".join(
            f"{n} {figures[n]['train'][-1]:.1f}/{figures[n]['forward'][-1]:.1f}" for n in names
        )
        print(f"round {r + 1}/{settings.rounds} (train/forward img/s) {line}  load {loads[-1]:.2f}")
    return {"images_per_s": figures, "load_1min": loads}


def compare(result: dict) -> dict:
    """Per-side summaries and per-round ratios of each JAX side to torch."""
    figures = result["images_per_s"]
    out = {"sides": {}, "ratios": {}}
    for name, kinds in figures.items():
        out["sides"][name] = {kind: summary(v) for kind, v in kinds.items()}
    if "torch" in figures:
        for name in figures:
            if name == "torch":
                continue
            out["ratios"][name] = {}
            for kind in ("train", "forward"):
                pairs = zip(figures[name][kind], figures["torch"][kind], strict=True)
                ratios = [a / b for a, b in pairs]
                out["ratios"][name][kind] = {**summary(ratios), "rounds": ratios}
    return out


def print_comparison(table: dict, stats: dict, rounds: int) -> None:
    print(f"\nimages/s, median [min, max] over {rounds} alternating rounds:")
    print(f"{'side':<20} {'train step':>24} {'forward':>24} {'peak RSS MB':>12}")
    for name, kinds in table["sides"].items():
        cells = [
            f"{k['median']:7.1f} [{k['min']:6.1f},{k['max']:6.1f}]"
            for k in (kinds["train"], kinds["forward"])
        ]
        print(f"{name:<20} {cells[0]:>24} {cells[1]:>24} {stats[name]['peak_rss_mb']:>12.0f}")
    for name, kinds in table["ratios"].items():
        t, f = kinds["train"], kinds["forward"]
        verdict = "ok" if t["median"] >= 1 and f["median"] >= 1 else "BELOW 1.0"
        print(
            f"ratio {name} / torch: train {t['median']:.2f} [{t['min']:.2f}, {t['max']:.2f}]"
            f"  forward {f['median']:.2f} [{f['min']:.2f}, {f['max']:.2f}]  {verdict}"
        )
    for name, s in stats.items():
        if "executables" in s:
            print(f"{name}: compiled executables {s['executables']} (one per shape)")


def run_demo(overrides, workdir: str | None, cache: str) -> dict:
    """Times configs/demo.py with `overrides` (field=value) in this process, in `workdir`
    (None: a new temporary folder); `cache` is the persistent compilation cache's folder in
    use ('' = off), for the record."""
    from benchmarks import run_timing
    from configs import demo  # configs/ sits at the repository root: run from there

    config = demo.get_config()
    override.apply(config, overrides)  # ConfigError naming a wrong field or value
    validate(config)  # before the data are prepared: a wrong value stops at once
    config.log.progress = False
    workdir = workdir or tempfile.mkdtemp(prefix="rsrl-bench-demo-")
    print(f"\ndemo run: configs/demo.py {' '.join(overrides)} in {workdir}", flush=True)
    timing = run_timing.time_run(config, workdir, run_timing.CompileLog())
    timing["overrides"] = list(overrides)
    timing["compilation_cache"] = cache
    wall = timing["wall_s"]
    print(f"wall {wall:.1f}s over {timing['rounds']} rounds, {timing['train_steps']} steps:")
    for part, seconds in timing["split"].items():
        print(f"  {part[:-2]:<18} {seconds:8.1f}s  {100 * seconds / wall:5.1f}%")
    for name, c in sorted(timing["compiles"].items()):
        seconds = c["trace_s"] + c["lower_s"] + c["compile_s"]
        print(f"  compiles of {name}: {c['compiles']} ({seconds:.2f}s traced, lowered, compiled)")
    print(f"  persistent cache hits: {timing['persistent_cache_hits']} ({cache or 'cache off'})")
    return timing


def peak_tflops(device_kind: str, settings: Settings) -> float | None:
    if settings.peak_tflops:
        return settings.peak_tflops
    for name, tflops in PEAK_TFLOPS[settings.compute_dtype].items():
        if name.lower() in device_kind.lower():
            return tflops
    return None


def device_report(spec: dict, settings: Settings) -> dict:
    """Our steps only, on the default device: images/s, achieved TFLOP/s and MFU."""
    worker = Worker("device", {**spec, "side": "jax", **VARIANTS["ours"]})
    try:
        flops = worker.ask("flops")
        stats = worker.ask("stats")
        figures = {"train": [], "forward": []}
        for _ in range(settings.rounds):
            steps = settings.train_steps
            figures["train"].append(worker.ask("train", steps=steps)["images_per_s"])
            steps = settings.forward_steps
            figures["forward"].append(worker.ask("forward", steps=steps)["images_per_s"])
    finally:
        worker.close()
    peak = peak_tflops(stats["device_kind"], settings)
    print(
        f"device: {stats['device_count']} x {stats['device_kind']} ({stats['backend']}), "
        f"{settings.compute_dtype}, batch {settings.batch_size}, peak "
        f"{f'{peak} TFLOP/s' if peak else 'unknown (pass --peak_tflops)'}"
    )
    report = {"device": stats, "flops_per_step": flops, "peak_tflops": peak}
    for kind in ("train", "forward"):
        rate = statistics.median(figures[kind])
        per_image = (flops[kind] or 0) / settings.batch_size
        achieved = rate * per_image / 1e12
        utilisation = achieved / peak if peak and per_image else None
        report[kind] = {"images_per_s": summary(figures[kind]), "tflops": achieved}
        report[kind]["mfu"] = utilisation
        mfu = f"{100 * utilisation:.1f}%" if utilisation is not None else "n/a"
        print(
            f"{kind:<8} {rate:9.1f} img/s  {per_image / 1e9:6.2f} GFLOP/img (XLA count)  "
            f"{achieved:7.2f} TFLOP/s  MFU {mfu}"
        )
    return report


def machine(with_torch: bool) -> dict:
    import jax

    info = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "load_1min_start": os.getloadavg()[0],
    }
    if with_torch and torch_available():
        import torch

        info["torch"] = torch.__version__
    return info


def run(settings: Settings, cache: str = "") -> dict:
    """Runs what `settings` asks for, printing as it goes; returns every figure.

    `cache`: the persistent compilation cache's folder in use ('' = off), which the caller
    turned on (a process-wide JAX setting) before the demo run compiles.
    """
    check_model(settings)
    spec = base_spec(settings)
    info = machine(settings.torch)
    print(f"machine: {info}")
    if line := model_line(settings):
        print(line)
    results: dict = {"machine": info, "model": settings.model, "spec": spec}
    if settings.device_report:
        results["device_report"] = device_report(spec, settings)
    elif settings.steps:
        with_torch = settings.torch and torch_available()
        if settings.torch and not with_torch:
            print("torch is not installed: timing our steps alone (pip install torch)")
        workers = start_workers(spec, settings.variants, with_torch)
        try:
            first = workers[next(iter(workers))]
            if settings.pipeline:
                rate = first.ask("pipeline")["images_per_s"]
                results["pipeline_images_per_s"] = rate
                print(f"input pipeline (gather + transfer of uint8 batches): {rate:.0f} img/s")
            timed = alternate(workers, settings)
            stats = {name: w.ask("stats") for name, w in workers.items()}
        finally:
            for w in workers.values():
                w.close()
        table = compare(timed)
        results.update(timed=timed, comparison=table, worker_stats=stats)
        print_comparison(table, stats, settings.rounds)
    if settings.demo and not settings.device_report:
        results["demo"] = run_demo(settings.demo_overrides, settings.demo_workdir, cache)
    results["main_process_peak_rss_mb"] = _peak_rss_mb()
    results["load_1min_end"] = os.getloadavg()[0]
    print(f"load average at the end: {results['load_1min_end']:.2f}")
    return results


def _peak_rss_mb() -> float:
    from benchmarks.bench_workers import peak_rss_mb

    return peak_rss_mb()
