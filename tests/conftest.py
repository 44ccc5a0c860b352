"""Shared fixtures: one tiny run through the CLI that several test files read."""

import json
import os
import subprocess
import sys
import tempfile

import pytest


def with_xla_flags(*flags: str) -> str:
    """This process's XLA_FLAGS with `flags` (`--name=value`) appended, except those whose
    name it sets already: a test's own flags, such as a device count, keep the session's, and
    the session's give way to the caller's (`XLA_FLAGS=--xla_backend_optimization_level=3`)."""
    given = os.environ.get("XLA_FLAGS", "").split()
    names = {flag.split("=")[0] for flag in given}
    return " ".join(given + [flag for flag in flags if flag.split("=")[0] not in names])


# XLA compiles the tests' many small programs with less optimisation: compiling, not
# running, is most of the suite's time, and the lowest level cuts it (docs/contributing.md).
# Set before JAX starts its backend, and inherited by every CLI run and script the tests
# start. Every test passes at either level: the equalities they assert (lanes, devices,
# resumes) compare programs compiled with the same flags.
os.environ["XLA_FLAGS"] = with_xla_flags(
    "--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true"
)

import jax  # noqa: E402  (after XLA_FLAGS, which the backend reads when it starts)


def _session_dir(name: str) -> str:
    """A new temporary folder for this test session, shared by its pytest-xdist workers (they
    run under one PYTEST_XDIST_TESTRUNUID; a plain session gets a folder of its own)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        return tempfile.mkdtemp(prefix=f"rsrl_jax_test_{name}_")
    path = os.path.join(tempfile.gettempdir(), f"rsrl_jax_test_{name}_{run}")
    os.makedirs(path, exist_ok=True)
    return path


# One persistent compilation cache for the whole session, this process and the CLI runs it
# starts: the tiny runs compile the same programs, and compiling dominates their time. The
# workers of `pytest -n 2` share it, and the prepared data (their preparation takes turns
# through the data cache's file lock).
_CACHE = _session_dir("xla_cache")
os.environ.update(
    TFDS_DATA_DIR=_session_dir("tfds"),  # prepared data, not in ~
    JAX_COMPILATION_CACHE_DIR=_CACHE,
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# Two RSRL rounds of a tiny network on 60 synthetic photos: seconds of training.
TINY_OVERRIDES = {
    "data.num_examples": 60,
    "rsrl.rounds": 2,
    "rsrl.thresholds": "(0.6,0.6,0.6)",  # a tiny net is unsure: 0.99 would drop every majority
    "train.first_round_epochs": 2,
    "train.epochs_per_round": 1,
    "train.batch_size": 16,
    "train.eval_batch_size": 32,
    "model.width": 0.25,
    "model.fc_dim": 64,
    "model.pretrained": "",  # the demo's shipped backbone is for its own network size
    "model.dropout_rate": 0.0,  # a tiny network from scratch learns fast without dropout
    "train.learning_rate": 1e-3,
    "train.head_lr_multiplier": 1.0,
    "protocol.val_fraction": 0.2,
}


def run_on_cpu_devices(devices: int, script: str, *args) -> subprocess.CompletedProcess:
    """Runs `python -c script args...` from the repository root in a process that sees
    `devices` CPU devices (XLA's forced host platform count); asserts it exits 0."""
    env = {
        **os.environ,
        "XLA_FLAGS": with_xla_flags(f"--xla_force_host_platform_device_count={devices}"),
        "JAX_PLATFORMS": "cpu",
    }
    root = os.path.dirname(os.path.abspath(__file__ + "/.."))
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def run_cli(workdir, overrides: dict, config="configs/demo.py", check=True):
    """Runs `python -m rsrl_jax.main` with `--config.KEY=VALUE` overrides; returns the result."""
    cmd = [sys.executable, "-m", "rsrl_jax.main", f"--config={config}", f"--workdir={workdir}"]
    cmd += [f"--config.{k}={v}" for k, v in overrides.items()]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


def tiny_config(overrides=None):
    """The config the tiny CLI run uses, built in-process."""
    from configs import demo

    config = demo.get_config()
    overrides = {**TINY_OVERRIDES, **(overrides or {})}
    # A string is Python, as on the command line: "(0.9,) * 6", "'sgd'".
    config.update_from_flattened_dict(
        {
            key: eval(value) if isinstance(value, str) and value else value
            for key, value in overrides.items()
        }
    )
    return config


def read_records(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def assert_records_match(mine: dict, theirs: dict) -> None:
    """Two runs' records (or splits of them) that add in another order (folds at once, more
    devices or processes): every field equal, except those continuous in the logits or the
    loss, equal to float rounding: `train_loss` (rel 1e-5) and each split's aesthetic
    figures (rel or abs 1e-5; None, an undefined correlation, must match None)."""
    from rsrl_jax.metrics import aesthetic

    def apart(record):
        exact, close = dict(record), {}
        if "train_loss" in exact:
            close["train_loss"] = exact.pop("train_loss")
        for part in ("train", "train_kept", "val", "test"):
            if part in exact:
                exact[part] = dict(exact[part])
                close.update({(part, n): exact[part].pop(n, None) for n in aesthetic.FIGURES})
        return exact, close

    (a, close_a), (b, close_b) = apart(mine), apart(theirs)
    assert a == b
    assert close_a.keys() == close_b.keys()
    for key, value in close_a.items():
        other = close_b[key]
        if key == "train_loss":
            assert value == pytest.approx(other, rel=1e-5), key
        elif value is None or other is None:
            assert value is other, key
        else:
            assert value == pytest.approx(other, rel=1e-5, abs=1e-5), key


class Killed(Exception):
    """Stands for a SIGKILL: the run stops where it is, with what it has saved (a real
    SIGKILL mid-round: tests/test_resume.py)."""


def run_until_killed(config, workdir, at=(2, 2, 1)) -> str:
    """Runs `config` in this process into `workdir` and stops it as a SIGKILL would, right
    after the mid-round save of (round, epoch, batch) `at`; returns the run's log (absl's
    lines, whatever level an earlier test left absl at)."""
    import io
    import logging

    from rsrl_jax.engine import rsrl
    from rsrl_jax.run import checkpoints

    save = checkpoints.save_progress

    def save_then_kill(mngr, step, tree, meta):
        save(mngr, step, tree, meta)
        if (meta["round"], meta["epoch"], meta["batch"]) == tuple(at):
            raise Killed

    log, absl = io.StringIO(), logging.getLogger("absl")
    handler, level = logging.StreamHandler(log), absl.level
    absl.addHandler(handler)
    absl.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(checkpoints, "save_progress", save_then_kill)
            with pytest.raises(Killed):
                rsrl.run(config, str(workdir))
    finally:
        absl.removeHandler(handler)
        absl.setLevel(level)
    return log.getvalue()


def scene_photos(folder) -> list[str]:
    """Two synthetic scenes saved as PNGs in a new `folder`: a user's photos for predict and
    highlight."""
    from PIL import Image

    from rsrl_jax.data import synthetic

    folder.mkdir()
    scene = synthetic.generate(num_examples=2, image_size=80, seed=7)
    paths = [str(folder / f"p{i}.png") for i in range(2)]
    for image, path in zip(scene.images, paths, strict=True):
        Image.fromarray(image).save(path)
    return paths


def assert_predicts(workdir, paths) -> None:
    """`predict` of a finished run gives one line per photo, in order: probabilities that sum
    to 1 and a score that is one of the classes."""
    import io

    from rsrl_jax.engine import predict

    out = io.StringIO()
    assert predict.predict(str(workdir), paths, out=out) == len(paths)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["path"] for line in lines] == paths
    for line in lines:
        assert abs(sum(line["probabilities"].values()) - 1) < 1e-5
        assert line["score"] in [int(s) for s in line["probabilities"]]


def assert_highlights_round_2(workdir, paths, out, channels: int) -> tuple:
    """Highlight maps of round 2 against round 1 drawn for `paths` into `out`, each with a
    channel J among the network's `channels` conv1 filters; returns (round 2's model, its
    params, its conv1 geometry)."""
    from rsrl_jax.analysis import highlight, highlight_maps
    from rsrl_jax.run import checkpoints

    drawn = highlight.highlight_photos(str(workdir), paths, str(out), round_=2)
    _, model, params, _ = checkpoints.load_network(str(workdir), 0, 2)
    for line in drawn:
        assert os.path.isfile(line["png"]) and (line["round_I"], line["round_I_minus_k"]) == (2, 1)
        assert 0 <= line["J"] < channels and len(line["corr"]) == channels
    assert len(drawn) == len(paths)
    return model, params, highlight_maps.conv1_geometry(model)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(workdir, records, stderr) of a finished tiny run, with one log line per round."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    result = run_cli(workdir, {**TINY_OVERRIDES, "log.progress": False})
    return workdir, read_records(workdir), result.stderr


# The longest files first: `pytest -n 2 --dist loadfile` hands whole files to whichever worker
# is free, so a long file collected last (these sort late by name) leaves the other worker
# idle at the end. Longest-first keeps the two workers' ends close. The order is by each
# file's CPU seconds alone (`pytest FILE -p no:xdist`, children included; see
# docs/contributing.md): remeasure when a file's cost changes.
LONGEST_FILES = (
    "test_benchmark.py",
    "test_resnet_run.py",
    "test_study.py",
    "test_study_benchmark.py",
    "test_resume.py",
    "test_vit_run.py",  # about 60 CPU s: its name sorted it near the end
    "test_workdir_paths.py",  # about 45 CPU s, one test: last of all by its name
    "test_distributed.py",
    "test_lanes.py",
    "test_transfer.py",
    "test_compare.py",
    "test_fold_parallel.py",
    "test_workdir_lock.py",
    "test_vit.py",  # about 25 CPU s, sorted near the end by its name
)


def pytest_collection_modifyitems(items):
    def rank(item):
        name = os.path.basename(str(item.fspath))
        return LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)

    items.sort(key=rank)  # stable: each file's own order is kept
