"""The torchvision -> Flax ResNet-50 port: proven equal on torch's own forward pass (eval mode,
running BatchNorm statistics), through the convert command's .npz; the port refuses anything
that is not the network's state dict, naming the first mismatch.

The oracle is `benchmarks.torch_resnet.TorchResNet`, torchvision's code written out (torchvision
is not installed). Error is measured as max |ours - torch| / max |torch|, over all logits."""

import hashlib
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch
from flax import traverse_util
from torch import nn

from benchmarks.torch_resnet import TorchResNet
from rsrl_jax import errors
from rsrl_jax.models import alexnet, convert, pretrained, resnet

TINY = dict(stage_sizes=(1, 1, 1, 1), width=8)
TOLERANCE = 1e-4  # relative to the largest |torch value|


def randomise(net: TorchResNet, seed: int) -> TorchResNet:
    """Random weights and non-trivial BatchNorm: running statistics of one random batch
    (so activations keep their scale through the blocks), then shifted and scaled per
    channel, with random BN weights and biases. Returns `net` in eval mode."""
    torch.manual_seed(seed)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms:
            m.momentum = None  # a cumulative average: after one batch, that batch's statistics
        net.train()(torch.randn(4, 3, 64, 64))
        for m in norms:
            m.momentum = 0.1
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.running_mean.add_(0.1 * torch.randn_like(m.running_mean))
            m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.5, 2.0))
    return net.eval()


def numpy_state_dict(net) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in net.state_dict().items()}


def torch_forward(net, images: np.ndarray, method=None) -> np.ndarray:
    """`net` (or its `method`) on NHWC numpy images; NHWC / [B, C] numpy out."""
    with torch.no_grad():
        x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
        y = (method or net)(x).numpy()
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


def relative_error(got, want) -> float:
    assert np.shape(got) == np.shape(want)
    return float(np.abs(np.asarray(got) - want).max() / np.abs(want).max())


def images(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, height, width, 3)).astype(np.float32)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "rsrl_jax.convert", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def torch50():
    return randomise(TorchResNet(), seed=0)


@pytest.fixture(scope="module")
def pth50(torch50, tmp_path_factory):
    """torch50's state dict saved as torchvision names its files: resnet50-<SHA-256[:8]>.pth."""
    folder = tmp_path_factory.mktemp("resnet50")
    tmp = folder / "unnamed.pth"
    torch.save(torch50.state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    return tmp.rename(folder / f"resnet50-{digest[:8]}.pth"), digest


@pytest.fixture(scope="module")
def converted50(torch50, pth50):
    """The variables `python -m rsrl_jax.convert --arch=resnet50` wrote, read back."""
    pth, digest = pth50
    out = pth.parent / "converted"
    result = run_cli("--arch=resnet50", f"--torch_weights={pth}", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"SHA-256 {digest} starts with {digest[:8]}, as its name says" in result.stderr
    assert f"wrote {out / 'resnet50_imagenet.npz'}" in result.stdout
    return pretrained.read_variables(str(out / "resnet50_imagenet.npz"))


def test_reference_module_has_torchvision_resnet50_layout(torch50):
    state = torch50.state_dict()
    # torchvision's resnet50(): 320 state dict entries, 25,557,032 parameters.
    assert len(state) == 320
    assert sum(p.numel() for p in torch50.parameters()) == 25_557_032
    shapes = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert list(shapes.items()) == list(resnet.torchvision_shapes().items())
    assert {k for k in state if k.endswith("num_batches_tracked")} == resnet.optional_keys()
    assert shapes["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert shapes["fc.weight"] == (1000, 2048)
    # v1.5: a stage's stride is on the 3x3 convolution.
    assert torch50.layer2[0].conv1.stride == (1, 1) and torch50.layer2[0].conv2.stride == (2, 2)


def test_flax_resnet50_has_the_ported_structure(torch50):
    want = resnet.params_from_torchvision(numpy_state_dict(torch50))
    x = jax.ShapeDtypeStruct((1, 64, 64, 3), np.float32)
    model = resnet.ResNet50(1000)
    got = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
    shapes = lambda tree: {k: v.shape for k, v in traverse_util.flatten_dict(tree).items()}  # noqa: E731
    assert shapes(got) == shapes(want)


def test_converted_file_holds_the_port(torch50, converted50):
    want = traverse_util.flatten_dict(resnet.params_from_torchvision(numpy_state_dict(torch50)))
    got = traverse_util.flatten_dict(converted50)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value)


@pytest.mark.parametrize("height,width", [(224, 224), (160, 224)])
def test_resnet50_matches_torch_in_eval_mode(torch50, converted50, height, width):
    x = images(height, width, seed=height)
    want = torch_forward(torch50, x)
    model = resnet.ResNet50(1000)
    logits = jax.jit(model.apply)(converted50, x)
    assert np.abs(want).max() > 1.0  # the random net is not dead: a wrong layout would show
    assert relative_error(logits, want) <= TOLERANCE
    conv1 = model.apply({"params": converted50["params"]}, x, method="conv1_maps")
    assert relative_error(conv1, torch_forward(torch50, x, torch50.conv1)) <= TOLERANCE


@pytest.fixture(scope="module")
def tiny_torch():
    return randomise(TorchResNet(TINY["stage_sizes"], num_classes=5, width=TINY["width"]), 1)


def test_tiny_variant_matches_torch_and_uses_the_running_statistics(tiny_torch):
    variables = resnet.params_from_torchvision(numpy_state_dict(tiny_torch), **TINY)
    model = resnet.ResNet(TINY["stage_sizes"], 5, width=TINY["width"])
    x = images(40, 56, seed=1)

    @jax.jit
    def outputs(variables, x):
        batch_normalised, _ = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return (
            model.apply(variables, x, method="pooled_features"),
            model.apply(variables, x),
            model.clone(fast_gradients=False).apply(variables, x),  # XLA's max-pool
            batch_normalised,
        )

    pooled, logits, xla_pool_logits, batch_normalised = outputs(variables, x)
    assert pooled.shape == (2, 32 * TINY["width"])
    want_pooled = torch_forward(tiny_torch, x, tiny_torch.pooled_features)
    assert relative_error(pooled, want_pooled) <= TOLERANCE
    want = torch_forward(tiny_torch, x)
    assert relative_error(logits, want) <= TOLERANCE
    assert relative_error(xla_pool_logits, want) <= TOLERANCE
    # With the batch's statistics instead (train mode) the logits differ: eval used the file's.
    assert relative_error(batch_normalised, want) > 1e-2


def test_train_mode_batch_norm_as_torch_but_the_running_variance(tiny_torch):
    """Train mode normalises with the batch's statistics, as torch, and updates the running
    mean as torch (momentum 0.1); the running variance is updated with the batch's biased
    variance (flax), where torch takes the unbiased one: n / (n - 1) apart, n = B * H * W."""
    variables = resnet.params_from_torchvision(numpy_state_dict(tiny_torch), **TINY)
    model = resnet.ResNet(TINY["stage_sizes"], 5, width=TINY["width"])
    x = images(40, 56, seed=2)
    net = TorchResNet(TINY["stage_sizes"], num_classes=5, width=TINY["width"])
    net.load_state_dict(tiny_torch.state_dict())
    want = torch_forward(net.train(), x)
    train_apply = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))
    logits, updated = train_apply(variables, x)
    assert relative_error(logits, want) <= TOLERANCE
    old = variables["batch_stats"]["bn1"]
    new = updated["batch_stats"]["bn1"]
    torch_mean, torch_var = net.bn1.running_mean.numpy(), net.bn1.running_var.numpy()
    np.testing.assert_allclose(new["mean"], torch_mean, rtol=1e-5, atol=1e-6)
    n = 2 * 20 * 28  # conv1's output: stride 2
    batch_var_unbiased = (torch_var - 0.9 * old["var"]) / 0.1
    np.testing.assert_allclose(
        new["var"], 0.9 * old["var"] + 0.1 * batch_var_unbiased * (n - 1) / n, rtol=1e-4
    )


def shape_only_state_dict(shapes, **changes):
    """`shapes`' keys with zero-memory arrays; `changes` replace entries (None removes)."""
    sd = {k: np.broadcast_to(np.float32(0), s) for k, s in shapes.items()}
    sd.update(changes)
    return {k: v for k, v in sd.items() if v is not None}


@pytest.mark.parametrize(
    "changes,culprit",
    [
        ({"layer2.0.bn2.running_var": None}, "missing key 'layer2.0.bn2.running_var'"),
        # Two faults: the first in torchvision's order is named.
        (
            {"layer1.0.downsample.0.weight": None, "fc.bias": None},
            "missing key 'layer1.0.downsample.0.weight'",
        ),
        ({"layer1.1.conv1.weight": np.zeros(3, np.float32)}, "unexpected key 'layer1.1.conv1"),
        (
            {"layer3.0.conv2.weight": np.zeros((32, 32, 1, 1), np.float32)},
            r"'layer3.0.conv2.weight' has shape \(32, 32, 1, 1\), expected \(32, 32, 3, 3\)",
        ),
        ({"bn1.running_mean": np.zeros(8, np.int64)}, "'bn1.running_mean' has dtype int64"),
    ],
)
def test_refuses_a_state_dict_that_is_not_the_network(changes, culprit):
    sd = shape_only_state_dict(resnet.torchvision_shapes(num_classes=5, **TINY), **changes)
    with pytest.raises(ValueError, match=r"^not a ResNet \(stages \(1, 1, 1, 1\), width 8\) "):
        resnet.params_from_torchvision(sd, **TINY)
    with pytest.raises(ValueError, match=culprit):
        resnet.params_from_torchvision(sd, **TINY)


def test_step_counters_are_optional_and_the_head_any_size():
    shapes = resnet.torchvision_shapes(num_classes=3)
    counters = {k: np.zeros((), np.int64) for k in resnet.optional_keys()}
    for sd in (shape_only_state_dict(shapes), {**shape_only_state_dict(shapes), **counters}):
        variables = resnet.params_from_torchvision(sd)
        assert variables["params"]["head"]["kernel"].shape == (2048, 3)
        assert variables["batch_stats"]["layer4_2"]["bn3"]["var"].shape == (2048,)


def test_refuses_resnet50_with_another_depth_or_prefix():
    deeper = shape_only_state_dict(resnet.torchvision_shapes((3, 4, 23, 3)))  # resnet101
    with pytest.raises(ValueError, match="^not a ResNet-50 state dict: unexpected key 'layer3.6"):
        resnet.params_from_torchvision(deeper)
    parallel = {
        f"module.{k}": v for k, v in shape_only_state_dict(resnet.torchvision_shapes()).items()
    }
    with pytest.raises(ValueError, match="missing key 'conv1.weight'"):
        resnet.params_from_torchvision(parallel)


def test_the_wrong_arch_is_named(pth50, tmp_path):
    pth, _ = pth50
    want = "not an AlexNet state dict: missing key 'features.0.weight'; it is torchvision's "
    with pytest.raises(errors.DataError, match=want + "ResNet-50: pass --arch=resnet50"):
        convert.convert(str(pth), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    alex = shape_only_state_dict(alexnet.torchvision_shapes())
    want = "not a ResNet-50 state dict: missing key 'conv1.weight'; it is torchvision's AlexNet"
    with pytest.raises(errors.DataError, match=want):
        convert._port(alex, "resnet50", "alexnet.pth")


def test_a_file_its_resnet50_name_does_not_describe_is_refused(tmp_path):
    pth = tmp_path / "resnet50-0676ba61.pth"
    torch.save({"conv1.weight": torch.zeros(8)}, pth)
    want = f"{pth}: its name promises a SHA-256 starting with 0676ba61, .*torchvision's ResNet-50"
    with pytest.raises(errors.DataError, match=want) as refused:
        convert.convert(str(pth), str(tmp_path / "out"), arch="resnet50")
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in str(refused.value)
    assert not (tmp_path / "out").exists()
