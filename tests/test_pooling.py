"""The max-pool gradient written for XLA:CPU is XLA's; bf16 logits stay close to f32's."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax.tree_util import keystr, tree_leaves_with_path

from conftest import tiny_config
from rsrl_jax import compiler
from rsrl_jax.models import network, pooling
from rsrl_jax.models.alexnet import AlexNet


def _xla_pool(x):
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


def test_max_pool_gradient_goes_to_the_first_maximum_as_xlas():
    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(size=(2, 13, 15, 3)), 0).astype(np.float32)
    x[0, :5, :5, :] = 1.5  # whole windows of equal maxima: only the first may get the gradient
    x[1, 2, :, 1] = x[1, 2, 0, 1]  # ties along a row
    x = jnp.asarray(x)

    def ours(x):
        return pooling.max_pool(x, 3, 2)

    np.testing.assert_array_equal(ours(x), _xla_pool(x))
    g = jnp.asarray(rng.uniform(1, 2, size=_xla_pool(x).shape), jnp.float32)
    want = jax.vjp(_xla_pool, x)[1](g)[0]
    got = jax.vjp(ours, x)[1](g)[0]
    np.testing.assert_array_equal(got != 0, want != 0)  # the same elements chosen
    # Equal but for the order of additions where windows overlap (a tie sent to another
    # element would be off by a whole g, >= 1).
    assert float(jnp.abs(got - want).max()) <= 1e-5


def _tiny_alexnet(**fields):
    return AlexNet(num_classes=4, width=0.25, fc_dim=32, dropout_rate=0.0, **fields)


def test_alexnet_gradients_match_xlas_and_the_pools_use_ours():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 67, 67, 3)), jnp.float32)
    labels = jnp.array([0, 1, 2, 3])
    ours, xla = _tiny_alexnet(), _tiny_alexnet(fast_gradients=False)
    params = ours.init(jax.random.key(0), x)["params"]

    def loss(model):
        def f(p):
            logits = model.apply({"params": p}, x)
            return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), labels])

        return f

    assert str(jax.make_jaxpr(loss(ours))(params)).count("custom_vjp_call") == 3  # on CPU
    assert str(jax.make_jaxpr(loss(xla))(params)).count("custom_vjp_call") == 0
    want = jax.jit(jax.grad(loss(xla)))(params)
    got = jax.jit(jax.grad(loss(ours)))(params)
    for (path, g), w in zip(tree_leaves_with_path(got), jax.tree.leaves(want), strict=True):
        scale = float(jnp.abs(w).max())
        assert float(jnp.abs(g - w).max()) <= 1e-5 * scale, keystr(path)


def test_bfloat16_logits_are_close_to_float32s():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 67, 67, 3)), jnp.float32)
    f32, bf16 = _tiny_alexnet(), _tiny_alexnet(dtype=jnp.bfloat16)
    params = f32.init(jax.random.key(0), x)["params"]
    shapes = jax.eval_shape(lambda: bf16.init(jax.random.key(0), x))  # dtypes, no compiling
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(shapes))
    want = jax.jit(f32.apply)({"params": params}, x)
    got = jax.jit(bf16.apply)({"params": params}, x)
    assert got.dtype == jnp.float32  # logits (and so the loss) in float32
    scale = float(jnp.abs(want).max())
    assert scale > 0.1
    error = float(jnp.abs(got - want).max())
    assert 0 < error <= 0.05 * scale  # bf16 rounding shows, and stays small


def test_make_model_fixes_the_pool_gradient_for_the_backend_when_built():
    config = tiny_config()
    assert network.make_model(config, 3).fast_gradients is True  # this CPU: ours
    assert network.make_model(config, 3, fast_gradients=False).fast_gradients is False
    assert compiler.fast_pool_gradients("cpu")
    assert not compiler.fast_pool_gradients("gpu") and not compiler.fast_pool_gradients("tpu")
