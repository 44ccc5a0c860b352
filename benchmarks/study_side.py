"""One side of `--study` in its own process: our study, on lanes or one run at a time.

  python -m benchmarks.study_side '<spec JSON>'   (started by benchmarks.study_bench)

Runs `experiments.study.study` as `python -m rsrl_jax.study` does (the persistent compilation
cache on, as `python -m rsrl_jax.main` has it), with `lanes` passed only when this study
takes it (None: packed into lane groups; 1: one run at a time, today's way). Writes its
stamps, JAX's compile seconds per function (`run_timing.CompileLog`) and every run's
timings.jsonl, metrics.jsonl steps and file times to the spec's `out`, for the driver to split.
"""

import inspect
import json
import os
import sys
import time

IMPORTED_START = time.time()


def lanes_supported() -> bool:
    """Whether this `study` packs runs into lanes (it then takes `lanes`)."""
    from rsrl_jax.experiments import study

    return "lanes" in inspect.signature(study.study).parameters


def run_files(workdir: str) -> dict:
    """Per run folder (one holding timings.jsonl): its rounds' seconds, its records' steps
    and kept counts, and the times its last round and its last file were written."""
    from benchmarks import run_timing
    from rsrl_jax import workdir_files

    runs = {}
    for folder, _, files in os.walk(workdir):
        paths = workdir_files.WorkdirFiles(folder)
        if not (os.path.isfile(paths.timings) and os.path.isfile(paths.metrics)):
            continue
        timings_path = paths.timings
        stamps = [os.path.getmtime(os.path.join(folder, f)) for f in files]
        records = run_timing.read_jsonl(paths.metrics)
        runs[os.path.relpath(folder, workdir)] = {
            "timings": run_timing.read_jsonl(timings_path),
            "rounds": [
                {
                    "fold": r["fold"],
                    "round": r["round"],
                    "steps": r["steps"],
                    "train_size": r["train_size"],
                }
                for r in records
            ],
            "last_round_at": os.path.getmtime(timings_path),
            "last_file_at": max(stamps),
        }
    return runs


def main(spec: dict) -> dict:
    from benchmarks import run_timing
    from configs import demo, embeddings  # configs/ sits at the repository root
    from rsrl_jax import commands
    from rsrl_jax import overrides as override
    from rsrl_jax.experiments import study

    imported = time.time()
    commands.quiet_libraries()
    cache = commands.enable_compilation_cache()
    compile_log = run_timing.CompileLog()
    config = (embeddings if spec["data"] == "embeddings" else demo).get_config()
    override.apply(config, spec["overrides"])
    config.log.progress = False
    extra = {"lanes": spec["lanes"]} if lanes_supported() else {}
    start = time.time()
    study.study(
        config,
        spec["workdir"],
        spec["methods"],
        spec["seeds"],
        [config.data.label_noise],  # one rater: the study's runs are methods x seeds x folds
        True,
        **extra,
    )
    end = time.time()
    return {
        "stamps": {"imported": imported, "study_start": start, "study_end": end},
        "imports_start": IMPORTED_START,
        "lanes_passed": "lanes" in extra,
        "compilation_cache": cache,
        "compiles": compile_log.by_function,
        "cache_hits": compile_log.cache_hits,
        "runs": run_files(spec["workdir"]),
    }


if __name__ == "__main__":
    SPEC = json.loads(sys.argv[1])
    RESULT = main(SPEC)
    with open(SPEC["out"], "w") as out:
        json.dump(RESULT, out)
