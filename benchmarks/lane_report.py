"""The lanes' device report: `python -m benchmarks --device_report --study`.

The group step a study's lanes train with (configs/embeddings.py's MLP head, vmapped over k
lanes by `fold_axis.make_fold_step` on the group's `placement.lane_mesh`, compiled with the
options a study gives it), timed on random vectors for each k of `lanes`: lanes x examples/s,
XLA's FLOP count of the step, achieved TFLOP/s and the model FLOP utilisation (MFU) against
one device's peak (`benchmark.PEAK_TFLOPS`, or `--peak_tflops`): XLA counts the FLOPs of one
device's partition of the step, so the rate and MFU are a device's. On CPU there is no peak
to quote: the utilisation is against this machine's measured sgemm rate
(`study_bench.sgemm_rate`) and said so. Each k's mesh (lane x data devices) is reported: k a
multiple of the devices splits the lanes, else each batch is split along `data`.
"""

import dataclasses
import os
import time

import numpy as np

CLASSES, DIM, BATCH = 10, 128, 64  # the yardstick study's vectors (study_bench's data)


@dataclasses.dataclass(frozen=True)
class Settings:
    lanes: tuple[int, ...] = (1, 30)
    steps: int = 30
    repeats: int = 3
    peak_tflops: float | None = None


def group_step(
    k: int,
    options: dict | None = None,
    classes: int = CLASSES,
    dim: int = DIM,
    config_name: str = "embeddings",
):
    """(the k-lane train step, a function giving fresh arguments for it: the step donates
    its state) for the network of the shipped config `config_name` (configs/embeddings.py's
    head on random vectors [k, BATCH, dim]; configs/demo.py's AlexNet on random photos
    [k, BATCH, S, S, 3] uint8 at its stored size S) of `classes` classes, built as
    `Experiment.build` and `Experiment.fold_step` build a group's; `options`: the step's XLA
    options (None: the run's, `compiler.default_compiler_options` 'dense_train' for a head,
    'train' for a photo network)."""
    from rsrl_jax import compiler, configs
    from rsrl_jax.data import inputs
    from rsrl_jax.engine import fold_axis, placement, train
    from rsrl_jax.method import losses

    config = configs.load(config_name)
    if options is None:
        dense = config.model.name in train.FEATURE_MODELS
        options = compiler.default_compiler_options("dense_train" if dense else "train")
    model, tx = train.make_model(config, classes), train.make_optimizer(config)
    view = inputs.network_input(config, dim)
    mesh = placement.lane_mesh(placement.make_mesh(), k)
    step = train.make_train_step(model, tx, view, compiler_options=options)
    step = fold_axis.make_fold_step(step, mesh, k, compiler_options=options)
    placer = placement.LanePlacer(mesh)
    params = train.init_params(model, view, 0)
    terms = losses.loss_terms(np.full(classes, 100), config.method)
    rng = np.random.default_rng(0)
    if isinstance(view, inputs.FeatureInput):
        x = rng.normal(size=(k, BATCH, dim)).astype(np.float32)
    else:
        side = config.data.stored_size or config.data.image_size
        x = rng.integers(0, 256, (k, BATCH, side, side, 3), dtype=np.uint8)
    batch = placer.shard(
        x,
        rng.integers(0, classes, (k, BATCH)).astype(np.int32),
        np.ones((k, BATCH), np.float32),
    )
    keys = fold_axis.round_keys([0] * k, list(range(k)), 1, placer.replicated)
    stacked = placer.replicate(fold_axis.stack([terms] * k))

    def arguments():
        state = placer.replicate(fold_axis.stack([train.new_state(params, tx)] * k))
        sums = placer.replicate(fold_axis.stack([train.zero_sums()] * k))
        return (state, sums, *batch, keys, stacked)

    return step, arguments


def time_steps(step, args, steps: int) -> tuple[float, float, tuple]:
    """(wall seconds a step, this process's CPU seconds a step, the last state and sums)
    over `steps` calls after one untimed call. The step donates its state."""
    import jax

    state, sums, *rest = args
    state, sums = step(state, sums, *rest)
    jax.block_until_ready(state)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        state, sums = step(state, sums, *rest)
    jax.block_until_ready(state)
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps, (state, sums)


def flops_of(compiled) -> float | None:
    """XLA's FLOP count of one call (`cost_analysis`), or None where the backend gives none."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else {}
    value = (analysis or {}).get("flops")
    return float(value) if value is not None and value > 0 else None


def lane_figures(k: int, steps: int, repeats: int) -> dict:
    """One k's figures: the best of `repeats` timings of `steps` steps (a loaded machine
    only slows a timing), XLA's FLOPs, the mesh, and what one device holds: its shard of
    the batch [lanes, examples] and of the lanes' parameters (lanes)."""
    import jax

    step, arguments = group_step(k)
    compiled = step.lower(*arguments()).compile()  # compiled once, timed as it is
    timings = [time_steps(compiled, arguments(), steps) for _ in range(repeats)]
    wall, cpu = min(t[:2] for t in timings)
    images = arguments()[2]
    state = timings[-1][2][0]
    flops = flops_of(compiled)
    return {
        "lanes": k,
        "mesh": dict(images.sharding.mesh.shape),
        "batch_per_device": list(images.addressable_shards[0].data.shape[:2]),
        "lanes_of_params_per_device": jax.tree.leaves(state.params)[0]
        .addressable_shards[0]
        .data.shape[0],
        "step_ms": wall * 1e3,
        "cpu_ms": cpu * 1e3,
        "examples_per_s": k * BATCH / wall,
        "flops_per_device_step": flops,  # one device's program (SPMD)
        "tflops": flops / wall / 1e12 if flops else None,  # a device's
    }


def run(settings: Settings) -> dict:
    """Times the group step for each k of `settings.lanes`, prints the table; returns it.
    ConfigError for a k or a step count below 1."""
    import jax

    from benchmarks import benchmark, study_bench
    from rsrl_jax import errors

    if not settings.lanes or min(settings.lanes) < 1 or settings.steps < 1:
        raise errors.ConfigError("--device_report --study: lanes and steps must be at least 1")
    device = jax.devices()[0]
    accelerator = device.platform != "cpu"
    peak = settings.peak_tflops
    if accelerator and peak is None:
        peak = next(
            (v for name, v in benchmark.PEAK_TFLOPS["float32"].items()
             if name.lower() in device.device_kind.lower()),
            None,
        )  # fmt: skip
    basis = "float32 peak"
    if not accelerator:  # no accelerator: this machine's best sgemm rate stands for a peak
        peak = peak or study_bench.sgemm_rate()["gflops"] / 1e3
        basis = "no accelerator: CPU, against numpy's best sgemm rate"
    print(
        f"device: {jax.device_count()} x {device.device_kind} ({device.platform}); "
        f"{basis} {f'{peak:.3f} TFLOP/s' if peak else 'unknown (pass --peak_tflops)'}; "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"the study's group step: configs/embeddings.py's head, batch {BATCH} of {DIM} "
        f"values, {CLASSES} classes"
    )
    print(
        f"{'lanes':>5} {'mesh lane x data':>17} {'ms a step':>10} {'CPU ms':>8} "
        f"{'lanes x examples/s':>19} {'TFLOP/s':>9} {'MFU' if accelerator else 'of sgemm':>9}"
    )
    rows = []
    for k in settings.lanes:
        row = lane_figures(k, settings.steps, settings.repeats)
        row["utilisation"] = row["tflops"] / peak if peak and row["tflops"] else None
        rows.append(row)
        mesh = f"{row['mesh'].get('lane', 1)} x {row['mesh'].get('data', 1)}"
        tflops = "-" if row["tflops"] is None else f"{row['tflops']:.4f}"
        util = "-" if row["utilisation"] is None else f"{100 * row['utilisation']:.1f}%"
        print(
            f"{k:>5} {mesh:>17} {row['step_ms']:>10.2f} {row['cpu_ms']:>8.2f} "
            f"{row['examples_per_s']:>19.0f} {tflops:>9} {util:>9}",
            flush=True,
        )
    return {
        "device": {"kind": device.device_kind, "platform": device.platform},
        "device_count": jax.device_count(),
        "accelerator": accelerator,
        "peak_tflops": peak,
        "peak_basis": basis,
        "load_1min": os.getloadavg()[0],
        "rows": rows,
    }
