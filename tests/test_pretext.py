"""The pretext corpus, the pretraining command, and the demo's shipped backbone."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rsrl_jax.data import pretext, scenes, synthetic
from rsrl_jax.engine import pretrain
from rsrl_jax.models import pretrained, pretrained_shapes
from rsrl_jax.models.alexnet import AlexNet


def test_labels_say_what_a_scene_shows_and_what_was_done_to_it():
    scene = scenes.sample_scene(np.random.default_rng(0))
    scene.update(
        landscape=True, sky=2, ground=4, shape="triangle", blur=2.49, exposure=-0.95,
        contrast=0.5, clutter=[scene["clutter"][0]] * 3 if scene["clutter"] else [],
    )  # fmt: skip
    labels = dict(zip(pretext.LABELS, pretext.labels_of(scene), strict=True))
    assert labels["shape"] == scenes.SHAPES.index("triangle")
    assert (labels["background"], labels["sky"], labels["ground"]) == (0, 2, 4)
    # Levels: equal fifths of each range. Blur 2.49 of 2.5 is the top, exposure -0.95 of
    # [-1, 1] the bottom, contrast 0.5 of [0.06, 1] the third fifth ((0.5 - 0.06) / 0.94 = 0.47).
    assert (labels["blur"], labels["exposure"], labels["contrast"]) == (4, 0, 2)
    assert labels["clutter"] == len(scene["clutter"])
    scene.update(landscape=False)  # a backdrop has neither sky nor ground
    labels = dict(zip(pretext.LABELS, pretext.labels_of(scene), strict=True))
    assert labels["background"] == 1
    assert (labels["sky"], labels["ground"]) == (len(scenes.SKIES), len(scenes.GROUNDS))


def test_corpus_is_seeded_labelled_in_range_and_not_the_demos_photos():
    a = pretext.generate(12, 32, seed=0)
    b = pretext.generate(12, 32, seed=0)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.labels.shape == (12, len(pretext.LABELS))
    assert np.all(a.labels >= 0) and np.all(a.labels < np.array(list(pretext.LABELS.values())))
    demo = synthetic.generate(12, 32, seed=0)
    for image in a.images:  # another random stream: no pretext photo is a demo photo
        assert not any(np.array_equal(image, d) for d in demo.images)


def test_pretext_loss_is_the_sum_of_each_labels_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, sum(pretext.LABELS.values()))).astype(np.float32)
    labels = np.stack([rng.integers(n, size=3) for n in pretext.LABELS.values()], 1)
    want, start = 0.0, 0
    for j, n in enumerate(pretext.LABELS.values()):
        part = logits[:, start : start + n]
        log_p = part - np.log(np.exp(part).sum(1, keepdims=True))
        want += -np.mean(log_p[np.arange(3), labels[:, j]])
        start += n
    np.testing.assert_allclose(float(pretrain.pretext_loss(logits, labels)), want, rtol=1e-5)
    predicted = np.asarray(pretrain.predictions(jnp.asarray(logits)))
    assert predicted.shape == (3, len(pretext.LABELS))
    assert predicted[0, 0] == np.argmax(logits[0, : pretext.LABELS["shape"]])


def test_pretraining_learns_an_easy_label():
    """A few hundred photos are enough to start telling the sky's kind (chance about 0.25)."""
    from configs import pretext as pretext_config

    config = pretext_config.get_config()
    config.model.width, config.model.fc_dim = 0.25, 64
    config.pretext.num_train, config.pretext.num_heldout = 768, 128
    config.train.epochs, config.train.batch_size = 8, 32  # at 4, -O0 (conftest) sat at the margin
    result = pretrain.pretrain(config)
    assert result["accuracy"]["sky"] > result["chance"]["sky"] + 0.15
    assert set(result["params"]) == set(pretrained.BACKBONE) | {"head"}


TINY_PRETEXT = [
    "--config.model.width=0.25",
    "--config.model.fc_dim=64",
    "--config.pretext.num_train=64",
    "--config.pretext.num_heldout=32",
    "--config.train.epochs=1",
    "--config.train.batch_size=32",
]


@pytest.fixture(scope="module")
def pretrained_twice(tmp_path_factory):
    """The pretrain command run twice with one seed: (out dirs, stdout of the first)."""
    outs, stdout = [], None
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp(name)
        cmd = [sys.executable, "-m", "rsrl_jax.pretrain", "--config=configs/pretext.py"]
        result = subprocess.run(
            cmd + TINY_PRETEXT + [f"--out={out}"], capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr[-3000:]
        stdout = stdout or result.stdout
        outs.append(out)
    return outs, stdout


def test_pretrain_command_writes_the_backbone_and_its_provenance(pretrained_twice):
    (out, _), stdout = pretrained_twice
    file = out / "demo_alexnet.npz"
    record = json.loads((out / "demo_alexnet.json").read_text())
    assert record["sha256"] == pretrained.sha256(str(file))
    assert record["command"].startswith("python -m rsrl_jax.pretrain --config=configs/pretext.py")
    assert record["seed"] == 0 and record["network"] == {
        "image_size": 64, "width": 0.25, "fc_dim": 64
    }  # fmt: skip
    assert set(record["pretext_accuracy"]) == set(pretext.LABELS) == set(record["chance"])
    for label in pretext.LABELS:
        assert f"{label:>10}: held-out accuracy {record['pretext_accuracy'][label]:.3f}" in stdout
    with np.load(file) as npz:  # the backbone only, float16
        assert sorted({k.split("/")[0] for k in npz}) == sorted(pretrained.BACKBONE)
        assert all(npz[k].dtype == np.float16 for k in npz)
    assert pretrained.problem(str(file), 0.25, 64) is None


def test_pretraining_is_reproducible_from_its_seed(pretrained_twice):
    (a, b), _ = pretrained_twice
    assert (a / "demo_alexnet.npz").read_bytes() == (b / "demo_alexnet.npz").read_bytes()


def test_shipped_backbone_matches_its_record_and_loads_as_converted_weights_do():
    from configs import demo

    config = demo.get_config()
    assert config.model.pretrained == "shipped:demo_alexnet"
    file = pretrained.weights_file(config.model.pretrained)
    record = pretrained.provenance(config.model.pretrained)
    assert record["sha256"] == pretrained.sha256(file)
    assert {"command", "seed", "commit", "pretext_accuracy", "chance"} <= set(record)
    assert record["network"] == {
        "image_size": config.data.image_size,
        "width": config.model.width,
        "fc_dim": config.model.fc_dim,
    }
    # The pretext taught it the scene's background and the distortions' levels (the subject's
    # shape and the clutter count it barely learned: docs/method.md "The demo").
    for label in ("background", "sky", "ground", "blur", "exposure", "contrast"):
        assert record["pretext_accuracy"][label] > record["chance"][label] + 0.2, label
    model = AlexNet(8, width=config.model.width, fc_dim=config.model.fc_dim)
    start = pretrained.initial_params(config, model, seed=0)
    with np.load(file) as npz:
        for layer in pretrained.BACKBONE:
            np.testing.assert_array_equal(start[layer]["kernel"], npz[f"{layer}/kernel"])
            assert start[layer]["kernel"].dtype == np.float32
    assert start["head"]["kernel"].shape == (config.model.fc_dim, 8)


def test_weights_that_changed_after_their_record_are_refused(pretrained_twice, tmp_path):
    (out, _), _ = pretrained_twice
    for name in ("demo_alexnet.npz", "demo_alexnet.json"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    file = tmp_path / "demo_alexnet.npz"
    assert pretrained.problem(str(file), 0.25, 64) is None
    data = bytearray(file.read_bytes())
    data[-30] ^= 1  # one bit of the zip's tail
    file.write_bytes(bytes(data))
    why = pretrained.problem(str(file), 0.25, 64)
    assert "does not match the SHA-256 in its record" in why and "demo_alexnet.json" in why
    # An unknown shipped name says which ones there are.
    assert "shipped:demo_alexnet" in pretrained.problem("shipped:no_such_weights", 0.5, 512)


def test_an_unwritable_out_is_refused_before_training(tmp_path, monkeypatch):
    """Not after the minutes of pretraining: the folder is made and written to first."""
    from rsrl_jax import errors

    monkeypatch.setattr(pretrain, "pretrain", lambda config: pytest.fail("trained"))
    (tmp_path / "a_file").write_text("")
    with pytest.raises(errors.DataError, match="a_file: cannot write the backbone there"):
        pretrain.write_backbone(None, str(tmp_path / "a_file"), "command")


def test_pretrain_step_trains_every_layer():
    model = AlexNet(sum(pretext.LABELS.values()), width=0.25, fc_dim=16, dropout_rate=0.0)
    params = model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)))["params"]
    tx = optax.adam(1e-3)
    step = pretrain.make_pretrain_step(model, tx)
    photos = pretext.generate(4, 64, seed=3)
    before = jax.tree.map(np.array, params)
    after, _, loss = step(params, tx.init(params), photos.images, photos.labels, jax.random.key(1))
    assert np.isfinite(float(loss))
    for layer in before:
        assert not np.array_equal(before[layer]["kernel"], after[layer]["kernel"]), layer


def test_pretext_config_values_pretraining_cannot_use_are_refused():
    from configs import pretext as pretext_config
    from rsrl_jax.config import validate_pretext
    from rsrl_jax.errors import ConfigError

    validate_pretext(pretext_config.get_config())
    for field, value, why in (
        ("pretext.num_train", 10, "at least one batch"),
        ("train.epochs", 0, "must be >= 1"),
        ("data.image_size", 16, "63"),
        ("train.learning_rate", -1.0, "positive"),
        ("model.width", 0.0, "positive"),
    ):
        config = pretext_config.get_config()
        config.update_from_flattened_dict({field: value})
        with pytest.raises(ConfigError, match=why) as e:
            pretrain.pretrain(config)  # refused before any photo is drawn
        assert str(e.value).startswith(f"config.{field}=")


def test_damaged_or_unnamed_weights_are_refused_in_one_message(tmp_path):
    from rsrl_jax.errors import ConfigError

    params = {
        name.split("/")[0]: {} for name in pretrained_shapes.backbone_shapes(0.25, 64)
    }  # fmt: skip
    for name, shape in pretrained_shapes.backbone_shapes(0.25, 64).items():
        layer, leaf = name.split("/")
        params[layer][leaf] = np.ones(shape, np.float32)
    file = pretrained.save(params, str(tmp_path))
    data = bytearray(open(file, "rb").read())
    middle = len(data) // 2  # inside fc6's values: the headers still read
    data[middle : middle + 16] = b"\xff" * 16
    open(file, "wb").write(bytes(data))
    assert pretrained.problem(file, 0.25, 64) is None
    with pytest.raises(ConfigError, match="cannot be read"):
        pretrained.load_backbone(file, 0.25, 64)
    # A shipped name is a name: no path out of the package's folder.
    assert pretrained.weights_file("shipped:../weights/demo_alexnet").endswith("?.npz")
    assert "no converted weights" in pretrained.problem("shipped:../weights/demo_alexnet")
