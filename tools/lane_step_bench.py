"""The train step of configs/embeddings.py's MLP head: one lane alone against k lanes vmapped.

  python tools/lane_step_bench.py [--lanes=30] [--steps=30] [--profile]

Prints ms a step and ms per lane-step for k = 1 and k = `--lanes` (the group step a study's
lanes train with, `fold_axis.make_fold_step`, on random vectors 64 x 128, 10 classes), and
with `--profile` the step's ten costliest XLA operations per step (jax.profiler's trace).
Its figures are for this machine at the time: give the load (uptime) beside them.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import embeddings  # noqa: E402
from rsrl_jax.data import inputs  # noqa: E402
from rsrl_jax.engine import fold_axis, placement, train  # noqa: E402
from rsrl_jax.method import losses  # noqa: E402

CLASSES, DIM, BATCH = 10, 128, 64


def group_step(k: int):
    config = embeddings.get_config()
    model, tx = train.make_model(config, CLASSES), train.make_optimizer(config)
    view = inputs.FeatureInput(DIM)
    mesh = placement.lane_mesh(placement.make_mesh(), k)
    step = fold_axis.make_fold_step(train.make_train_step(model, tx, view), mesh, k)
    placer = placement.LanePlacer(mesh)
    params = train.init_params(model, view, 0)
    terms = losses.loss_terms(np.full(CLASSES, 100), config.method)
    rng = np.random.default_rng(0)
    args = placer.shard(
        rng.normal(size=(k, BATCH, DIM)).astype(np.float32),
        rng.integers(0, CLASSES, (k, BATCH)).astype(np.int32),
        np.ones((k, BATCH), np.float32),
    )
    state = placer.replicate(fold_axis.stack([train.new_state(params, tx)] * k))
    sums = placer.replicate(fold_axis.stack([train.zero_sums()] * k))
    keys = fold_axis.round_keys([0] * k, list(range(k)), 1, placer.replicated)
    stacked = placer.replicate(fold_axis.stack([terms] * k))
    return step, state, sums, args, keys, stacked


def run(k: int, steps: int, trace_dir: str | None = None) -> float:
    step, state, sums, (x, y, m), keys, terms = group_step(k)
    state, sums = step(state, sums, x, y, m, keys, terms)  # compiles
    jax.block_until_ready(state)
    if trace_dir:
        jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, sums = step(state, sums, x, y, m, keys, terms)
    jax.block_until_ready(state)
    seconds = (time.perf_counter() - t0) / steps
    if trace_dir:
        jax.profiler.stop_trace()
    return seconds


def costliest(trace_dir: str, steps: int, n: int = 10) -> list[tuple[str, float]]:
    (path,) = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
    trace = json.load(gzip.open(path))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    total = collections.Counter()
    for e in events:  # XLA's operations; not the runtime's own spans or Python frames
        name = e.get("name", "")
        if e.get("ph") == "X" and not name.startswith(("$", "Thunk", "Pjit", "Common", "Parse")):
            total[name] += e.get("dur", 0)
    return [(name, us / 1e3 / steps) for name, us in total.most_common(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, default=30)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--profile", action="store_true")
    a = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) on {os.cpu_count()} cores")
    for k in (1, a.lanes):
        with tempfile.TemporaryDirectory() as trace_dir:
            s = run(k, a.steps, trace_dir if a.profile and k > 1 else None)
            print(f"k={k}: {s * 1e3:.2f} ms a step, {s * 1e3 / k:.3f} ms a lane-step")
            if a.profile and k > 1:
                for name, ms in costliest(trace_dir, a.steps):
                    print(f"  {ms:7.2f} ms/step  {name}")


if __name__ == "__main__":
    main()
