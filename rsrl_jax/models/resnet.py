"""ResNet with bottleneck blocks in torchvision's layout (ResNet-50 v1.5), NHWC.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, as torchvision's
`models/resnet.py` builds it ("v1.5": a block's stride is on its 3x3 convolution, not its
first 1x1). Stem: conv1 7x7/2 (padding 3, no bias), bn1, ReLU, max-pool 3x3/2 (padding 1).
Then stages layer1..layer4 of `stage_sizes` bottleneck blocks with `width * 2**i` inner
channels and 4x as many out; each stage's first block strides 2 (but layer1's) and projects
its shortcut (1x1 conv + BN) wherever shape changes. Global average pool, then `head`.

Names follow torchvision's: `conv1`, `bn1`, block `layer{i}_{j}` = `layer{i}.{j}` with
`conv1..3`, `bn1..3`, `downsample_conv` / `downsample_bn` = `downsample.0` / `.1`; `head` =
`fc`, the N-way layer that transfer learning replaces. BatchNorm as torch's (eps 1e-5,
running averages kept with momentum 0.1 = flax's 0.9) in the `batch_stats` collection.
"""

import functools

import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from rsrl_jax.models import pooling, state_dicts

RESNET50_STAGES = (3, 4, 6, 3)
TORCHVISION_WIDTH = 64  # the stem's and layer1's inner channels in torchvision's ResNets
EXPANSION = 4  # a bottleneck block's output channels over its inner ones
BN_EPSILON = 1e-5  # torch.nn.BatchNorm2d's eps
BN_MOMENTUM = 0.9  # flax's decay of the running averages = 1 - torch's momentum 0.1
# torchvision's init: convolutions kaiming_normal_(mode="fan_out", nonlinearity="relu").
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _pad(p: int):
    return ((p, p), (p, p))


class Bottleneck(nn.Module):
    """torchvision's `Bottleneck`: 1x1 -> 3x3 (stride here) -> 1x1 (x4), + shortcut, ReLU.

    [B, H, W, C] -> [B, ceil(H / strides), ceil(W / strides), 4 * features].
    """

    features: int
    strides: int = 1
    downsample: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, batch_statistics: bool = False, mask=None):
        """`batch_statistics`: normalise with the batch's statistics (over the photos where
        `mask` [B] is true) and update the running ones, else with the running ones."""
        conv = functools.partial(nn.Conv, use_bias=False, kernel_init=conv_init, dtype=self.dtype)
        norm = functools.partial(
            nn.BatchNorm,
            use_running_average=not batch_statistics,
            momentum=BN_MOMENTUM,
            epsilon=BN_EPSILON,
            dtype=self.dtype,
        )
        f, out, s = self.features, self.features * EXPANSION, (self.strides, self.strides)
        y = conv(f, (1, 1), padding=_pad(0), name="conv1")(x)
        y = nn.relu(norm(name="bn1")(y, mask=_bn_mask(mask, y)))
        y = conv(f, (3, 3), strides=s, padding=_pad(1), name="conv2")(y)
        y = nn.relu(norm(name="bn2")(y, mask=_bn_mask(mask, y)))
        y = conv(out, (1, 1), padding=_pad(0), name="conv3")(y)
        y = norm(name="bn3")(y, mask=_bn_mask(mask, y))
        if self.downsample:
            x = conv(out, (1, 1), strides=s, padding=_pad(0), name="downsample_conv")(x)
            x = norm(name="downsample_bn")(x, mask=_bn_mask(mask, x))
        return nn.relu(y + x)


def _bn_mask(mask, x):
    """A [B] sample mask as BatchNorm's mask of `x` [B, H, W, C] (None: every sample)."""
    if mask is None:
        return None
    return jnp.broadcast_to(mask.astype(bool)[:, None, None, None], x.shape)


def _max_pool(x, fast_gradients: bool):
    """torch's MaxPool2d(3, stride=2, padding=1): the padding never wins (-inf)."""
    if fast_gradients:
        x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
        return pooling.max_pool(x, 3, 2)
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding=_pad(1))


def block_layout(stage_sizes, width: int):
    """[(stage 1.., block 0.., inner channels, stride, has downsample)] in torchvision's order."""
    blocks, channels = [], width
    for i, size in enumerate(stage_sizes):
        features = width * 2**i
        for j in range(size):
            strides = 2 if i > 0 and j == 0 else 1
            downsample = j == 0 and (strides != 1 or channels != features * EXPANSION)
            blocks.append((i + 1, j, features, strides, downsample))
            channels = features * EXPANSION
    return blocks


class ResNet(nn.Module):
    """Bottleneck ResNet on ImageNet-normalised float32 NHWC input [B, H, W, 3].

    `__call__(x, train, mask=None)` -> logits [B, num_classes] float32. `train` (unless
    `frozen_stats`) batch-normalises with the batch's statistics, over the photos where
    `mask` [B] is true (a padded batch's padding does not count), and updates `batch_stats`
    (apply with mutable=["batch_stats"]); otherwise BatchNorm uses the running statistics.
    `frozen_stats=True` is fine-tuning with frozen statistics: train and eval mode compute
    the same function (there is no dropout), the usual choice for small batches. Any H, W
    >= 1 (global average pool). `width` is the stem's and layer1's inner channels
    (torchvision: 64); pooled features have 32 * width (2048).
    """

    CONV1 = (7, 2, 3)  # conv1's kernel, stride, padding (the highlight maps' geometry)

    stage_sizes: tuple[int, ...]
    num_classes: int
    width: int = 64
    dtype: jnp.dtype = jnp.float32
    # The stem's max-pool gradient, as `AlexNet.fast_gradients` (models.pooling on XLA:CPU).
    fast_gradients: bool = True
    frozen_stats: bool = False

    def setup(self):
        self.conv1 = nn.Conv(
            self.width,
            (7, 7),
            strides=(2, 2),
            padding=_pad(3),
            use_bias=False,
            kernel_init=conv_init,
            dtype=self.dtype,
        )
        self.bn1 = nn.BatchNorm(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=self.dtype)
        stages = {}
        for stage, _, features, strides, downsample in block_layout(self.stage_sizes, self.width):
            block = Bottleneck(features, strides, downsample, self.dtype)
            stages.setdefault(f"layer{stage}", []).append(block)
        for name, blocks in stages.items():  # flax names the blocks layer{i}_{j}
            setattr(self, name, blocks)
        self.head = nn.Dense(self.num_classes, dtype=self.dtype)

    def conv1_maps(self, x):
        """Output of the first convolution, before BatchNorm and ReLU: [B, H', W', width]
        with H' = ceil(H / 2); needs only `params`."""
        return self.conv1(x)

    def pooled_features(self, x, train: bool = False, mask=None):
        """The globally average-pooled last stage, the head's input: [B, 32 * width]."""
        batch = train and not self.frozen_stats
        x = self.conv1(x)
        x = nn.relu(self.bn1(x, use_running_average=not batch, mask=_bn_mask(mask, x)))
        x = _max_pool(x, self.fast_gradients)
        for stage in range(1, len(self.stage_sizes) + 1):
            for block in getattr(self, f"layer{stage}"):
                x = block(x, batch, mask)
        return jnp.mean(x, axis=(1, 2))

    def features(self, x, train: bool = False):
        """The penultimate layer, as `AlexNet.features` names it (what `embed` writes): the
        pooled features [B, 32 * width]."""
        return self.pooled_features(x, train)

    def __call__(self, x, train: bool = False, mask=None):
        return self.head(self.pooled_features(x, train, mask)).astype(jnp.float32)


def ResNet50(num_classes: int, **kwargs) -> ResNet:
    """torchvision's resnet50: `ResNet` with stages (3, 4, 6, 3), width 64 (25.6M params
    with a 1000-way head); `kwargs` are `ResNet`'s other fields."""
    return ResNet(RESNET50_STAGES, num_classes, **kwargs)


# --- torchvision's weights ----------------------------------------------------------------

BN_PARAMS = {"weight": "scale", "bias": "bias"}
BN_STATS = {"running_mean": "mean", "running_var": "var"}


def _layers(stage_sizes, width: int):
    """[(torchvision module name, our module path, kind 'conv'|'bn', conv OIHW shape or
    BN channels)] of the network below the head, in torchvision's order."""
    layers = [("conv1", ("conv1",), "conv", (width, 3, 7, 7)), ("bn1", ("bn1",), "bn", width)]
    channels = width
    for stage, j, features, _, downsample in block_layout(stage_sizes, width):
        torch_block, block = f"layer{stage}.{j}", f"layer{stage}_{j}"
        out = features * EXPANSION
        convs = [(features, channels, 1), (features, features, 3), (out, features, 1)]
        for k, (o, i, size) in enumerate(convs, 1):
            layers.append(
                (f"{torch_block}.conv{k}", (block, f"conv{k}"), "conv", (o, i, size, size))
            )
            layers.append((f"{torch_block}.bn{k}", (block, f"bn{k}"), "bn", o))
        if downsample:
            layers.append(
                (
                    f"{torch_block}.downsample.0",
                    (block, "downsample_conv"),
                    "conv",
                    (out, channels, 1, 1),
                )
            )
            layers.append((f"{torch_block}.downsample.1", (block, "downsample_bn"), "bn", out))
        channels = out
    return layers


def describe(stage_sizes, width: int) -> str:
    if tuple(stage_sizes) == RESNET50_STAGES and width == 64:
        return "a ResNet-50"
    return f"a ResNet (stages {tuple(stage_sizes)}, width {width})"


def torchvision_shapes(
    stage_sizes=RESNET50_STAGES, width: int = 64, num_classes: int = 1000
) -> dict[str, tuple[int, ...]]:
    """torchvision's ResNet state dict, name -> shape in its order, without BatchNorm's
    `num_batches_tracked` counters (`optional_keys`)."""
    shapes = {}
    for torch_name, _, kind, shape in _layers(stage_sizes, width):
        if kind == "conv":
            shapes[f"{torch_name}.weight"] = shape
        else:
            for key in (*BN_PARAMS, *BN_STATS):
                shapes[f"{torch_name}.{key}"] = (shape,)
    pooled = width * 2 ** (len(stage_sizes) - 1) * EXPANSION
    shapes["fc.weight"] = (num_classes, pooled)
    shapes["fc.bias"] = (num_classes,)
    return shapes


def optional_keys(stage_sizes=RESNET50_STAGES, width: int = 64) -> set[str]:
    """BatchNorm's step counters: torch writes them, the port ignores them (old files lack
    them)."""
    return {
        f"{n}.num_batches_tracked" for n, _, kind, _ in _layers(stage_sizes, width) if kind == "bn"
    }


def params_from_torchvision(
    state_dict, stage_sizes=RESNET50_STAGES, width: int | None = None
) -> dict:
    """Flax variables {"params", "batch_stats"} of `ResNet(stage_sizes, num_classes, width)`
    from torchvision's state dict (name -> numpy array); numpy float32 arrays. `width`
    None: conv1's output channels (64 for torchvision's; a narrower network of the same
    layout converts too).

    Convolutions OIHW -> HWIO; fc [out, in] -> head kernel [in, out]; BatchNorm weight, bias
    -> params scale, bias and running_mean, running_var -> batch_stats mean, var;
    num_batches_tracked is ignored. num_classes is fc's; the rest must be the network's:
    ValueError naming the first missing key, wrong shape or dtype, or unexpected key.
    """
    head = state_dict.get("fc.weight") if hasattr(state_dict, "get") else None
    if width is None:
        stem = state_dict.get("conv1.weight") if hasattr(state_dict, "get") else None
        width = np.shape(stem)[0] if np.ndim(stem) == 4 else 64
    num_classes = np.shape(head)[0] if np.ndim(head) == 2 else 1000
    state_dicts.check(
        state_dict,
        torchvision_shapes(stage_sizes, width, num_classes),
        describe(stage_sizes, width),
        optional_keys(stage_sizes, width),
    )
    f32 = lambda name: np.ascontiguousarray(state_dict[name], np.float32)  # noqa: E731
    params, stats = {}, {}
    for torch_name, path, kind, _ in _layers(stage_sizes, width):
        *parents, leaf = path
        p, s = params, stats
        for parent in parents:
            p, s = p.setdefault(parent, {}), s.setdefault(parent, {})
        if kind == "conv":
            p[leaf] = {
                "kernel": np.ascontiguousarray(f32(f"{torch_name}.weight").transpose(2, 3, 1, 0))
            }
        else:
            p[leaf] = {ours: f32(f"{torch_name}.{theirs}") for theirs, ours in BN_PARAMS.items()}
            s[leaf] = {ours: f32(f"{torch_name}.{theirs}") for theirs, ours in BN_STATS.items()}
    params["head"] = {"kernel": np.ascontiguousarray(f32("fc.weight").T), "bias": f32("fc.bias")}
    return {"params": params, "batch_stats": stats}
