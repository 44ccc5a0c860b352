"""The faster gradients compute what XLA's own gradient ops do; bf16 logits stay close."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from jax import lax
from jax.tree_util import keystr, tree_leaves_with_path

from rsrl_jax.models import fast_ops
from rsrl_jax.models.alexnet import AlexNet

NHWC = lax.conv_dimension_numbers((1, 1, 1, 1), (1, 1, 1, 1), ("NHWC", "HWIO", "NHWC"))


def _conv_grads(conv, x, w, g):
    _, vjp = jax.vjp(conv, x, w)
    return vjp(g)


@pytest.mark.parametrize(
    "height,width,kernel,stride,pad",
    [
        (67, 64, 11, 4, 2),  # conv1's shape class: stride 4, space-to-depth path
        (27, 27, 5, 1, 2),  # conv2
        (13, 15, 3, 1, 1),  # conv3-5
        (31, 30, 5, 2, 1),  # an odd output size at stride 2
        (20, 21, 4, 3, 0),  # kernel not a multiple of the stride, no padding
    ],
)
def test_conv_weight_gradient_equals_xlas(height, width, kernel, stride, pad):
    rng = np.random.default_rng(kernel * stride)
    x = jnp.asarray(rng.normal(size=(3, height, width, 5)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(kernel, kernel, 5, 7)), jnp.float32)
    args = ((stride, stride), ((pad, pad), (pad, pad)))

    def plain(x, w):
        return lax.conv_general_dilated(x, w, *args, dimension_numbers=NHWC)

    def fast(x, w):
        return fast_ops.conv_im2col_gradient(x, w, *args)

    y = plain(x, w)
    np.testing.assert_array_equal(fast(x, w), y)  # the forward is XLA's own op
    g = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    (want_x, want_w), (got_x, got_w) = _conv_grads(plain, x, w, g), _conv_grads(fast, x, w, g)
    np.testing.assert_array_equal(got_x, want_x)  # the input gradient too
    # The weight gradient: the same sums, added in another order.
    scale = float(jnp.abs(want_w).max())
    assert float(jnp.abs(got_w - want_w).max()) <= 1e-5 * scale


def test_im2col_is_chosen_for_large_outputs_only():
    # AlexNet at 224px, batch 32: conv1 55x55, conv2 27x27, conv3-5 13x13 with >= 256 channels.
    pays = fast_ops.im2col_pays
    assert pays((32, 224, 224, 3), (11, 11, 3, 64), (4, 4), ((2, 2), (2, 2)))
    assert pays((32, 27, 27, 64), (5, 5, 64, 192), (1, 1), ((2, 2), (2, 2)))
    assert pays((32, 13, 13, 384), (3, 3, 384, 256), (1, 1), ((1, 1), (1, 1)))
    # The demo (64px, half width): conv1 15x15 with 32 channels, conv2 7x7.
    assert not pays((64, 64, 64, 3), (11, 11, 3, 32), (4, 4), ((2, 2), (2, 2)))
    assert not pays((64, 7, 7, 32), (5, 5, 32, 96), (1, 1), ((2, 2), (2, 2)))


def test_unsupported_convolutions_fall_back_to_lax():
    x = jnp.ones((1, 9, 9, 4))
    w = jnp.ones((3, 3, 2, 6))  # two feature groups
    got = fast_ops.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=NHWC, feature_group_count=2
    )
    want = lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=NHWC, feature_group_count=2
    )
    np.testing.assert_array_equal(got, want)


def test_max_pool_gradient_goes_to_the_first_maximum_as_xlas():
    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(size=(2, 13, 15, 3)), 0).astype(np.float32)
    x[0, :5, :5, :] = 1.5  # whole windows of equal maxima: only the first may get the gradient
    x[1, 2, :, 1] = x[1, 2, 0, 1]  # ties along a row
    x = jnp.asarray(x)

    def plain(x):
        return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")

    def fast(x):
        return fast_ops.max_pool(x, 3, 2)

    np.testing.assert_array_equal(fast(x), plain(x))
    g = jnp.asarray(rng.uniform(1, 2, size=plain(x).shape), jnp.float32)
    want = jax.vjp(plain, x)[1](g)[0]
    got = jax.vjp(fast, x)[1](g)[0]
    assert np.count_nonzero(want) == np.count_nonzero(got)
    # Equal but for the order of additions where windows overlap (a tie sent to another
    # element would be off by a whole g, >= 1).
    assert float(jnp.abs(got - want).max()) <= 1e-5


def _tiny_alexnet(**fields):
    return AlexNet(num_classes=4, width=0.25, fc_dim=32, dropout_rate=0.0, **fields)


def test_alexnet_fast_gradients_match_xlas_and_are_used():
    # 127px: conv1's output is 31x31, so it takes the im2col gradient; the others are small.
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 127, 127, 3)), jnp.float32)
    labels = jnp.array([0, 1, 2, 3])
    fast, plain = _tiny_alexnet(), _tiny_alexnet(fast_gradients=False)
    params = fast.init(jax.random.key(0), x)["params"]

    def loss(model):
        def f(p):
            logits = model.apply({"params": p}, x)
            return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), labels])

        return f

    # conv1 and the three max-pools take the custom gradients; the plain model none.
    assert str(jax.make_jaxpr(loss(fast))(params)).count("custom_vjp_call") == 4
    assert str(jax.make_jaxpr(loss(plain))(params)).count("custom_vjp_call") == 0
    want = jax.jit(jax.grad(loss(plain)))(params)
    got = jax.jit(jax.grad(loss(fast)))(params)
    for (path, g), w in zip(tree_leaves_with_path(got), jax.tree.leaves(want), strict=True):
        scale = float(jnp.abs(w).max())
        assert float(jnp.abs(g - w).max()) <= 1e-4 * scale, keystr(path)


def test_bfloat16_logits_are_close_to_float32s():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 67, 67, 3)), jnp.float32)
    f32, bf16 = _tiny_alexnet(), _tiny_alexnet(dtype=jnp.bfloat16)
    params = f32.init(jax.random.key(0), x)["params"]
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(bf16.init(jax.random.key(0), x)))
    want = jax.jit(f32.apply)({"params": params}, x)
    got = jax.jit(bf16.apply)({"params": params}, x)
    assert got.dtype == jnp.float32  # logits (and so the loss) in float32
    scale = float(jnp.abs(want).max())
    assert scale > 0.1
    error = float(jnp.abs(got - want).max())
    assert 0 < error <= 0.05 * scale  # bf16 rounding shows, and stays small
