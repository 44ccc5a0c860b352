"""The train step of configs/embeddings.py's MLP head: one lane alone against k lanes vmapped.

  python tools/lane_step_bench.py [--lanes=30] [--steps=30] [--profile]
  python tools/lane_step_bench.py --ab=dense_train,ynn_off [--repeats=3]
  python tools/lane_step_bench.py --ab=dense_train,dropout_rbg,dropout_8bit

Prints ms a step and ms per lane-step for k = 1 and k = `--lanes` (the group step a study's
lanes train with, `bench.lane_report.group_step`, with the options a study gives it:
`compiler.default_compiler_options('dense_train')`; random vectors 64 x 128, 10 classes), and
with `--profile` the step's ten costliest XLA operations per step (jax.profiler's trace).
`--ab` times the k-lane step under named XLA:CPU options (`VARIANTS`) in turn, `--repeats`
rounds, so that a loaded machine's drift falls on every variant alike; its `dropout_*`
variants swap the head's dropout bit source (`DROPOUT_SOURCES`, tried, not shipped).
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
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import lane_report  # noqa: E402
from rsrl_jax import compiler  # noqa: E402
from rsrl_jax.models import heads  # noqa: E402

VARIANTS = {  # XLA:CPU options for `--ab`; 'dense_train' is what a study's lanes compile with
    "dense_train": compiler.default_compiler_options("dense_train"),
    "xla_default": {},
    "ynn_off": {compiler.YNN_TYPES: ""},
    "ynn_dot": {compiler.YNN_TYPES: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"},
}


def _rbg_mask(key, shape, keep_prob):
    """16 bits a decision as the head's, from XLA's RngBitGenerator (jax's 'rbg' keys)
    seeded by 4 threefry words of the dropout key."""
    n = int(np.prod(shape))
    seed = jax.random.bits(key, (4,), jnp.uint32)
    words = jax.random.bits(jax.random.wrap_key_data(seed, impl="rbg"), ((n + 1) // 2,))
    halves = jnp.stack([words & 0xFFFF, words >> 16], axis=-1).reshape(-1)[:n]
    return (halves < heads.keep_threshold(keep_prob)).reshape(shape)


def _byte_mask(key, shape, keep_prob):
    """8 bits a decision (4 a threefry word): half the head's bits, the keep probability
    rounded to a multiple of 1/256."""
    n = int(np.prod(shape))
    words = jax.random.bits(key, ((n + 3) // 4,), jnp.uint32)
    parts = jnp.stack([(words >> s) & 0xFF for s in (0, 8, 16, 24)], axis=-1).reshape(-1)[:n]
    return (parts < round(keep_prob * 256)).reshape(shape)


DROPOUT_SOURCES = {"dropout_rbg": _rbg_mask, "dropout_8bit": _byte_mask}


def run(
    k: int, steps: int, trace_dir: str | None = None, options: dict | None = None
) -> tuple[float, float]:
    """Seconds a step: wall-clock, and this process's CPU time (steadier on a shared
    machine; it counts XLA's worker threads, their spinning included)."""
    if options is None:
        options = VARIANTS["dense_train"]
    step, arguments = lane_report.group_step(k, options)
    state, sums, *rest = arguments()
    state, sums = step(state, sums, *rest)  # compiles
    jax.block_until_ready(state)
    if trace_dir:
        jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        state, sums = step(state, sums, *rest)
    jax.block_until_ready(state)
    seconds, cpu = (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps
    if trace_dir:
        jax.profiler.stop_trace()
    return seconds, cpu


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
    parser.add_argument(
        "--ab", help=f"comma-separated variants of {sorted([*VARIANTS, *DROPOUT_SOURCES])}"
    )
    parser.add_argument("--repeats", type=int, default=3)
    a = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) on {os.cpu_count()} cores")
    if a.ab:
        names = a.ab.split(",")
        known = sorted([*VARIANTS, *DROPOUT_SOURCES])
        for name in names:
            if name not in known:
                parser.error(f"--ab: unknown variant {name!r}; one of {known}")
        shipped = heads.keep_mask
        for r in range(a.repeats):
            for name in names:
                heads.keep_mask = DROPOUT_SOURCES.get(name, shipped)
                s, cpu = run(a.lanes, a.steps, options=VARIANTS.get(name))
                load = os.getloadavg()[0]
                print(
                    f"[{r}] {name:12s} k={a.lanes}: {s * 1e3:7.2f} ms a step, "
                    f"{cpu * 1e3:7.2f} CPU ms (load {load:.1f})"
                )
        return
    for k in (1, a.lanes):
        with tempfile.TemporaryDirectory() as trace_dir:
            s, cpu = run(k, a.steps, trace_dir if a.profile and k > 1 else None)
            print(
                f"k={k}: {s * 1e3:.2f} ms a step, {s * 1e3 / k:.3f} ms a lane-step "
                f"({cpu * 1e3:.2f} CPU ms a step)"
            )
            if a.profile and k > 1:
                for name, ms in costliest(trace_dir, a.steps):
                    print(f"  {ms:7.2f} ms/step  {name}")


if __name__ == "__main__":
    main()
