"""Our steps against PyTorch's, the input pipeline, a run's time, the whole run against a
PyTorch loop (`--whole_run`): `python -m benchmarks`.

What it measures and prints is `benchmarks.benchmark`'s; this module holds the flags.
"""

import dataclasses
import json

from absl import app, flags

from benchmarks import benchmark, lane_report, study_bench, whole_run
from rsrl_jax import commands, errors, overrides

DEFAULT = benchmark.Settings()
FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", DEFAULT.batch_size, "Photos per step (both sides).")
flags.DEFINE_integer("image_size", DEFAULT.image_size, "Square input side.")
flags.DEFINE_integer(
    "num_classes", DEFAULT.num_classes, "Classes of the head when torch runs alone."
)
flags.DEFINE_integer("rounds", DEFAULT.rounds, "Alternating rounds; each times every side once.")
flags.DEFINE_integer("train_steps", DEFAULT.train_steps, "Train steps per timing window.")
flags.DEFINE_integer("forward_steps", DEFAULT.forward_steps, "Forward steps per timing window.")
flags.DEFINE_integer(
    "warmup_steps", DEFAULT.warmup_steps, "Untimed steps of each kind before the rounds."
)
flags.DEFINE_list(
    "variants", list(DEFAULT.variants), f"JAX sides: {', '.join(benchmark.VARIANTS)}."
)
flags.DEFINE_bool("steps", DEFAULT.steps, "Time the train and forward steps (JAX sides, torch).")
flags.DEFINE_bool(
    "torch", DEFAULT.torch, "Time the PyTorch reference (skipped if torch is missing)."
)
flags.DEFINE_bool("pipeline", DEFAULT.pipeline, "Time the host input pipeline (JAX side).")
flags.DEFINE_bool("demo", DEFAULT.demo, "Time a run of configs/demo.py and split its wall time.")
flags.DEFINE_list(
    "demo_overrides",
    list(DEFAULT.demo_overrides),
    "field=value overrides of configs/demo.py for --demo (empty: the whole demo).",
)
flags.DEFINE_string(
    "demo_workdir", DEFAULT.demo_workdir, "New folder for the --demo run (default: temp)."
)
flags.DEFINE_bool(
    "device_report", DEFAULT.device_report, "Accelerator report: images/s and FLOP utilisation."
)
flags.DEFINE_enum(
    "compute_dtype", DEFAULT.compute_dtype, ["float32", "bfloat16"], "model.compute_dtype."
)
flags.DEFINE_float(
    "peak_tflops", DEFAULT.peak_tflops, "The device's peak TFLOP/s (default: from a table)."
)
flags.DEFINE_enum(
    "model", DEFAULT.model, list(benchmark.MODELS), "The network both sides train and run."
)
flags.DEFINE_float(
    "width", DEFAULT.width, "resnet50: times torchvision's 64 stem channels (model.width)."
)
flags.DEFINE_enum(
    "batch_norm",
    DEFAULT.batch_norm,
    ["frozen", "updated"],
    "resnet50: model.batch_norm; frozen = torch's BatchNorm in eval mode while training.",
)
flags.DEFINE_string("json_out", None, "Also write every figure to this JSON file.")

WHOLE_RUN = whole_run.Settings()
flags.DEFINE_bool(
    "whole_run",
    False,
    "Only this: time our CLI's whole run of one RSRL job against a plain PyTorch loop, in "
    "alternating pairs, and split our time (benchmarks/whole_run.py).",
)
flags.DEFINE_integer("whole_run_pairs", WHOLE_RUN.pairs, "--whole_run: pairs of runs.")
flags.DEFINE_list(
    "whole_run_overrides",
    list(WHOLE_RUN.overrides),
    "--whole_run: field=value overrides of the job (configs/demo.py with whole_run.JOB).",
)
flags.DEFINE_enum(
    "whole_run_cache",
    WHOLE_RUN.cache,
    list(whole_run.CACHES),
    "--whole_run: our runs' compilation cache: cold (a new one each run, as a first run) or "
    "shared ($JAX_COMPILATION_CACHE_DIR or the default, warm after a first run).",
)

STUDY = study_bench.Settings()
flags.DEFINE_bool(
    "study",
    False,
    "Only this: one study four ways: (a) ours on lanes, (b) its runs one at a time, (c) a "
    "PyTorch loop of the runs, (d) its FLOP-bound time; and one run (benchmarks/study_bench.py).",
)
flags.DEFINE_enum("study_data", STUDY.data, list(study_bench.DATA), "--study: the data.")
flags.DEFINE_integer(
    "study_seeds", None, "--study: seeds 0..n-1 (default 10 on embeddings, 2 on photos)."
)
flags.DEFINE_list(
    "study_methods", list(STUDY.methods), "--study: methods, as compare's (e.g. plain,rsrl)."
)
flags.DEFINE_integer(
    "study_folds", None, "--study: folds per run (default 5 on embeddings, 1 on photos)."
)
flags.DEFINE_integer(
    "study_rounds", None, "--study: rounds per run (default 6 on embeddings, 3 on photos)."
)
flags.DEFINE_integer("study_examples", STUDY.examples, "--study: embeddings' rows.")
flags.DEFINE_integer("study_dim", STUDY.dim, "--study: embeddings' length.")
flags.DEFINE_list(
    "study_overrides",
    list(STUDY.overrides),
    "--study: field=value overrides of the study's config (configs/embeddings.py or demo.py).",
)
flags.DEFINE_bool(
    "study_warmup",
    STUDY.warmup,
    "--study: each timed process first runs untimed at 2 rounds of 1 epoch, filling the "
    "compilation cache with its programs.",
)
flags.DEFINE_bool("study_torch", STUDY.torch, "--study: time (c), the PyTorch loop.")
flags.DEFINE_list(
    "study_sides",
    list(STUDY.sides),
    "--study: the sides to time, some of a, b, c with a ((d) and the one run always): "
    "e.g. a for the 30-run study against one run on a busy machine.",
)
flags.DEFINE_list(
    "study_report_lanes",
    [str(k) for k in lane_report.Settings.lanes],
    "--device_report --study: the lane counts whose group step is timed.",
)
flags.DEFINE_integer(
    "study_torch_threads",
    STUDY.torch_threads,
    "--study: (c)'s torch.set_num_threads; 0 = the cores, as XLA:CPU uses (a loaded machine "
    "may favour 1).",
)


def study_settings_from_flags() -> study_bench.Settings:
    return study_bench.Settings(
        data=FLAGS.study_data,
        seeds=FLAGS.study_seeds,
        methods=tuple(FLAGS.study_methods),
        folds=FLAGS.study_folds,
        rounds=FLAGS.study_rounds,
        examples=FLAGS.study_examples,
        dim=FLAGS.study_dim,
        overrides=tuple(overrides.regroup(FLAGS.study_overrides)),
        warmup=FLAGS.study_warmup,
        torch=FLAGS.study_torch,
        torch_threads=FLAGS.study_torch_threads,
        sides=tuple(FLAGS.study_sides),
    )


def lane_report_settings_from_flags() -> lane_report.Settings:
    try:
        lanes = tuple(int(k) for k in FLAGS.study_report_lanes)
    except ValueError:
        raise app.UsageError("--study_report_lanes: whole numbers, e.g. 1,30") from None
    return lane_report.Settings(lanes=lanes, peak_tflops=FLAGS.peak_tflops)


def settings_from_flags() -> benchmark.Settings:
    """The flags of every `Settings` field (lists as tuples)."""
    values = {}
    for field in dataclasses.fields(benchmark.Settings):
        value = FLAGS[field.name].value
        values[field.name] = tuple(value) if isinstance(value, list) else value
    values["demo_overrides"] = tuple(overrides.regroup(values["demo_overrides"]))
    return benchmark.Settings(**values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.quiet_libraries()
    if FLAGS.whole_run:  # a mode of its own: the other modes' flags do not apply
        overrides_ = tuple(overrides.regroup(FLAGS.whole_run_overrides))
        pairs, cache = FLAGS.whole_run_pairs, FLAGS.whole_run_cache
        write_figures(whole_run.run(whole_run.Settings(pairs, overrides_, cache)))
        return
    if FLAGS.study and FLAGS.device_report:  # the lanes' group step on this device
        write_figures(lane_report.run(lane_report_settings_from_flags()))
        return
    if FLAGS.study:  # a mode of its own, as --whole_run
        write_figures(study_bench.run(study_settings_from_flags()))
        return
    settings = settings_from_flags()
    try:
        benchmark.check_variants(settings.variants)
    except errors.ConfigError as e:
        raise app.UsageError(f"--variants: {e}") from e
    benchmark.check_model(settings)  # ConfigError: one line naming the flag
    # A process-wide JAX setting, made here: the --demo run compiles in this process.
    cache = commands.enable_compilation_cache() if settings.demo else ""
    results = benchmark.run(settings, cache)
    write_figures(results)


def write_figures(results: dict) -> None:
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(results, f, indent=2)
        print(f"figures written to {FLAGS.json_out}")


if __name__ == "__main__":
    commands.run(main, help_config="configs/demo.py")  # the fields --demo_overrides sets
