"""The benchmark times both sides in alternation and accounts for a run's wall time."""

import json
import subprocess
import sys

import pytest

from benchmarks import run_timing
from conftest import tiny_config
from rsrl_jax import errors


def run_benchmark(tmp_path, *flags, image_size=64, batch_size=4):
    """Runs the benchmark at 64px, batch 4; returns (its JSON figures, its stdout)."""
    out = tmp_path / "figures.json"
    cmd = [sys.executable, "-m", "benchmarks", f"--image_size={image_size}"]
    cmd += [f"--batch_size={batch_size}", *flags, f"--json_out={out}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text()), result.stdout


def test_benchmark_alternates_sides_and_reports_ratios_memory_and_compiles(tmp_path):
    figures, stdout = run_benchmark(tmp_path, "--rounds=2", "--train_steps=1", "--forward_steps=1")

    timed = figures["timed"]["images_per_s"]
    assert set(timed) == {"jax:ours", "torch"}
    for side in timed.values():
        assert all(len(side[kind]) == 2 and min(side[kind]) > 0 for kind in ("train", "forward"))
    ratios = figures["comparison"]["ratios"]["jax:ours"]
    for kind in ("train", "forward"):
        pairs = zip(timed["jax:ours"][kind], timed["torch"][kind], strict=True)
        assert ratios[kind]["rounds"] == [a / b for a, b in pairs]  # within-round ratios
    assert len(figures["timed"]["load_1min"]) == 2
    assert figures["pipeline_images_per_s"] > 0
    stats = figures["worker_stats"]
    assert stats["jax:ours"]["executables"] == {"train_step": 1, "eval_step": 1}
    assert stats["jax:ours"]["compiles"]["train_step"]["compiles"] == 1
    # Each side's own peak memory: the torch side never imported JAX's 57M-parameter state.
    assert stats["torch"]["peak_rss_mb"] > 200 and stats["jax:ours"]["peak_rss_mb"] > 200
    assert "ratio jax:ours / torch: train" in stdout


def test_resnet50_sides_build_train_and_run_and_the_report_names_the_model(tmp_path):
    # ResNet-50 at 8 stem channels on 32px photos: both sides build, train and run a step.
    flags = ("--model=resnet50", "--width=0.125", "--rounds=1", "--nopipeline")
    flags += ("--train_steps=1", "--forward_steps=1")
    figures, stdout = run_benchmark(tmp_path, *flags, image_size=32, batch_size=2)

    assert figures["model"] == "resnet50"
    assert figures["spec"]["channels"] == 8 and figures["spec"]["batch_norm"] == "frozen"
    timed = figures["timed"]["images_per_s"]
    assert set(timed) == {"jax:ours", "torch"}
    for side in timed.values():
        assert all(len(side[kind]) == 1 and side[kind][0] > 0 for kind in ("train", "forward"))
    assert figures["worker_stats"]["jax:ours"]["executables"] == {"train_step": 1, "eval_step": 1}
    assert "model: resnet50 (torchvision's ResNet-50, width 0.125 = 8 stem channels)" in stdout
    assert "BatchNorm frozen" in stdout and "ratio jax:ours / torch: train" in stdout


@pytest.mark.parametrize("frozen", [True, False])
def test_torch_resnet_peer_trains_with_frozen_or_updated_batch_norm(frozen):
    # model.batch_norm='frozen' on the torch side: BatchNorm in eval mode while the rest
    # trains, so the running statistics stay; 'updated' moves them. Every weight learns.
    from benchmarks import bench_workers

    spec = {
        "model": "resnet50",
        "channels": 4,
        "batch_norm": "frozen" if frozen else "updated",
        "num_classes": 3,
        "dropout_rate": 0.5,
        "learning_rate": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "head_x": 10.0,
        "image_size": 32,
        "batch_size": 2,
    }
    side = bench_workers.torch_side(spec)
    net = side["net"]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    side["train"](1)

    after = net.state_dict()
    stats = [k for k in before if k.endswith("running_mean") or k.endswith("running_var")]
    assert len(stats) == 2 * 53  # every BatchNorm of ResNet-50
    assert all(before[k].equal(after[k]) for k in stats) == frozen
    for name in ("conv1.weight", "bn1.weight", "layer4.2.conv3.weight", "fc.weight", "fc.bias"):
        assert not before[name].equal(after[name]), name
    side["forward"](1)  # eval mode: the running statistics, unchanged
    assert all(after[k].equal(net.state_dict()[k]) for k in stats)


def refusal(flags_: list[str], monkeypatch, json_out=None) -> errors.ConfigError:
    """The ConfigError `python -m benchmarks FLAGS` ends with (commands.run prints it as its
    one line `error: ...`, exit 2), raised here by the command's own flags and main; the
    test fails if a side starts (every mode calls `benchmark.machine` first)."""
    from absl import flags

    from benchmarks import __main__ as command
    from benchmarks import benchmark
    from rsrl_jax import commands

    def started(*args, **kwargs):
        raise AssertionError(f"{flags_}: a side started")

    monkeypatch.setattr(benchmark, "machine", started)
    monkeypatch.setattr(commands, "quiet_libraries", lambda: None)  # the console's setup: none here
    out = [f"--json_out={json_out}"] if json_out else []
    try:
        argv = flags.FLAGS(["benchmarks", *flags_, *out])
        with pytest.raises(errors.ConfigError) as refused:
            command.main(argv)
    finally:
        flags.FLAGS.unparse_flags()  # this process's flags back to their defaults
    assert refused.value.exit_code == 2 and "\n" not in str(refused.value)
    return refused.value


def test_flags_that_do_not_fit_the_model_are_refused_in_one_line(monkeypatch):
    for flags_, culprit in (
        (["--width=0.5"], "--width applies to --model=resnet50"),
        (["--batch_norm=updated"], "--batch_norm applies to --model=resnet50"),
        (["--model=resnet50", "--demo"], "--demo times configs/demo.py's own network"),
        (["--model=resnet50", "--image_size=16"], "--image_size=16: --model=resnet50 needs"),
        (["--study", "--study_methods=plain,fokal"], "--study_methods: unknown part 'fokal'"),
    ):
        assert str(refusal(flags_, monkeypatch)).startswith(culprit), flags_
    # The command's own process: one line on stderr, exit 2, refused before any side starts.
    cmd = [sys.executable, "-m", "benchmarks", "--study", "--study_folds=0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --study_folds=0: must be at least 1")
    assert "starting" not in result.stdout and "machine:" not in result.stdout


def test_run_wall_time_is_split_and_each_step_compiles_once(tmp_path):
    config = tiny_config({"log.progress": False})
    timing = run_timing.time_run(config, str(tmp_path / "run"), run_timing.CompileLog())

    split = timing["split"]
    assert abs(sum(split.values()) - timing["wall_s"]) < 1e-6
    for part in ("data_loading_s", "training_s", "likelihood_passes_s", "evaluation_s"):
        assert split[part] > 0, part
    assert split["compilation_s"] > 0
    assert timing["rounds"] == 2
    # One compile per shape for the whole run: both rounds reuse the steps.
    assert timing["compiles"]["train_step"]["compiles"] == 1
    assert timing["compiles"]["eval_step"]["compiles"] == 1
    timings = (tmp_path / "run" / "timings.jsonl").read_text().splitlines()
    train_s = sum(json.loads(line)["train_s"] for line in timings)
    assert split["training_s"] < train_s  # the step's compile was taken out of training


def test_device_report_counts_the_models_flops_and_utilisation(tmp_path):
    # The accelerator report, run here on the CPU with a stated peak: its FLOP count is
    # XLA's (`cost_analysis`); PyTorch's FlopCounterMode on the same network is the oracle.
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.torch_alexnet import TorchAlexNet

    figures, stdout = run_benchmark(tmp_path, "--device_report", "--rounds=1", "--peak_tflops=0.5")
    report = figures["device_report"]

    with FlopCounterMode(display=False) as counter:
        TorchAlexNet(num_classes=10).eval()(torch.zeros(4, 3, 64, 64))
    dense = counter.get_total_flops()
    forward, train = report["flops_per_step"]["forward"], report["flops_per_step"]["train"]
    # At 64px our forward step folds the 6x6 pool of conv5's 1x1 map into fc6
    # (`alexnet.PooledDense`): fc6 reads 256 inputs, not 9216, once the pool's 36 blocks of
    # its kernel are summed (36 * 256 * 4096 multiply-adds a batch). Training (dropout 0.5
    # between pool and fc6) does not fold.
    saved = 2 * 4 * (9216 - 256) * 4096 - 2 * 36 * 256 * 4096
    # XLA counts a convolution's taps that fall inside the photo, not those on its zero
    # padding, so it counts less than the dense count (8% less at 224px).
    assert 0.75 * (dense - saved) < forward <= dense - saved
    unfolded = forward + saved
    assert 2.5 * unfolded < train < 4 * unfolded  # backward ~2x forward, plus the update
    assert report["peak_tflops"] == 0.5
    for kind in ("train", "forward"):
        figures = report[kind]
        rate = figures["images_per_s"]["median"]
        assert rate > 0
        flops = report["flops_per_step"][kind]
        assert abs(figures["tflops"] - rate * flops / 4 / 1e12) < 1e-12
        assert abs(figures["mfu"] - figures["tflops"] / 0.5) < 1e-12
    assert "MFU" in stdout


# The whole-run mode at a tiny size: 60 photos, a narrow network, 2 rounds, one pair.
WHOLE_RUN_TINY = (
    "data.num_examples=60,model.width=0.25,model.fc_dim=64,train.batch_size=16,"
    "train.eval_batch_size=32,rsrl.rounds=2,rsrl.thresholds=(0.6,0.6,0.6),"
    "protocol.val_fraction=0.2"
)


def run_whole_run(tmp_path, *flags):
    out = tmp_path / "whole_run.json"
    cmd = [sys.executable, "-m", "benchmarks", "--whole_run", f"--json_out={out}"]
    result = subprocess.run([*cmd, *flags], capture_output=True, text=True, timeout=600)
    return result, out


def test_whole_run_times_both_sides_and_splits_our_time(tmp_path):
    from benchmarks import run_split

    result, out = run_whole_run(
        tmp_path,
        "--whole_run_pairs=1",
        "--whole_run_cache=shared",  # the session's cache: the tiny steps compile once
        f"--whole_run_overrides={WHOLE_RUN_TINY}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())

    (pair,) = figures["pairs"]
    assert pair["order"] == ["ours", "torch"]
    ours, torch_ = pair["ours"], pair["torch"]
    assert pair["speed_ratio"] == torch_["wall_s"] / ours["wall_s"]
    for side, parts in ((ours, run_split.OUR_PARTS), (torch_, run_split.TORCH_PARTS)):
        assert list(side["split"]) == list(parts)
        assert abs(sum(side["split"].values()) - side["wall_s"]) < 1e-6  # the parts add up
        assert side["peak_rss_mb"] > 100  # the child's own peak (wait4), not this process's
    split = ours["split"]
    for part in ("imports_s", "setup_s", "compile_s", "training_s", "checkpoints_s"):
        assert split[part] > 0, part
    assert split["likelihood_passes_s"] + split["evaluation_s"] > 0
    assert split["reporting_s"] > 0 and ours["details"]["highlight_s"] > 0
    assert ours["details"]["compiles_by_function"]["train_step"]["compiles"] == 1
    # timings.jsonl says how long each round checkpoint took to write.
    assert [r["round"] for r in ours["details"]["rounds"]] == [1, 2]
    assert all(r["checkpoint_s"] > 0 for r in ours["details"]["rounds"])
    # The same job on both sides: round 1 trains on all of D, then each selects on its own.
    d_photos = figures["job"]["data"]["split"]["train"]
    for side in (ours, torch_):
        rounds = side["records"]["rounds"]
        assert [r["round"] for r in rounds] == [1, 2]
        assert rounds[0]["train_size"] == d_photos
        assert all(0 <= r["test"]["macro_f1"] <= 1 for r in rounds)
    items = figures["job"]["overrides"]
    assert items[-1] == "protocol.val_fraction=0.2"
    fields = [item.split("=")[0] for item in items]
    assert len(fields) == len(set(fields)) and "data.num_examples=60" in items  # once, overridden
    for words in ("speed ours/torch", "peak memory", "compile", "reporting", "chosen round"):
        assert words in result.stdout, words


def test_whole_run_refuses_a_job_the_pytorch_loop_does_not_do(tmp_path, monkeypatch):
    out = tmp_path / "whole_run.json"
    flags_ = ["--whole_run", "--whole_run_overrides=train.optimizer=adam"]
    line = str(refusal(flags_, monkeypatch, json_out=out))
    assert line.startswith("--whole_run_overrides: ") and "train.optimizer='adam'" in line
    assert not out.exists()


def test_the_torch_alexnet_is_ours_at_any_width():
    import jax
    import numpy as np

    from benchmarks import torch_alexnet
    from rsrl_jax.models import alexnet

    assert torch_alexnet.CONV_CHANNELS == alexnet.CONV_CHANNELS
    theirs = torch_alexnet.TorchAlexNet(6, width=0.25, fc_dim=64)
    ours = alexnet.AlexNet(num_classes=6, width=0.25, fc_dim=64)
    x = jax.ShapeDtypeStruct((1, 64, 64, 3), np.float32)
    params = jax.eval_shape(lambda x: ours.init(jax.random.key(0), x), x)  # shapes only
    sizes = sorted(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    assert sizes == sorted(p.numel() for p in theirs.parameters())
