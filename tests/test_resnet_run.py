"""model.name=resnet50 through the method: a tiny ResNet-50 (torchvision's layout, 1/8 of its
channels, 32px photos) from converted test-made weights goes through rounds, a kill and
resume, predict and highlight; BatchNorm's statistics behave as model.batch_norm says in
every way the engine trains (one fold, folds at once, a mesh of devices)."""

import os
import pickle
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from conftest import (
    TINY_OVERRIDES,
    assert_highlights_round_2,
    assert_predicts,
    read_records,
    run_cli,
    run_on_cpu_devices,
    run_until_killed,
    scene_photos,
    tiny_config,
)
from rsrl_jax import config as config_lib
from rsrl_jax import errors
from rsrl_jax.analysis import highlight_maps
from rsrl_jax.engine import embed, fold_axis, placement, rsrl, train
from rsrl_jax.method import losses
from rsrl_jax.models import convert, network, pretrained, resnet
from rsrl_jax.run import checkpoints, resume

WIDTH = 0.125  # 8 channels in the stem: ResNet-50's 53 convolutions, small enough for a CPU
# Two rounds (one epoch, then two, of 5 steps), a mid-round checkpoint after every step (so
# that a kill in round 2's second epoch leaves a mid-round state), BatchNorm statistics
# updated (so that resuming must restore them too).
CLI = {
    **TINY_OVERRIDES,
    "model.name": "resnet50",
    "model.width": WIDTH,
    "model.batch_norm": "updated",
    "train.batch_size": 8,
    "train.first_round_epochs": 1,
    "train.epochs_per_round": 2,
    "data.image_size": 32,  # ResNet's smallest: compiling, not computing, is what takes time
    "checkpoint.every_steps": 1,
}
IN_PROCESS = {  # the same, for tiny_config (strings are Python there)
    **CLI,
    "model.name": "'resnet50'",
    "model.batch_norm": "'updated'",
    "checkpoint.every_steps": 0,
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(folder, flat arrays) of torchvision-layout ResNet-50 weights made here (random,
    non-trivial BatchNorm statistics) and converted as `convert --arch=resnet50` does."""
    import torch  # here only: the two-device script imports this module, and needs no torch
    from test_resnet import randomise

    from benchmarks.torch_resnet import TorchResNet

    root = tmp_path_factory.mktemp("resnet_weights")
    net = randomise(TorchResNet(width=round(64 * WIDTH)), seed=3)
    torch.save(net.state_dict(), root / "tiny_resnet50.pth")
    file = convert.convert(str(root / "tiny_resnet50.pth"), str(root / "w"), arch="resnet50")
    with np.load(file) as npz:
        return str(root / "w"), {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def runs(weights, tmp_path_factory):
    """(killed-and-resumed workdir, its CLI resume's stderr, uninterrupted workdir): killed
    in this process once round 2's first step of epoch 2 is saved, resumed by the CLI."""
    folder, _ = weights
    root = tmp_path_factory.mktemp("resnet_run")
    killed = root / "killed"
    config = tiny_config(
        {**IN_PROCESS, "checkpoint.every_steps": 1, "model.pretrained": repr(folder)}
    )
    run_until_killed(config, killed, at=(2, 2, 1))
    assert len(read_records(killed)) == 1  # round 1 done, round 2 under way
    resumed = run_cli(killed, {**CLI, "model.pretrained": folder})

    reference = root / "reference"
    config = tiny_config({**IN_PROCESS, "model.pretrained": repr(folder)})
    experiment = rsrl.Experiment.build(config, str(reference))
    experiment.run_folds(resume.start_or_resume(config, experiment.recorder, experiment.data))
    experiment.recorder.close()
    return killed, resumed.stderr, reference


def stats_of(tree) -> dict:
    """`batch_stats/...` -> array of a network state (or of the converted file's arrays)."""
    if network.STATS in tree:
        flat = traverse_util.flatten_dict(jax.device_get(tree[network.STATS]), sep="/")
        return {f"batch_stats/{k}": np.asarray(v) for k, v in flat.items()}
    return {k: v for k, v in tree.items() if k.startswith("batch_stats/")}


def test_rounds_resume_as_if_never_killed_and_update_the_statistics(runs, weights):
    killed, stderr, reference = runs
    assert "fold 0 round 2: resuming at epoch 2 batch 1" in stderr
    assert (killed / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    records = read_records(killed)
    assert [r["round"] for r in records] == [1, 2]
    _, file = weights
    for r in (1, 2):
        config, model, params, scores = checkpoints.load_network(str(killed), 0, r)
        assert isinstance(model, resnet.ResNet) and not model.frozen_stats
        assert model.width == 8 and config.model.batch_norm == "updated"
        assert params["head"]["kernel"].shape == (256, len(scores))
        other = checkpoints.load_network(str(reference), 0, r)[2]
        for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(other), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        stats = stats_of(params)
        assert sorted(stats) == sorted(stats_of(file)) and len(stats) == 2 * 53
        moved = max(np.abs(stats[k] - file[k]).max() for k in stats)
        assert moved > 1e-3  # updated: the running statistics follow the photos
    np.testing.assert_raises(
        AssertionError,
        np.testing.assert_array_equal,
        np.asarray(params["conv1"]["kernel"]),
        file["params/conv1/kernel"],
    )


def test_the_round_contract_predict_and_highlight_use_the_resnet(runs, tmp_path):
    killed, _, _ = runs
    mngr = checkpoints.manager(str(killed), 0, read_only=True)
    saved = checkpoints.load_contract(mngr, str(killed), 0, 1)
    mngr.close()
    assert saved.model["name"] == "resnet50" and saved.model["batch_norm"] == "updated"
    # The weights the run started from: the folder's ResNet file and its SHA-256.
    file = os.path.join(saved.pretrained["source"], pretrained.RESNET_FILE)
    assert saved.pretrained["file"] == pretrained.RESNET_FILE
    assert saved.pretrained["sha256"] == pretrained.sha256(file)
    paths = scene_photos(tmp_path / "photos")
    assert_predicts(killed, paths)
    model, params, geometry = assert_highlights_round_2(killed, paths, tmp_path / "maps", 8)
    assert geometry == (7, 2, 3)  # ResNet's conv1: 7x7, stride 2, padding 3
    maps = model.apply(
        network.variables(params), np.zeros((1, 32, 32, 3), np.float32), method="conv1_maps"
    )
    grid = highlight_maps.conv1_grid(32, geometry)
    assert maps.shape == (1, grid, grid, 8)


def test_resnet_config_mistakes_are_one_line(weights, tmp_path):
    folder, _ = weights
    base = {**IN_PROCESS, "model.pretrained": repr(folder)}
    config = tiny_config({**base, "model.batch_norm": "'moving'"})
    with pytest.raises(errors.ConfigError, match=r"model.batch_norm='moving': must be one of"):
        config_lib.validate(config)
    config = tiny_config({**base, "model.width": 0.25})  # the file is a width-0.125 network
    with pytest.raises(errors.ConfigError, match=r"these weights are for --config.model.width"):
        config_lib.validate(config)
    alexnet = {**base, "model.name": "'alexnet'", "data.image_size": 64}
    with pytest.raises(errors.ConfigError, match=r"no converted weights at .*alexnet_imagenet"):
        config_lib.validate(tiny_config(alexnet))
    with pytest.raises(errors.ConfigError, match=r"ResNet-50 weights: set --config.model.name=res"):
        config_lib.validate(tiny_config(alexnet))
    npz = os.path.join(folder, pretrained.RESNET_FILE)
    with pytest.raises(errors.ConfigError, match="holds ResNet-50 weights: set --config.model"):
        config_lib.validate(tiny_config({**alexnet, "model.pretrained": repr(npz)}))
    config = tiny_config({**base, "data.image_size": 24, "data.stored_size": 0})
    with pytest.raises(errors.ConfigError, match="ResNet-50 needs at least 32 pixels"):
        config_lib.validate(config)
    # embed: a folder whose ResNet file is damaged is named as such, not as missing AlexNet's
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    data = open(os.path.join(folder, pretrained.RESNET_FILE), "rb").read()
    (damaged / pretrained.RESNET_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(errors.ConfigError, match=r"resnet50_imagenet.npz is not a readable"):
        embed.backbone(str(damaged))
    with pytest.raises(errors.ConfigError, match=r"--image_size=16: ResNet-50 needs at least 32"):
        embed.backbone(folder, image_size=16)


# --- the train step's BatchNorm in each way the engine runs it ------------------------------

SMALL = resnet.ResNet((1,), num_classes=5, width=4, frozen_stats=False)  # 5 BatchNorms


def small_setup():
    """(tx, initial network state as numpy, two folds' batches [2, 8, ...], class terms)."""
    config = tiny_config({"train.optimizer": "'sgd'", "train.learning_rate": 0.05})
    tx = train.make_optimizer(config)
    params = host(network.init_params(SMALL, 32, seed=0))  # numpy: the steps donate their state
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 8, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, (2, 8)).astype(np.int32)
    terms = losses.loss_terms(np.full(5, 10), config.method)
    return tx, params, images, labels, terms


MASKS = np.array([[1] * 8, [1] * 3 + [0] * 5], np.float32)  # fold 1's batch is mostly padding
KEYS = (3, 4)  # each fold's step key


def host(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def gap_and_move(got, want, start) -> tuple[float, float]:
    """(max |got - want|, max |want - start|) over every leaf of three network states."""
    leaves = [jax.tree.leaves(t) for t in (got, want, start)]
    gap = max(float(np.abs(a - b).max()) for a, b, _ in zip(*leaves, strict=True))
    moved = max(float(np.abs(b - c).max()) for _, b, c in zip(*leaves, strict=True))
    return gap, moved


@pytest.fixture(scope="module")
def small():
    """The setup, the plain train step (compiled once here) and each fold's step alone."""
    tx, params, images, labels, terms = small_setup()
    step = train.make_train_step(SMALL, tx, 32)

    def alone(f, images_f=None, mask=None):
        state, sums = train.new_state(params, tx), train.zero_sums()
        x = images[f] if images_f is None else images_f
        m = MASKS[f] if mask is None else mask
        return host(step(state, sums, x, labels[f], m, jax.random.key(KEYS[f]), terms)[0].params)

    return tx, params, images, labels, terms, step, alone


def test_updated_statistics_count_only_unmasked_photos_and_an_empty_batch_changes_nothing(small):
    _, params, images, _, _, _, alone = small
    noisy = images[1].copy()
    noisy[3:] = 255 - noisy[3:]  # other padding: must not matter
    gap, moved = gap_and_move(alone(1, noisy), alone(1), params)
    assert gap < 1e-5 and moved > 1e-2, (gap, moved)
    stats_moved = gap_and_move(
        alone(1)[network.STATS], params[network.STATS], params[network.STATS]
    )
    assert stats_moved[0] > 1e-3  # updated: the running statistics follow the photos
    empty = alone(1, mask=np.zeros(8, np.float32))
    for x, y in zip(jax.tree.leaves(empty), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(x, y)


def test_frozen_statistics_stay_the_pretrained_ones_and_train_as_they_evaluate(small):
    tx, params, images, labels, terms, _, alone = small
    frozen = SMALL.clone(frozen_stats=True)
    step = train.make_train_step(frozen, tx, 32)
    state, sums = train.new_state(params, tx), train.zero_sums()
    new = host(step(state, sums, images[0], labels[0], MASKS[0], jax.random.key(3), terms)[0])
    kept = zip(*(jax.tree.leaves(p[network.STATS]) for p in (new.params, params)), strict=True)
    for x, y in kept:
        np.testing.assert_array_equal(x, y)
    assert gap_and_move(new.params, params, params)[0] > 1e-2  # the parameters did train
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype(np.float32)
    v = network.variables(new.params)
    np.testing.assert_array_equal(frozen.apply(v, x, train=True), frozen.apply(v, x, train=False))
    assert network.updates_stats(SMALL) and not network.updates_stats(frozen)


def test_folds_at_once_update_each_folds_statistics_as_alone(small):
    tx, params, images, labels, terms, step, alone = small
    mesh = placement.make_mesh(jax.devices()[:1])
    both = fold_axis.make_fold_step(step, mesh, 2)
    state = fold_axis.stack([train.new_state(params, tx)] * 2)
    sums = fold_axis.stack([train.zero_sums()] * 2)
    keys = jnp.stack([jax.random.key(k) for k in KEYS])
    out, _ = both(state, sums, images, labels, MASKS, keys, fold_axis.stack([terms] * 2))
    out = host(out.params)
    for f in range(2):
        got = jax.tree.map(lambda leaf, f=f: leaf[f], out)
        gap, moved = gap_and_move(got, alone(f), params)
        assert gap < 1e-4 and moved > 1000 * gap, (f, gap, moved)


# Two fake CPU devices need their own process: XLA fixes the device count when it starts. It
# compares its sharded step with one device's, which this process computes.
TWO_DEVICES = textwrap.dedent(
    """
    import pickle, sys
    sys.path.insert(0, "tests")
    import jax, numpy as np
    from test_resnet_run import KEYS, MASKS, SMALL, host, small_setup
    from rsrl_jax.engine import placement, train
    from rsrl_jax.models import network

    assert jax.device_count() == 2, jax.devices()
    tx, params, images, labels, terms = small_setup()
    mesh = placement.make_mesh(jax.devices())
    step = train.make_train_step(SMALL, tx, 32, mesh)
    placer = placement.BatchPlacer(mesh)
    x, y, m = placer.shard(images[1], labels[1], MASKS[1])
    state = placer.replicate(train.new_state(params, tx))
    new, _ = step(state, placer.replicate(train.zero_sums()), x, y, m, jax.random.key(KEYS[1]),
                  placer.replicate(terms))
    assert len(new.params[network.STATS]["bn1"]["mean"].sharding.device_set) == 2
    with open(sys.argv[1], "wb") as f:
        pickle.dump(host(new.params), f)
    """
)


def test_a_mesh_of_two_devices_updates_the_statistics_as_one_device(small, tmp_path):
    _, params, _, _, _, _, alone = small
    out = tmp_path / "two.pkl"
    run_on_cpu_devices(2, TWO_DEVICES, out)
    with open(out, "rb") as f:
        two = pickle.load(f)
    one = alone(1)  # fold 1's batch (3 photos and 5 of padding) on one device
    gap, moved = gap_and_move(two, one, params)
    assert gap < 1e-5 and moved > 1000 * gap, (gap, moved)
    stats_gap, stats_moved = gap_and_move(
        two[network.STATS], one[network.STATS], params[network.STATS]
    )
    assert stats_gap < 1e-5 and stats_moved > 1e-3, (stats_gap, stats_moved)
