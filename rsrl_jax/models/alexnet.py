"""AlexNet in torchvision's layout (features / 6x6 adaptive average pool / classifier), NHWC.

Layer names: conv1..conv5 = torchvision `features.{0,3,6,8,10}`, fc6, fc7 =
`classifier.{1,4}`, head = `classifier.6` (the N-way layer that transfer learning replaces).
`width` and `fc_dim` shrink the network for quick CPU demos; the defaults are torchvision's.
"""

import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from rsrl_jax.models import pooling, state_dicts

CONV_CHANNELS = (64, 192, 384, 256, 256)
MIN_IMAGE_SIZE = 63  # smallest input whose last max-pool still has a 3x3 window


def adaptive_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] averaging weights of torch's AdaptiveAvgPool over one axis.

    Bin i covers [floor(i * in / out), ceil((i + 1) * in / out)), as in PyTorch.
    """
    m = np.zeros((out_size, in_size), np.float32)
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool(x: jnp.ndarray, out_size: int = 6) -> jnp.ndarray:
    """torch.nn.AdaptiveAvgPool2d(out_size) for NHWC input, exact for any input size."""
    ph = jnp.asarray(adaptive_pool_matrix(x.shape[1], out_size), x.dtype)
    pw = jnp.asarray(adaptive_pool_matrix(x.shape[2], out_size), x.dtype)
    return jnp.einsum("oh,bhwc,pw->bopc", ph, x, pw)


class PooledDense(nn.Dense):
    """fc6: an `nn.Dense` (same parameters, kernel [out_size**2 * C, features]) that can also
    read the map before torch's AdaptiveAvgPool2d(out_size), `over_pool`.

    Pooling is linear, so dense(flatten(pool(x))) = flatten(x) @ (P^T kernel) + bias with P
    the pool's [out^2, h*w] matrix: when the map is smaller than the pool's output (AlexNet's
    1x1 conv5 map at 64px is copied 36 times into fc6's 9216 inputs), folding the pool into the
    kernel first (out^2 * h * w * C * features multiply-adds once per batch) makes the product
    h*w*C wide instead of out^2*C (256 instead of 9216 at 64px: 1.6x the forward pass of the
    whole network on CPU). The same function up to the order of float additions. Not with
    dropout between pool and fc6 (each copy draws its own mask): `AlexNet.features` folds in
    evaluation and when `dropout_rate` is 0.
    """

    @nn.compact
    def over_pool(self, x, out_size: int):
        """dense(flatten(adaptive_avg_pool(x, out_size))) for NHWC `x` [B, h, w, C] ->
        [B, features]."""
        b, h, w, c = x.shape
        if h * w >= out_size * out_size:  # nothing to save: pool, then the plain layer
            return self(adaptive_avg_pool(x, out_size).reshape(b, -1))
        kernel = self.param(
            "kernel", self.kernel_init, (out_size * out_size * c, self.features), self.param_dtype
        )
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        ph = jnp.asarray(adaptive_pool_matrix(h, out_size), kernel.dtype)
        pw = jnp.asarray(adaptive_pool_matrix(w, out_size), kernel.dtype)
        blocks = kernel.reshape(out_size, out_size, c, self.features)
        folded = jnp.einsum("oh,pw,opcf->hwcf", ph, pw, blocks).reshape(h * w * c, -1)
        return x.reshape(b, -1) @ folded + bias


def _max_pool(x, fast_gradients: bool):
    if fast_gradients:
        return pooling.max_pool(x, 3, 2)
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class AlexNet(nn.Module):
    """torchvision AlexNet; input is normalised float NHWC, output logits [B, num_classes]."""

    CONV1 = (11, 4, 2)  # conv1's kernel, stride, padding (the highlight maps' geometry)

    num_classes: int
    width: float = 1.0
    fc_dim: int = 4096
    dropout_rate: float = 0.5
    dtype: jnp.dtype = jnp.float32
    # The max-pools' gradient: True = the one written for XLA:CPU (`models.pooling`: XLA's
    # forward and gradient, up to the order of float additions; exact on every backend),
    # False = XLA's own (`select_and_scatter`, 3-4x slower on CPU; GPUs and TPUs have a fast
    # library one). A field fixed when the model is built (`models.network.make_model` picks
    # it for the backend), so tracing reads no global.
    fast_gradients: bool = True

    def setup(self):
        c = [max(1, round(ch * self.width)) for ch in CONV_CHANNELS]
        conv = lambda ch, k, s, p, name: nn.Conv(  # noqa: E731
            ch, (k, k), strides=(s, s), padding=((p, p), (p, p)), dtype=self.dtype, name=name
        )
        self.conv1 = conv(c[0], 11, 4, 2, "conv1")
        self.conv2 = conv(c[1], 5, 1, 2, "conv2")
        self.conv3 = conv(c[2], 3, 1, 1, "conv3")
        self.conv4 = conv(c[3], 3, 1, 1, "conv4")
        self.conv5 = conv(c[4], 3, 1, 1, "conv5")
        self.fc6 = PooledDense(self.fc_dim, dtype=self.dtype, name="fc6")
        self.fc7 = nn.Dense(self.fc_dim, dtype=self.dtype, name="fc7")
        self.head = nn.Dense(self.num_classes, dtype=self.dtype, name="head")
        self.dropout = nn.Dropout(self.dropout_rate)

    def conv1_maps(self, x):
        """Output of the first convolution, before ReLU: [B, H', W', 64 * width]."""
        return self.conv1(x)

    def __call__(self, x, train: bool = False):
        return self.head(self.features(x, train)).astype(jnp.float32)

    def features(self, x, train: bool = False):
        """fc7's activations after its ReLU, the penultimate layer: [B, fc_dim] in the compute
        dtype (what `python -m rsrl_jax.embed` writes; the head reads them)."""
        if x.shape[1] < MIN_IMAGE_SIZE or x.shape[2] < MIN_IMAGE_SIZE:
            raise ValueError(f"AlexNet needs inputs of at least {MIN_IMAGE_SIZE}px, got {x.shape}")
        pool = lambda y: _max_pool(y, self.fast_gradients)  # noqa: E731
        x = pool(nn.relu(self.conv1(x)))
        x = pool(nn.relu(self.conv2(x)))
        x = nn.relu(self.conv3(x))
        x = nn.relu(self.conv4(x))
        x = pool(nn.relu(self.conv5(x)))
        if train and self.dropout_rate > 0:  # a mask over the pooled copies: pool, then fc6
            x = adaptive_avg_pool(x, 6)
            x = x.reshape(x.shape[0], -1)  # NHWC flatten: (h, w, c) order
            x = nn.relu(self.fc6(self.dropout(x, deterministic=False)))
        else:  # the same function, the pool folded into fc6 (PooledDense)
            x = nn.relu(self.fc6.over_pool(x, 6))
        x = self.dropout(x, deterministic=not train)
        return nn.relu(self.fc7(x))


# torchvision's parameter names -> ours. fc6's input is the flattened 6x6x256 pool output.
TORCHVISION_LAYERS = {
    "features.0": "conv1",
    "features.3": "conv2",
    "features.6": "conv3",
    "features.8": "conv4",
    "features.10": "conv5",
    "classifier.1": "fc6",
    "classifier.4": "fc7",
    "classifier.6": "head",
}
POOL_SIZE = 6


def torchvision_shapes(num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """The state dict of torchvision's `alexnet()`: name -> shape, in torchvision's order."""
    c = CONV_CHANNELS
    weights = {
        "features.0": (c[0], 3, 11, 11),
        "features.3": (c[1], c[0], 5, 5),
        "features.6": (c[2], c[1], 3, 3),
        "features.8": (c[3], c[2], 3, 3),
        "features.10": (c[4], c[3], 3, 3),
        "classifier.1": (4096, c[4] * POOL_SIZE * POOL_SIZE),
        "classifier.4": (4096, 4096),
        "classifier.6": (num_classes, 4096),
    }
    shapes = {}
    for layer, shape in weights.items():
        shapes[f"{layer}.weight"] = shape
        shapes[f"{layer}.bias"] = shape[:1]
    return shapes


def check_torchvision_state_dict(state_dict) -> None:
    """Raises ValueError naming the first way `state_dict` is not torchvision's AlexNet.

    Keys are checked in torchvision's order (missing, then shape and dtype), then the first
    unexpected key (`models.state_dict.check`). Only the last layer's number of classes may
    differ from ImageNet's 1000.
    """
    head = state_dict.get("classifier.6.weight") if hasattr(state_dict, "get") else None
    num_classes = np.shape(head)[0] if np.ndim(head) == 2 else 1000
    state_dicts.check(state_dict, torchvision_shapes(num_classes), "an AlexNet")


def params_from_torchvision(state_dict) -> dict:
    """Flax params of `AlexNet(num_classes, width=1, fc_dim=4096)` from torchvision's weights.

    `state_dict` maps torchvision names to numpy arrays. Convolutions go OIHW -> HWIO and
    Linear (out, in) -> Dense (in, out). fc6 also reorders its inputs: torch flattens the
    pooled map as (c, h, w), this model as (h, w, c).
    """
    check_torchvision_state_dict(state_dict)
    params = {}
    for torch_name, name in TORCHVISION_LAYERS.items():
        w = np.asarray(state_dict[f"{torch_name}.weight"], np.float32)
        b = np.asarray(state_dict[f"{torch_name}.bias"], np.float32)
        if w.ndim == 4:
            kernel = w.transpose(2, 3, 1, 0)
        elif name == "fc6":
            out = w.shape[0]
            w = w.reshape(out, CONV_CHANNELS[-1], POOL_SIZE, POOL_SIZE)
            kernel = w.transpose(2, 3, 1, 0).reshape(-1, out)
        else:
            kernel = w.T
        params[name] = {"kernel": np.ascontiguousarray(kernel), "bias": b}
    return params
