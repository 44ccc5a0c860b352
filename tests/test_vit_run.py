"""model.name=<ViT size> through the method: a tiny CLIP ViT (32px, patch 8) converted from a
Hugging Face-layout model.safetensors goes through rounds, a kill and resume, lanes, predict
and highlight; the configs that use ViTs. No torch: the weights are written here."""

import importlib.util
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from safetensors.numpy import save_file

from conftest import (
    TINY_OVERRIDES,
    assert_highlights_round_2,
    assert_predicts,
    assert_records_match,
    read_records,
    run_cli,
    run_until_killed,
    scene_photos,
    tiny_config,
)
from rsrl_jax import config as config_lib
from rsrl_jax import errors
from rsrl_jax.analysis import highlight_maps
from rsrl_jax.data import inputs, vit_photos
from rsrl_jax.engine import rsrl
from rsrl_jax.models import network, vit, vit_convert, vit_weights
from rsrl_jax.run import checkpoints, resume

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = "clip_vit_tiny"
# Two rounds (one epoch, then two, of 5 steps), a mid-round checkpoint after every step, so
# that a kill after round 2's first epoch lands mid-round.
CLI = {
    **TINY_OVERRIDES,
    "model.name": ARCH,
    "train.batch_size": 8,
    "train.first_round_epochs": 1,
    "train.epochs_per_round": 2,
    "data.image_size": 32,  # the tiny ViT's side
    "data.stored_size": 40,  # random 32px crops in training, the central one evaluated
    "checkpoint.every_steps": 1,
}
IN_PROCESS = {**CLI, "model.name": repr(ARCH), "checkpoint.every_steps": 0}


def hf_checkpoint(arch: str, path: str, seed: int = 0) -> dict:
    """Writes a random `arch` as Hugging Face's model.safetensors (the inverse of
    `vit_weights.hf_rules`); returns its params."""
    spec = vit.SIZES[arch]
    x = jnp.zeros((1, spec.image_size, spec.image_size, 3))
    params = jax.device_get(vit.ViT(spec).init(jax.random.key(seed), x)["params"])
    flat = traverse_util.flatten_dict(params, sep="/")
    back = {vit_weights._t: np.transpose, vit_weights._keep: np.asarray}
    back[vit_weights._conv] = lambda a: np.transpose(a, (3, 2, 0, 1))
    state = {}
    for key, [(ours, _, convert)] in vit_weights.hf_rules(spec).items():
        state[key] = np.ascontiguousarray(back[convert](np.asarray(flat[ours])))
    save_file(state, path)
    return params


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(folder convert wrote, the backbone's params) of a random tiny CLIP."""
    root = tmp_path_factory.mktemp("vit_weights")
    params = hf_checkpoint(ARCH, str(root / "model.safetensors"))
    vit_convert.convert_vit(str(root / "model.safetensors"), str(root / "w"), ARCH)
    return str(root / "w"), params


@pytest.fixture(scope="module")
def runs(weights, tmp_path_factory):
    """(killed-and-resumed workdir, the killed run's log, its CLI resume's stderr,
    uninterrupted workdir): killed in this process once round 2's first step of epoch 2 is
    saved, resumed by the CLI."""
    folder, _ = weights
    root = tmp_path_factory.mktemp("vit_run")
    killed = root / "killed"
    config = tiny_config(
        {**IN_PROCESS, "checkpoint.every_steps": 1, "model.pretrained": repr(folder)}
    )
    first = run_until_killed(config, killed, at=(2, 2, 1))
    assert len(read_records(killed)) == 1  # round 1 done, round 2 under way
    overrides = {**CLI, "model.pretrained": folder}
    resumed = run_cli(killed, overrides)

    reference = root / "reference"
    config = tiny_config({**IN_PROCESS, "model.pretrained": repr(folder)})
    experiment = rsrl.Experiment.build(config, str(reference))
    experiment.run_folds(resume.start_or_resume(config, experiment.recorder, experiment.data))
    experiment.recorder.close()
    return killed, first, resumed.stderr, reference


def test_rounds_resume_as_if_never_killed_from_the_converted_backbone(runs, weights):
    killed, first, stderr, reference = runs
    assert f"pretrained backbone every layer but the head from {weights[0]}" in first
    assert "fold 0 round 2: resuming at epoch 2 batch 1" in stderr
    assert (killed / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    for r in (1, 2):
        _, model, params, scores = checkpoints.load_network(str(killed), 0, r)
        assert isinstance(model, vit.ViTClassifier) and model.spec == vit.SIZES[ARCH]
        assert params["head"]["kernel"].shape == (vit.SIZES[ARCH].embed_dim, len(scores))
        other = checkpoints.load_network(str(reference), 0, r)[2]
        for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(other), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # Fine-tuned from the converted weights: every backbone array moved, but not far.
    start = traverse_util.flatten_dict(weights[1], sep="/")
    tuned = traverse_util.flatten_dict(jax.device_get(params), sep="/")
    assert set(tuned) == set(start) | {"head/kernel", "head/bias"}
    for name, value in start.items():
        moved = np.abs(np.asarray(tuned[name]) - value).max()
        assert 0 < moved < 0.1 * max(np.abs(value).max(), 1e-3) + 0.05, name
    assert (killed / "report" / "highlights_fold0.png").is_file()  # the run's own panels


def test_lanes_of_vits_train_as_each_alone(runs, weights, tmp_path, caplog):
    _, _, _, reference = runs
    base = {**IN_PROCESS, "model.pretrained": repr(weights[0])}
    other = {**base, "rsrl.thresholds": "(0.4,0.4,0.4)"}  # another selection: its own lane
    pairs = [(tiny_config(base), tmp_path / "a"), (tiny_config(other), tmp_path / "b")]
    with caplog.at_level(logging.INFO, logger="absl"):
        rsrl.run_lanes(pairs, lanes=2, share=False, reports=False)
    done = [r.getMessage() for r in caplog.records if r.getMessage().startswith("done in")]
    assert len(done) == 2 and all(m.endswith("no report drawn") for m in done)  # none drawn
    for mine, theirs in zip(read_records(tmp_path / "a"), read_records(reference), strict=True):
        assert_records_match(mine, theirs)
    assert [r["round"] for r in read_records(tmp_path / "b")] == [1, 2]


def test_the_contract_predict_and_highlight_use_the_vit(runs, tmp_path):
    killed, _, _, _ = runs
    mngr = checkpoints.manager(str(killed), 0, read_only=True)
    saved = checkpoints.load_contract(mngr, str(killed), 0, 1)
    mngr.close()
    assert saved.model["name"] == ARCH and saved.pretrained["file"] == f"{ARCH}.npz"
    assert saved.mean == pytest.approx(vit_photos.MEAN["clip"], abs=1e-7)  # CLIP's, not
    assert saved.std == pytest.approx(vit_photos.STD["clip"], abs=1e-7)  # ImageNet's
    paths = scene_photos(tmp_path / "photos")
    assert_predicts(killed, paths)
    model, params, geometry = assert_highlights_round_2(killed, paths, tmp_path / "maps", 64)
    assert geometry == (8, 8, 0)  # the patch embedding: one cell per 8x8 patch
    maps = model.apply(
        network.variables(params), np.zeros((1, 32, 32, 3), np.float32), method="conv1_maps"
    )
    assert maps.shape == (1, 4, 4, 64) and highlight_maps.conv1_grid(32, geometry) == 4
    # The cell centres of the patch grid: pixel 3.5 -> 3 of each 8-pixel patch (offset 3).
    np.testing.assert_array_equal(
        highlight_maps.conv1_cell_centre(np.arange(4), geometry), [3, 11, 19, 27]
    )


def test_each_family_is_fed_its_own_normalisation():
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8)
    for arch, family in ((ARCH, "clip"), ("siglip_vit_tiny", "siglip")):
        config = tiny_config({**IN_PROCESS, "model.name": repr(arch)})
        view = inputs.network_input(config)
        want = vit_photos.normalise(images, family)
        np.testing.assert_allclose(np.asarray(view.eval_view(images)), want, atol=1e-6)
    alexnet = inputs.network_input(tiny_config({"data.image_size": 64}))
    assert alexnet.mean == pytest.approx((0.485, 0.456, 0.406))


def test_vit_config_mistakes_are_one_line(weights, tmp_path):
    folder, _ = weights
    base = {**IN_PROCESS, "model.pretrained": repr(folder)}
    config_lib.validate(tiny_config(base))
    with pytest.raises(errors.ConfigError, match=r"reads 32px photos: set --config.data.image_si"):
        config_lib.validate(tiny_config({**base, "data.image_size": 64, "data.stored_size": 0}))
    with pytest.raises(errors.ConfigError, match=r"set --config.model.vit_act=quick_gelu"):
        config_lib.validate(tiny_config({**base, "model.vit_act": "'gelu'"}))
    siglip = {**base, "model.name": "'siglip_vit_tiny'"}
    with pytest.raises(errors.ConfigError, match=r"holds clip_vit_tiny.npz: set --config.model.n"):
        config_lib.validate(tiny_config(siglip))
    npz = repr(os.path.join(folder, f"{ARCH}.npz"))
    with pytest.raises(errors.ConfigError, match=r"holds converted clip_vit_tiny weights, not s"):
        config_lib.validate(tiny_config({**siglip, "model.pretrained": npz}))
    with pytest.raises(errors.ConfigError, match=r"computes in float32"):
        config_lib.validate(tiny_config({**base, "model.compute_dtype": "'bfloat16'"}))


def _preset(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def test_shipped_clip_b16_config_fine_tunes_the_224px_vit(tmp_path):
    config = _preset("xiheaa_clip_vit_b16.py")
    base = _preset("xiheaa.py")
    assert (config.model.name, config.data.image_size) == ("clip_vit_b16", 224)
    assert config.rsrl == base.rsrl and config.protocol == base.protocol
    config.model.pretrained = ""
    config.data.dir = str(tmp_path)
    config_lib.validate(config, given={})
    model = network.make_model(config, num_classes=8)
    x = np.zeros((1, 224, 224, 3), np.float32)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x))["params"]
    assert shapes["head"]["kernel"].shape == (512, 8)
    assert shapes["patch_embed"]["kernel"].shape == (16, 16, 3, 768)


def test_aesthetic_predictor_preset_is_laions_mlp_over_clip_l14_vectors(tmp_path):
    config = _preset("aesthetic_predictor.py")
    config.data.dir = str(tmp_path)  # the folder embed wrote: the command line gives it
    config_lib.validate(config)
    model = network.make_model(config, num_classes=10)
    d = vit.SIZES["clip_vit_l14"].embed_dim
    x = np.zeros((1, d), np.float32)
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), x))["params"]  # shapes only
    widths = [params[f"hidden_{i}"]["kernel"].shape for i in range(4)] + [
        params["head"]["kernel"].shape
    ]
    assert widths == [(768, 1024), (1024, 128), (128, 64), (64, 16), (16, 10)]
