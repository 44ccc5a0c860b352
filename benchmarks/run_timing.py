"""Where a run's wall time goes: data, training, likelihood passes, evaluation, checkpoints,
compiling.

`time_run` runs `rsrl.run` in this process and splits its wall time with three sources: the
run's own `timings.jsonl` (each round's training, evaluation and checkpoint seconds),
`jax.monitoring` compile events (per jitted function: traces, lowerings, XLA compiles,
persistent-cache hits) and the data set's loading, timed before it is handed to the run.
"""

import json
import os
import time

import jax
import ml_collections

from rsrl_jax import errors, workdir_files
from rsrl_jax.data import datasets
from rsrl_jax.engine import rsrl


class CompileLog:
    """Counts and times JAX's compiles per jitted function, from `jax.monitoring` events.

    A compile served by the persistent compilation cache counts as a compile (XLA did not
    run, the time is the cache read) and also in `cache_hits`.
    """

    EVENTS = {
        "/jax/core/compile/jaxpr_trace_duration": "trace_s",
        "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
        "/jax/core/compile/backend_compile_duration": "compile_s",
    }

    def __init__(self):
        self.by_function: dict[str, dict] = {}
        self.cache_hits = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_duration)
        jax.monitoring.register_event_listener(self._on_event)

    def _on_duration(self, event: str, duration: float, **kwargs):
        field = self.EVENTS.get(event)
        if field is None:
            return
        name = str(kwargs.get("fun_name", "?"))
        if name.startswith("jit(") and name.endswith(")"):  # compile events say jit(f)
            name = name[4:-1]
        entry = self.by_function.setdefault(
            name, {"compiles": 0, "trace_s": 0.0, "lower_s": 0.0, "compile_s": 0.0}
        )
        entry[field] += duration
        if field == "compile_s":
            entry["compiles"] += 1

    def _on_event(self, event: str, **kwargs):
        if event == "/jax/compilation_cache/cache_hits":
            self.cache_hits += 1

    def seconds(self, fragment: str = "") -> float:
        """Trace, lowering and compile seconds of the functions whose name holds `fragment`."""
        return sum(_seconds(e) for name, e in self.by_function.items() if fragment in name)


def read_jsonl(path: str) -> list[dict]:
    """The JSON objects of a .jsonl file a run writes (metrics.jsonl, timings.jsonl)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _support(report: dict) -> int:
    return sum(c["support"] for c in report["per_class"].values())


def forward_split(forward_s: float, records: list[dict]) -> tuple[float, float]:
    """(likelihood passes, evaluation) seconds of `forward_s`, the rounds' forward passes.

    A round's evaluation pass reads D (likelihoods for the next selection, which also give the
    train metrics), then validation and test, all with the same compiled forward step: its
    time is split by their numbers of photos in the run's metrics `records`.
    """
    d_photos = sum(_support(r["train"]) for r in records)
    held_out = sum(_support(r["val"]) + _support(r["test"]) for r in records)
    total = max(d_photos + held_out, 1)
    return forward_s * d_photos / total, forward_s * held_out / total


def time_run(config: ml_collections.ConfigDict, workdir: str, compile_log: CompileLog) -> dict:
    """Runs the experiment in a NEW `workdir`; returns its wall time and the split of it.

    Training, evaluation and checkpoint seconds come from the run's timings.jsonl, less the
    compiles of the steps inside them (the first step of each compiles); the evaluation
    passes are split into likelihood passes over D and evaluation by `forward_split`.
    """
    if os.path.exists(workdir_files.WorkdirFiles(workdir).metrics):
        raise errors.ConfigError(
            f"{workdir} holds a run: timing a run needs a new workdir (another --demo_workdir, "
            "or none for a temporary one)"
        )
    before = {name: dict(e) for name, e in compile_log.by_function.items()}
    hits_before = compile_log.cache_hits
    start = time.perf_counter()
    data = datasets.load(config)  # timed on its own, then handed to the run
    load_s = [time.perf_counter() - start]
    rsrl.run(config, workdir, data=data)
    wall = time.perf_counter() - start

    compiles = {}
    for name, entry in compile_log.by_function.items():
        old = before.get(name, {})
        delta = {k: v - old.get(k, 0) for k, v in entry.items()}
        if delta["compiles"] or delta["trace_s"]:
            compiles[name] = delta
    compile_s = {
        fragment: sum(_seconds(e) for n, e in compiles.items() if fragment in n)
        for fragment in ("train_step", "eval_step", "")
    }
    timings = read_jsonl(workdir_files.WorkdirFiles(workdir).timings)
    records = read_jsonl(workdir_files.WorkdirFiles(workdir).metrics)
    train_s = sum(t["train_s"] for t in timings)
    eval_s = sum(t["eval_s"] for t in timings)
    likelihood_s, evaluation_s = forward_split(max(eval_s - compile_s["eval_step"], 0.0), records)
    split = {
        "data_loading_s": sum(load_s),
        "training_s": max(train_s - compile_s["train_step"], 0.0),
        "likelihood_passes_s": likelihood_s,
        "evaluation_s": evaluation_s,
        "checkpoints_s": sum(t["checkpoint_s"] for t in timings),
        "compilation_s": compile_s[""],
    }
    split["other_s"] = wall - sum(split.values())  # report, figures, setup
    return {
        "wall_s": wall,
        "split": split,
        "rounds": len(timings),
        "train_steps": sum(r["steps"] for r in records),
        "compiles": compiles,
        "persistent_cache_hits": compile_log.cache_hits - hits_before,
    }


def _seconds(entry: dict) -> float:
    return entry["trace_s"] + entry["lower_s"] + entry["compile_s"]
