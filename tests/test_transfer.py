"""Transfer learning as in the paper: round 1 starts from the converted ImageNet backbone with
a fresh N-way head; bad weights stop a run before any work; crops are done on the device."""

import csv
import json
import logging
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from rsrl_jax.config import base_config, validate
from rsrl_jax.data import preprocess
from rsrl_jax.engine import train
from rsrl_jax.models import network, pretrained, pretrained_shapes
from rsrl_jax.models.alexnet import AlexNet, params_from_torchvision, torchvision_shapes

BACKBONE = pretrained.BACKBONE


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(directory, params): a random full-size torchvision AlexNet, converted and saved."""
    rng = np.random.default_rng(0)
    state_dict = {}
    for name, shape in torchvision_shapes().items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        std = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.05
        state_dict[name] = rng.standard_normal(shape, np.float32) * np.float32(std)
    params = params_from_torchvision(state_dict)
    out = tmp_path_factory.mktemp("weights") / "alexnet"
    pretrained.save(params, str(out))
    return str(out), params


def abstract_params(model: AlexNet) -> dict:
    """The model's parameters as shape/dtype structs, without initialising (compiling) anything."""
    x = np.zeros((1, 64, 64, 3), np.float32)
    return jax.eval_shape(model.init, jax.random.key(0), x)["params"]


def tiny_config(**model):
    config = base_config()
    config.data.image_size = 64
    config.model.width, config.model.fc_dim = model.get("width", 0.25), model.get("fc_dim", 64)
    return config


def test_initial_params_are_the_converted_backbone_and_a_fresh_head(converted):
    path, params = converted
    config = tiny_config(width=1.0, fc_dim=4096)
    config.model.pretrained = path
    model = AlexNet(num_classes=5)
    start = pretrained.initial_params(config, model, seed=3)
    assert set(start) == set(BACKBONE) | {"head"}
    for layer in BACKBONE:
        for k in ("kernel", "bias"):
            np.testing.assert_array_equal(np.asarray(start[layer][k]), params[layer][k])
    assert start["head"]["kernel"].shape == (4096, 5) and start["head"]["bias"].shape == (5,)
    # The head is the seed's fresh init, not a slice of the ImageNet head.
    fresh = network.init_params(model, 64, 3)["head"]
    np.testing.assert_array_equal(np.asarray(start["head"]["kernel"]), fresh["kernel"])
    # It is what the first train step starts from: the optimizer takes this tree as it is.
    state = train.new_state(start, train.make_optimizer(config))
    want = jax.tree.map(np.shape, abstract_params(model))
    assert jax.tree.map(np.shape, state.params) == want


def test_empty_pretrained_trains_from_scratch_and_says_so(caplog):
    config = tiny_config()
    model = AlexNet(num_classes=4, width=0.25, fc_dim=64)
    with caplog.at_level(logging.INFO):
        start = pretrained.initial_params(config, model, seed=1)
    assert "training from scratch" in caplog.text
    assert "ImageNet" not in caplog.text
    assert jax.tree.map(np.shape, start) == jax.tree.map(np.shape, abstract_params(model))


def check_refused(config, field, *phrases):
    with pytest.raises(ValueError) as e:
        validate(config)
    assert str(e.value).startswith(f"config.{field}=")
    for phrase in phrases:
        assert phrase in str(e.value)


CONVERT = "python -m rsrl_jax.convert --torch_weights=alexnet-owt-7be5be79.pth"


def test_missing_or_unreadable_weights_stop_before_any_work(tmp_path, converted):
    config = tiny_config(width=1.0, fc_dim=4096)
    config.model.pretrained = str(tmp_path / "nowhere")
    check_refused(config, "model.pretrained", "no converted weights", CONVERT)

    (tmp_path / "notes.npz").write_text("not an archive")
    config.model.pretrained = str(tmp_path / "notes.npz")
    check_refused(config, "model.pretrained", "not a readable converted-weights .npz", CONVERT)

    torch_like = tmp_path / "alexnet-owt-7be5be79.pth"  # the .pth itself is a zip too
    with zipfile.ZipFile(torch_like, "w") as zf:
        zf.writestr("archive/data.pkl", b"")
    config.model.pretrained = str(torch_like)
    check_refused(config, "model.pretrained", "lacks 'conv1/kernel'", CONVERT)

    _, params = converted
    wrong = {
        "conv1": {"kernel": np.zeros((5, 5, 3, 64), np.float32), "bias": params["conv1"]["bias"]}
    }
    config.model.pretrained = str(tmp_path / "wrong")
    pretrained.save(wrong, config.model.pretrained)
    check_refused(config, "model.pretrained", "'conv1/kernel'", "(11, 11, 3, 64)")

    config.model.pretrained = converted[0]
    validate(config)  # the real thing passes


def test_pretrained_weights_must_fit_the_networks_size(converted, tmp_path):
    config = tiny_config(width=0.5, fc_dim=4096)
    config.model.pretrained = converted[0]
    fix = "these weights are for --config.model.width=1 --config.model.fc_dim=4096"
    check_refused(config, "model.pretrained", "'conv1/kernel' is (11, 11, 3, 64)", fix)
    config.model.width, config.model.fc_dim = 1.0, 512
    check_refused(config, "model.pretrained", "'fc6/kernel'", fix)
    # Weights of a smaller network (a shipped backbone's size) fit that network.
    small = {name.split("/")[0]: {} for name in pretrained_shapes.backbone_shapes(0.5, 512)}
    for name, shape in pretrained_shapes.backbone_shapes(0.5, 512).items():
        layer, leaf = name.split("/")
        small[layer][leaf] = np.full(shape, 0.5, np.float32)
    pretrained.save(small, str(tmp_path / "small"), dtype=np.float16)
    config.model.pretrained = str(tmp_path / "small")
    check_refused(config, "model.pretrained", "--config.model.width=0.5 --config.model.fc_dim=512")
    config.model.width, config.model.fc_dim = 0.5, 512
    validate(config)
    start = pretrained.initial_params(config, AlexNet(4, width=0.5, fc_dim=512), seed=0)
    assert start["conv1"]["kernel"].dtype == np.float32  # stored float16, trained float32
    assert np.all(np.asarray(start["fc7"]["kernel"]) == 0.5)
    # Weights that are not there are named first, whatever the network's size.
    config.model.width, config.model.pretrained = 0.5, converted[0] + "_missing"
    check_refused(config, "model.pretrained", "no converted weights")


def test_stored_size_must_hold_the_crop():
    config = tiny_config()
    config.data.stored_size = 60
    check_refused(config, "data.stored_size", "at least data.image_size=64")


def test_xiheaa_config_without_weights_says_how_to_convert(tmp_path, monkeypatch):
    from configs import xiheaa

    monkeypatch.chdir(tmp_path)  # the placeholder path does not exist here
    check_refused(xiheaa.get_config(), "model.pretrained", CONVERT, "--out=weights/alexnet")


def test_xiheaa_resnet50_config_without_weights_says_how_to_convert(tmp_path, monkeypatch):
    from configs import xiheaa, xiheaa_resnet50

    monkeypatch.chdir(tmp_path)
    config = xiheaa_resnet50.get_config()
    check_refused(
        config,
        "model.pretrained",
        "no converted weights at weights/resnet50;",
        "--arch=resnet50 --torch_weights=resnet50-0676ba61.pth --out=weights/resnet50",
    )
    paper = xiheaa.get_config()  # the same protocol and data as the paper's setup
    for field in ("data", "protocol", "rsrl"):
        assert config[field].to_dict() == paper[field].to_dict()


def coded_photos(batch, height, width):
    """uint8 photos whose pixels say where they are: (row, column, photo)."""
    y, x, b = np.meshgrid(np.arange(height), np.arange(width), np.arange(batch), indexing="ij")
    return np.stack([y, x, b], -1).transpose(2, 0, 1, 3).astype(np.uint8)


def test_random_crops_are_windows_at_their_own_offsets():
    photos = coded_photos(16, 40, 50)
    crop = jax.jit(preprocess.random_crops, static_argnums=1)
    crops = np.asarray(crop(photos, 32, jax.random.key(0)))
    assert crops.shape == (16, 32, 32, 3)
    tops, lefts = crops[:, 0, 0, 0].astype(int), crops[:, 0, 0, 1].astype(int)
    for b in range(16):
        np.testing.assert_array_equal(
            crops[b], photos[b, tops[b] : tops[b] + 32, lefts[b] : lefts[b] + 32]
        )
    assert tops.max() <= 8 and lefts.max() <= 18
    assert len(set(zip(tops, lefts, strict=True))) > 8  # each photo draws its own offset
    again = np.asarray(preprocess.random_crops(photos, 32, jax.random.key(0)))
    np.testing.assert_array_equal(crops, again)


def test_evaluation_sees_the_central_crop():
    photos = coded_photos(2, 72, 75)
    central = np.asarray(preprocess.center_crops(photos, 64))
    np.testing.assert_array_equal(central, photos[:, 4:68, 5:69])
    model = AlexNet(num_classes=3, width=0.25, fc_dim=64)
    rng = np.random.default_rng(0)
    params = jax.tree.map(
        lambda s: rng.normal(0, 0.1, s.shape).astype(np.float32), abstract_params(model)
    )
    cropped = train.make_eval_step(model, 64)(params, photos)
    plain = train.make_eval_step(model)(params, photos[:, 4:68, 5:69])
    np.testing.assert_allclose(np.asarray(cropped), np.asarray(plain), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="cannot crop 64x64 windows from 60x60 photos"):
        preprocess.center_crops(coded_photos(1, 60, 60), 64)


SCORES = [2] * 2 + [3] * 8 + [4] * 10 + [5] * 6 + [6] * 2 + [7, 8]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """30 scored JPEGs of assorted shapes in xiheAA format."""
    root = tmp_path_factory.mktemp("xiheaa")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    with open(root / "scores.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "score"])
        for i, score in enumerate(SCORES):
            h, w = rng.integers(180, 320, 2)
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "images" / f"p{i:02d}.jpg", quality=85)
            writer.writerow([f"p{i:02d}.jpg", score])
    return root


def test_xiheaa_run_starts_round_1_from_the_converted_weights(tmp_path, converted, photo_folder):
    path, params = converted
    workdir = tmp_path / "run"
    overrides = {
        "data.dir": photo_folder,
        "data.cache_dir": tmp_path / "prepared",
        "model.pretrained": path,
        "rsrl.rounds": 1,
        "protocol.max_folds": 1,
        "train.epochs_per_round": 1,
        "train.batch_size": 8,
        "train.eval_batch_size": 8,
    }
    result = run_cli(workdir, overrides, config="configs/xiheaa.py")
    log = result.stderr
    assert f"pretrained backbone conv1..fc7 from {path}/{pretrained.WEIGHTS_FILE}" in log
    assert log.index("initial weights") < log.index("fold 0 round 1")
    (record,) = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert record["round"] == 1 and record["train_size"] > 0

    from rsrl_jax.run import checkpoints

    round1, _ = checkpoints.restore_round(checkpoints.manager(str(workdir), 0, read_only=True), 1)
    assert np.asarray(round1["head"]["kernel"]).shape == (4096, len(set(SCORES)))
    for layer in BACKBONE:  # one short epoch at lr 1e-4 moves the backbone only slightly
        got, want = np.asarray(round1[layer]["kernel"]).ravel(), params[layer]["kernel"].ravel()
        assert not np.array_equal(got, want)
        assert np.corrcoef(got, want)[0, 1] > 0.99


def test_training_never_imports_torch():
    code = (
        "import sys; import rsrl_jax.main, rsrl_jax.engine.rsrl, rsrl_jax.models.pretrained; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
