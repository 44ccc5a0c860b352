"""The Python API (`import rsrl_jax`): the documented example, one load, one compile per
shape, the predict command's scores, nothing written into the workdir, one-line errors."""

import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

import rsrl_jax
from conftest import tiny_config
from rsrl_jax import command_flags, configs, errors
from rsrl_jax.engine import predict
from rsrl_jax.run import checkpoints

NOTE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "api.md"
LOWERING = "/jax/core/compile/jaxpr_to_mlir_module_duration"  # one per jit cache miss


def photo(path, seed=0, size=(80, 60)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8)).save(path, quality=95)
    return str(path)


def snapshot(folder) -> dict:
    """Every file under `folder`: its size, modification time and content digest."""
    out = {}
    for path in sorted(pathlib.Path(folder).rglob("*")):
        if path.is_file():
            info = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path)] = (info.st_size, info.st_mtime_ns, digest)
    return out


@pytest.fixture(scope="module")
def model(tiny_run):
    return rsrl_jax.load(tiny_run[0])


def test_the_documented_example_runs_as_written(tiny_run, tmp_path, monkeypatch):
    text = NOTE.read_text()
    section = text.split("## Predict from Python", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "runs").mkdir()
    os.symlink(tiny_run[0], tmp_path / "runs" / "demo")
    photo(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(NOTE), "exec"), {})


def test_predict_loads_once_and_compiles_once_per_shape(tiny_run, tmp_path, monkeypatch):
    loads = []
    load_network = checkpoints.load_network
    monkeypatch.setattr(checkpoints, "load_network", lambda *a: loads.append(a) or load_network(*a))
    lowered = []

    def listen(event, duration, **kwargs):
        if event == LOWERING:
            lowered.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        model = rsrl_jax.load(tiny_run[0])
        paths = [photo(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
        first = model.predict(paths[0])
        compiled = len(lowered)
        again = [model.predict(p) for p in paths]
        assert len(lowered) == compiled  # the same padded shape: no new compile
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert compiled >= 1, "the counter saw the first compile"
    assert len(loads) == 1
    assert again[0].score == first.score and np.allclose(
        again[0].probabilities, first.probabilities
    )


def test_api_scores_equal_the_predict_commands(model, tiny_run, tmp_path):
    paths = [photo(tmp_path / f"{i}.jpg", seed=i, size=(50 + 7 * i, 40)) for i in range(5)]
    ours = model.predict(paths)
    out = io.StringIO()
    image = Image.open(paths[1])  # a PIL image: a line of its own, no TypeError
    assert predict.predict(str(tiny_run[0]), [*paths, image], out=out) == 6
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["score"] for line in lines] == [*ours.score.tolist(), ours.score[1]]
    assert lines[-1]["path"] == "<image 5>"
    expected = [line["expected_score"] for line in lines[:5]]
    np.testing.assert_allclose(ours.expected_score, expected, rtol=1e-5)
    probs = [[line["probabilities"][str(s)] for s in model.class_scores] for line in lines[:5]]
    np.testing.assert_allclose(ours.probabilities, probs, rtol=1e-5, atol=1e-7)
    assert ours.probabilities.shape == (5, len(model.class_scores))
    # The same photo as a path, a PIL image, an array and a batch [N, H, W, 3]: one score.
    array = np.asarray(Image.open(paths[2]))
    ways = model.predict([paths[2], Image.open(paths[2]), array])
    batch = model.predict(np.stack([array, array]))
    assert set(ways.score) == set(batch.score) == {ours.score[2]}
    np.testing.assert_allclose(ways.expected_score, ours.expected_score[2], rtol=1e-5)


def test_a_photo_scores_alike_as_a_path_a_pil_image_and_an_array(model, tmp_path):
    # 200x150 against the stored 64: libjpeg's reduced decode would change a path's pixels.
    path = photo(tmp_path / "big.jpg", seed=7, size=(200, 150))
    with Image.open(path) as image:
        ways = model.predict([path, image, np.asarray(image)])
    np.testing.assert_allclose(ways.probabilities[1:], ways.probabilities[[0, 0]], atol=1e-6)


def test_nothing_in_the_workdir_changes(tiny_run, tmp_path):
    before = snapshot(tiny_run[0])
    model = rsrl_jax.load(tiny_run[0])
    model.predict(photo(tmp_path / "a.jpg"))
    maps = model.highlight([photo(tmp_path / "b.jpg", seed=1)] * 2)
    assert snapshot(tiny_run[0]) == before
    assert maps.rounds == (2, 1) and maps.photos.shape == (2, 64, 64, 3)
    assert maps.diff_on_photo.shape == (2, 64, 64)
    assert maps.channel[0] == maps.channel[1] and maps.score[0] in model.class_scores
    assert np.isclose(np.abs(maps.diff[0]).max(), np.abs(maps.diff[1]).max())


def test_bad_input_is_one_line_naming_it(model, tiny_run, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    cases = [
        (str(broken), "broken.jpg"),
        (str(tmp_path / "missing.jpg"), "missing.jpg: missing file"),
        (np.zeros((8, 8), np.float32), "input 0: an array of float32 [8, 8]"),
        ([np.zeros((8, 8, 3), np.uint8), 3], "input 1: an int"),
    ]
    for x, message in cases:
        with pytest.raises(errors.DataError, match=re.escape(message)):
            model.predict(x)
    with pytest.raises(errors.NotFound, match="holds no run"):
        rsrl_jax.load(tmp_path)
    with pytest.raises(errors.DataError, match="round 9"):
        rsrl_jax.load(tiny_run[0], round=9)


def test_configs_by_name_and_overrides(tmp_path):
    config = rsrl_jax.get_config("demo", {"rsrl.rounds": 2, "train.learning_rate": 1})
    assert config.rsrl.rounds == 2 and config.train.learning_rate == 1.0
    assert config.model.pretrained == "shipped:demo_alexnet"
    text = rsrl_jax.get_config("demo", {"rsrl.thresholds": "(0.9,0.9)"})
    assert tuple(text.rsrl.thresholds) == (0.9, 0.9)
    with pytest.raises(errors.ConfigError, match="did you mean 'rsrl.rounds'"):
        rsrl_jax.get_config("demo", {"rsrl.roundz": 2})
    with pytest.raises(errors.ConfigError, match=r"overrides\['rsrl.rounds'\]=2.5: not a valid"):
        rsrl_jax.get_config("demo", {"rsrl.rounds": 2.5})
    shipped = "aesthetic_predictor, ava, demo, embeddings, pretext, synthetic_embeddings"
    with pytest.raises(errors.ConfigError, match=f"shipped: {shipped}"):
        rsrl_jax.get_config("nosuch")
    # The clone's configs/demo.py is the package's config, not a copy of it.
    assert rsrl_jax.get_config("configs/demo.py").to_dict() == configs.load("demo").to_dict()
    argv = command_flags.shipped_configs(
        ["prog", "--config=demo", "--config", "xiheaa:x", "--", "demo"]
    )
    assert argv[1] == f"--config={configs.path('demo')}"
    assert argv[3] == configs.path("xiheaa") + ":x" and argv[5] == "demo"
    assert (
        command_flags.shipped_configs(["prog", "--config=configs/demo.py"])[1]
        == "--config=configs/demo.py"
    )


def test_arguments_of_the_wrong_type_or_kind_are_one_line_for_python(model, tiny_run, tmp_path):
    """Each message fits its caller: `round=`, not --round; what the path is; what to do."""
    listing = tmp_path / "scores.csv"
    listing.write_text("filename,score\n")
    cases = [
        (lambda: rsrl_jax.load(tiny_run[0], round="2"), "round='2': give an integer >= 1"),
        (lambda: rsrl_jax.load(listing), "scores.csv is a file, not a run's workdir"),
        (lambda: rsrl_jax.load(tiny_run[0], round=3), "pick a round in that range"),
        (lambda: rsrl_jax.get_config("demo", ["rsrl.rounds=2"]), "give a dict of field"),
        (lambda: rsrl_jax.get_config(5), "config=5: give a shipped config's name"),
        (lambda: model.predict(5), "input 0: an int; give a path"),
        (lambda: model.predict(tmp_path), "a folder, not a photo; pass its photos as a list"),
        (
            lambda: model.highlight(photo(tmp_path / "a.jpg"), k=2),
            "only rounds 1-2 (rsrl.rounds=2)",
        ),
        (lambda: rsrl_jax.api._vectors(np.zeros(3), 4), "vectors of float64 [3]: this network"),
    ]
    for call, message in cases:
        with pytest.raises(errors.UserError, match=re.escape(message)) as e:
            call()
        assert "--round" not in str(e.value)


def test_python_readers_are_quiet_and_train_speaks_as_the_command(tiny_run, tmp_path, caplog):
    rsrl_jax.load(tiny_run[0])
    assert "Given directory is read only" not in caplog.text
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run[0], workdir)
    (workdir / "log.txt").unlink()
    config = tiny_config({"log.progress": False})
    with caplog.at_level("INFO"):
        rsrl_jax.train(config, workdir)  # finished: trains nothing, says so
    assert f"{workdir}: rounds 1-2 done, all of rsrl.rounds=2; nothing to train" in caplog.text
    # a finished run run again is a reader, from Python as from the command line: it says so
    # on the console and writes nothing, log.txt included (only the lock's holder writes it)
    assert not (workdir / "log.txt").exists()


def test_the_api_console_is_the_commands_not_absls_fallback():
    """Importing the API (Orbax logs as it loads) must not leave logging.basicConfig's
    'INFO:absl:' handler in place of the commands' plain lines."""
    code = (
        "import logging, rsrl_jax; rsrl_jax.get_config('demo'); "
        "print([type(h.formatter).__name__ for h in logging.getLogger().handlers])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "['Plain']", result.stdout + result.stderr
