"""CPU seconds a lane-step as a lane group grows: the curve `lane_groups.cpu_lane_cap` reads.

  python tools/lane_size_curve.py [--config=embeddings] [--lanes=5,10,15,30,60,150]
      [--steps=10] [--repeats=3] [--json_out=FILE]

For each k of `--lanes`, the k-lane train step of the shipped config's network
(`lane_report.group_step`: built as `Experiment.fold_step` builds a group's, on random inputs)
is compiled once; then `--repeats` rounds time every k in turn (interleaved, so that a loaded
machine's drift falls on every k alike), `--steps` steps each, in this process's CPU seconds
(user + system, XLA's threads included). Prints per k the group's working set
(`lane_groups.network_lane_bytes` x k) in multiples of the last-level cache
(`lane_groups.last_level_cache`), the median CPU ms a lane-step with its spread (min-max
over the repeats) and its ratio to the first k's median. Give the load beside its figures.
"""

import argparse
import json
import os
import statistics
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import lane_report  # noqa: E402
from rsrl_jax import configs  # noqa: E402
from rsrl_jax.data import inputs  # noqa: E402
from rsrl_jax.engine import lane_groups, train  # noqa: E402


def cpu_seconds_a_lane_step(step, arguments, k: int, steps: int) -> tuple[float, tuple]:
    """(CPU seconds a lane-step over `steps` steps, the arguments to go on with: the step
    donates its state)."""
    state, sums, *rest = arguments
    c0 = time.process_time()
    for _ in range(steps):
        state, sums = step(state, sums, *rest)
    jax.block_until_ready(state)
    return (time.process_time() - c0) / steps / k, (state, sums, *rest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="embeddings", help="a shipped config: embeddings, demo")
    parser.add_argument("--lanes", default="5,10,15,30,60,150")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json_out")
    a = parser.parse_args()
    lanes = [int(k) for k in a.lanes.split(",")]
    config = configs.load(a.config)
    model = train.make_model(config, lane_report.CLASSES)
    view = inputs.network_input(config, lane_report.DIM)
    each = lane_groups.network_lane_bytes(config, model, view)
    cache = lane_groups.last_level_cache()
    print(
        f"{a.config}: {each / 2**20:.2f} MiB a lane (estimate), last-level cache "
        f"{cache / 2**20:.0f} MiB; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    steps = {}
    for k in lanes:  # compiled once each, and run once untimed
        step, arguments = lane_report.group_step(k, config_name=a.config)
        args = arguments()
        state, sums = step(*args)
        jax.block_until_ready(state)
        steps[k] = (step, (state, sums, *args[2:]))
    samples = {k: [] for k in lanes}
    for r in range(a.repeats):
        for k in lanes:
            step, args = steps[k]
            seconds, args = cpu_seconds_a_lane_step(step, args, k, a.steps)
            samples[k].append(seconds)
            steps[k] = (step, args)
        print(f"[{r}] load {os.getloadavg()[0]:.1f}", flush=True)
    base = statistics.median(samples[lanes[0]])
    rows = []
    print(f"{'lanes':>5} {'x cache':>8} {'CPU ms a lane-step':>19} {'min-max':>15} {'ratio':>6}")
    for k in lanes:
        med = statistics.median(samples[k])
        rows.append(
            {
                "lanes": k,
                "cache_multiple": each * k / cache,
                "cpu_ms": [s * 1e3 for s in samples[k]],
            }
        )
        print(
            f"{k:>5} {each * k / cache:>8.2f} {med * 1e3:>19.3f} "
            f"{min(samples[k]) * 1e3:>7.3f}-{max(samples[k]) * 1e3:<7.3f} {med / base:>6.2f}"
        )
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"config": a.config, "lane_bytes": each, "cache": cache, "rows": rows}, f)


if __name__ == "__main__":
    main()
