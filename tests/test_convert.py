"""The torchvision -> Flax AlexNet port: proven equal on torch's own forward pass, and the
converter refuses anything that is not torchvision's AlexNet, naming the first mismatch."""

import hashlib
import logging
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.torch_alexnet import TorchAlexNet
from rsrl_jax import errors
from rsrl_jax.models import convert, pretrained
from rsrl_jax.models.alexnet import AlexNet, params_from_torchvision, torchvision_shapes


@pytest.fixture(scope="module")
def torch_net():
    """Random weights at a scale that keeps activations alive through all eight layers."""
    torch.manual_seed(0)
    net = TorchAlexNet().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.uniform_(module.bias, -0.1, 0.1)
    return net


@pytest.fixture(scope="module")
def state_dict(torch_net):
    return {k: v.numpy() for k, v in torch_net.state_dict().items()}


def shape_only_state_dict(**changes):
    """torchvision's keys and shapes with zero-memory arrays; `changes` replace entries."""
    sd = {k: np.broadcast_to(np.float32(0), s) for k, s in torchvision_shapes().items()}
    sd.update(changes)
    return {k: v for k, v in sd.items() if v is not None}


def test_reference_module_has_torchvision_state_dict_layout(torch_net):
    got = {k: tuple(v.shape) for k, v in torch_net.state_dict().items()}
    assert list(got.items()) == list(torchvision_shapes().items())


# 224 and 256x200: conv5's map is at least 6x6, pooled, then fc6; 64 (1x1) and 100x80 (2x1):
# the pool is folded into fc6 (`alexnet.PooledDense`), the same function as torch's.
@pytest.mark.parametrize("height,width", [(224, 224), (256, 200), (64, 64), (100, 80)])
def test_converted_model_matches_torch_logits_and_conv1(torch_net, state_dict, height, width):
    images = np.random.default_rng(height).normal(size=(2, height, width, 3)).astype(np.float32)
    with torch.no_grad():
        x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
        want_logits = torch_net(x).numpy()
        want_conv1 = torch_net.features[0](x).numpy().transpose(0, 2, 3, 1)
    variables = {"params": params_from_torchvision(state_dict)}
    model = AlexNet(num_classes=1000)
    logits = np.asarray(jax.jit(model.apply)(variables, images))
    conv1 = np.asarray(model.apply(variables, images, method=AlexNet.conv1_maps))

    scale = np.abs(want_logits).max()
    assert scale > 1.0  # the random net is not dead: a wrong layout would show
    assert np.abs(logits - want_logits).max() <= 1e-4 * scale
    assert conv1.shape == want_conv1.shape
    assert np.abs(conv1 - want_conv1).max() <= 1e-4 * np.abs(want_conv1).max()


def test_the_pool_folded_into_fc6_trains_as_pool_then_fc6():
    """Without dropout, training goes through the folded fc6 too: its gradients are those of
    the pool followed by the plain layer (the parameters' layout is torchvision's)."""
    from flax import linen as nn

    from rsrl_jax.models.alexnet import adaptive_avg_pool

    model = AlexNet(num_classes=5, width=0.25, fc_dim=32, dropout_rate=0.0, fast_gradients=False)
    x = np.random.default_rng(0).normal(size=(3, 64, 80, 3)).astype(np.float32)
    params = model.init(jax.random.key(0), x)["params"]
    assert params["fc6"]["kernel"].shape == (36 * 64, 32)

    def unfolded(m, x):
        pool = lambda y: nn.max_pool(y, (3, 3), (2, 2))  # noqa: E731
        y = pool(nn.relu(m.conv2(pool(nn.relu(m.conv1(x))))))
        y = pool(nn.relu(m.conv5(nn.relu(m.conv4(nn.relu(m.conv3(y)))))))
        y = adaptive_avg_pool(y, 6).reshape(len(y), -1)
        return m.head(nn.relu(m.fc7(nn.relu(m.fc6(y)))))

    loss = lambda f: lambda p: jnp.sum(f(p) ** 2)  # noqa: E731
    ours = jax.grad(loss(lambda p: model.apply({"params": p}, x, train=True)))(params)
    want = jax.grad(loss(lambda p: nn.apply(unfolded, model)({"params": p}, x)))(params)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(want), strict=True):
        assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max() + 1e-7


def test_fc6_needs_the_channel_last_reordering(torch_net, state_dict):
    """A port that only transposed fc6 (ignoring NCHW vs NHWC flattening) is caught."""
    images = np.random.default_rng(1).normal(size=(1, 224, 224, 3)).astype(np.float32)
    with torch.no_grad():
        want = torch_net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    params = params_from_torchvision(state_dict)
    params["fc6"]["kernel"] = np.ascontiguousarray(state_dict["classifier.1.weight"].T)
    wrong = np.asarray(AlexNet(num_classes=1000).apply({"params": params}, images))
    assert np.abs(wrong - want).max() > 1e-2 * np.abs(want).max()


def test_head_may_have_any_number_of_classes():
    sd = shape_only_state_dict(
        **{
            "classifier.6.weight": np.zeros((8, 4096), np.float32),
            "classifier.6.bias": np.zeros(8, np.float32),
        }
    )
    assert params_from_torchvision(sd)["head"]["kernel"].shape == (4096, 8)


@pytest.mark.parametrize(
    "changes,culprit",
    [
        ({"classifier.4.bias": None}, "missing key 'classifier.4.bias'"),
        # Two faults: the first in torchvision's order is named.
        ({"features.3.weight": None, "classifier.4.bias": None}, "missing key 'features.3.weight'"),
        ({"features.1.weight": np.zeros(3, np.float32)}, "unexpected key 'features.1.weight'"),
        (
            {"features.8.weight": np.zeros((256, 384, 5, 5), np.float32)},
            r"'features.8.weight' has shape \(256, 384, 5, 5\), expected \(256, 384, 3, 3\)",
        ),
        ({"features.0.bias": np.zeros(64, np.int64)}, "'features.0.bias' has dtype int64"),
    ],
)
def test_refuses_a_state_dict_that_is_not_alexnet(changes, culprit):
    with pytest.raises(ValueError, match=culprit):
        params_from_torchvision(shape_only_state_dict(**changes))


def test_refuses_data_parallel_names():
    sd = {f"module.{k}": v for k, v in shape_only_state_dict().items()}
    with pytest.raises(ValueError, match="missing key 'features.0.weight'"):
        params_from_torchvision(sd)


def test_refuses_files_that_are_not_state_dicts(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pth: not a PyTorch state dict file"):
        convert.load_torch_state_dict(str(text))
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match="tensor.pth: holds a Tensor, not a state dict"):
        convert.load_torch_state_dict(str(tensor))
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        convert.load_torch_state_dict(str(tmp_path / "absent.pth"))


class _WritesAFileWhenUnpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_code_inside_a_weights_file_never_runs(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _WritesAFileWhenUnpickled(str(marker))}, evil)
    with pytest.raises(ValueError, match="evil.pth: .*refused it .*io.open.*none of its code"):
        convert.load_torch_state_dict(str(evil))
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the control: a plain unpickling does run it
    assert marker.exists()


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "rsrl_jax.convert", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def save_named_by_digest(net, folder, name="alexnet-owt"):
    """Saves `net`'s state dict as torchvision names files: NAME-<first 8 of SHA-256>.pth."""
    tmp = folder / "unnamed.pth"
    torch.save(net.state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    return tmp.rename(folder / f"{name}-{digest[:8]}.pth"), digest


def test_cli_converts_a_saved_pth(tmp_path, torch_net, state_dict):
    pth, digest = save_named_by_digest(torch_net, tmp_path)
    out = tmp_path / "converted"
    result = run_cli(f"--torch_weights={pth}", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"SHA-256 {digest} starts with {digest[:8]}, as its name says" in result.stderr
    assert pretrained.problem(str(out)) is None
    want = params_from_torchvision(state_dict)
    with np.load(out / pretrained.WEIGHTS_FILE, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(f"{layer}/{k}" for layer in want for k in want[layer])
        for layer, leaves in want.items():
            for k, v in leaves.items():
                np.testing.assert_array_equal(npz[f"{layer}/{k}"], v)


def test_cli_refuses_a_wrong_state_dict_naming_the_key(tmp_path):
    pth = tmp_path / "small.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 5, 5)}, pth)
    result = run_cli(f"--torch_weights={pth}", f"--out={tmp_path / 'out'}")
    assert result.returncode != 0
    assert "'features.0.weight' has shape (64, 3, 5, 5), expected (64, 3, 11, 11)" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "name, prefix",
    [
        ("alexnet-owt-7be5be79.pth", "7be5be79"),
        ("resnet18-f37072fd.pth", "f37072fd"),
        ("ALEXNET-OWT-7BE5BE79.PTH", "7be5be79"),
        ("vit_b_16-c867db91.pt", "c867db91"),
        ("alexnet.pth", None),
        ("model-2023.pth", None),  # a year, not a digest: torchvision uses 8 or more digits
        ("alexnet-owt-7be5be79.pth.bak", None),
        ("alexnet-owt-7be5be79x.pth", None),
        # A second download keeps its digest: a browser's " (1)", wget's ".1", another suffix.
        ("alexnet-owt-7be5be79 (1).pth", "7be5be79"),
        ("alexnet-owt-7be5be79(2).pth", "7be5be79"),
        ("alexnet-owt-7be5be79.pth.1", "7be5be79"),
        ("alexnet-owt-7be5be79.tar", "7be5be79"),
        ("alexnet-owt-7be5be79 copy.pth", "7be5be79"),
    ],
)
def test_digest_prefix_is_read_from_torchvision_names(name, prefix):
    assert convert.name_hash_prefix(f"some/dir/{name}") == prefix


def small_state_dict():
    """A few KB standing in for weights where only the file's bytes matter."""
    return {"features.0.weight": torch.arange(4096, dtype=torch.float32)}


def test_cli_refuses_a_file_its_name_does_not_describe(tmp_path):
    """The issue's example: weights that are not the file the torchvision name promises."""
    pth = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(small_state_dict(), pth)
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    result = run_cli(f"--torch_weights={pth}", f"--out={tmp_path / 'out'}")
    assert result.returncode != 0
    assert f"{pth}: its name promises a SHA-256 starting with 7be5be79" in result.stderr
    assert f"the file's is {digest}" in result.stderr
    assert "not an AlexNet" not in result.stderr  # refused before loading
    assert not (tmp_path / "out").exists()


def test_corrupt_downloads_are_refused_before_loading(tmp_path):
    unnamed = tmp_path / "unnamed.pth"
    torch.save(small_state_dict(), unnamed)
    data = unnamed.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    name = f"alexnet-owt-{digest[:8]}.pth"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    # A truncated download, an error page saved under the weights' name, a flipped bit: each
    # is refused on its digest, naming both (torch.load would have said something else).
    for kind, content in (
        ("truncated", data[: len(data) // 2]),
        ("page", b"<html>404 Not Found</html>"),
        ("flipped", bytes(flipped)),
    ):
        bad = tmp_path / kind / name
        bad.parent.mkdir()
        bad.write_bytes(content)
        actual = hashlib.sha256(content).hexdigest()
        want = f"{bad}: its name promises a SHA-256 starting with {digest[:8]}, .*is {actual}"
        with pytest.raises(errors.DataError, match=want):
            convert.convert(str(bad), str(tmp_path / kind / "out"))
        assert not (tmp_path / kind / "out").exists()
    # The intact file passes the check (and only then is read, and refused as not AlexNet).
    good = tmp_path / name
    unnamed.rename(good)
    assert convert.check_name_hash(str(good)) == (digest, digest[:8])
    with pytest.raises(ValueError, match="not an AlexNet state dict"):
        convert.convert(str(good), str(tmp_path / "out"))


def test_a_name_without_digest_is_not_checked_and_its_digest_logged(tmp_path, caplog):
    pth = tmp_path / "my_alexnet.pth"
    torch.save(small_state_dict(), pth)
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    assert convert.check_name_hash(str(pth)) == (digest, None)
    with caplog.at_level(logging.INFO), pytest.raises(ValueError, match="not an AlexNet"):
        convert.convert(str(pth), str(tmp_path / "out"))
    assert f"{pth}: SHA-256 {digest} (its name carries no digest" in caplog.text
