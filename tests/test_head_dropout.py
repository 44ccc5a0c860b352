"""The MLP head's dropout (16 random bits a decision) and the step on an empty batch: what
lets a vmapped group of lanes train cheaply and still equal its single runs."""

import jax
import jax.numpy as jnp
import numpy as np

from conftest import tiny_config
from rsrl_jax.data import inputs
from rsrl_jax.engine import train
from rsrl_jax.method import losses
from rsrl_jax.models import heads, network


def test_keep_mask_keeps_its_share_and_a_lane_draws_the_same_mask_vmapped_or_alone():
    keys = jax.random.split(jax.random.key(3), 4)
    alone = np.stack([np.asarray(heads.keep_mask(k, (64, 512), 0.7)) for k in keys])
    vmapped = np.asarray(jax.vmap(lambda k: heads.keep_mask(k, (64, 512), 0.7))(keys))
    np.testing.assert_array_equal(alone, vmapped)
    assert abs(alone.mean() - 0.7) < 0.005  # 131k decisions: 4 standard errors
    assert not np.array_equal(alone[0], alone[1])  # each key its own mask
    odd = np.asarray(heads.keep_mask(keys[0], (3, 5), 0.5))  # an odd count: a half word left
    assert odd.shape == (3, 5) and odd.dtype == bool


def test_dropout_scales_what_it_keeps_and_is_the_identity_in_evaluation():
    x = jnp.ones((8, 256))
    layer = heads.HalfWordDropout(0.25)
    out = np.asarray(layer.apply({}, x, False, rngs={"dropout": jax.random.key(0)}))
    q = heads.keep_threshold(0.75) / 2**16
    assert set(np.unique(out)) == {0.0, np.float32(1 / q)}
    np.testing.assert_array_equal(np.asarray(layer.apply({}, x, True)), np.asarray(x))
    assert heads.keep_threshold(1.0) == 2**16 and heads.keep_threshold(0.0) == 0


def test_an_empty_batch_changes_neither_the_state_nor_the_step_counter():
    config = tiny_config({"model.name": "'mlp'", "model.hidden_widths": "(16,)"})
    model = network.make_model(config, num_classes=3)
    tx = train.make_optimizer(config)
    step = train.make_train_step(model, tx, inputs.FeatureInput(8))
    state = train.new_state(network.init_params(model, inputs.FeatureInput(8), seed=0), tx)
    terms = losses.loss_terms(np.array([4, 2, 2]), config.method)
    x = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    y = np.array([0, 1, 2, 0], np.int32)
    state, sums = step(
        state, train.zero_sums(), x, y, np.ones(4, np.float32), jax.random.key(0), terms
    )
    before = jax.tree.map(np.array, (state, sums))
    state, sums = step(state, sums, x, y, np.zeros(4, np.float32), jax.random.key(0), terms)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves((state, sums)), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))
    assert int(state.step) == 1
