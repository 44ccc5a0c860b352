"""The jitted train step: a bad step changes nothing; bf16 compute keeps float32 state."""

import jax
import jax.numpy as jnp
import numpy as np

from conftest import tiny_config
from rsrl_jax.engine import train
from rsrl_jax.method import losses


def _step_and_state(compute_dtype="float32"):
    config = tiny_config({"model.compute_dtype": repr(compute_dtype)})
    model = train.make_model(config, num_classes=3)
    tx = train.make_optimizer(config)
    step = train.make_train_step(model, tx, flip=True, image_size=64)
    params = train.init_params(model, 64, seed=0)
    per_class = losses.class_terms(np.array([4, 2, 2]), config.method)
    return step, train.new_state(params, tx), per_class


def _batch(rng, n=8):
    images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    return images, rng.integers(0, 3, n).astype(np.int32), np.ones(n, np.float32)


def test_a_non_finite_step_leaves_parameters_and_optimizer_state_unchanged():
    step, state, per_class = _step_and_state()
    rng = np.random.default_rng(0)
    key = jax.random.key(0)
    state, sums = step(state, train.zero_sums(), *_batch(rng), key, per_class)
    before = jax.tree.map(np.array, (state.params, state.opt_state))
    images, labels, mask = _batch(rng)
    mask[0] = np.nan  # a NaN weight makes the loss NaN
    state, sums = step(state, sums, images, labels, mask, key, per_class)
    after = jax.tree.map(np.array, (state.params, state.opt_state))
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(state.step) == 2
    assert int(sums["first_bad_step"]) == 1  # the second step (counted from 0)
    state, sums = step(state, sums, *_batch(rng), key, per_class)  # a good one moves again
    moved = jax.tree.map(np.array, state.params)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(before[0]), jax.tree.leaves(moved), strict=True)
    )


def test_bfloat16_compute_trains_float32_parameters_and_optimizer_state():
    step, state, per_class = _step_and_state("bfloat16")
    rng = np.random.default_rng(1)
    state, sums = step(state, train.zero_sums(), *_batch(rng), jax.random.key(0), per_class)
    leaves = jax.tree.leaves((state.params, state.opt_state))
    assert all(x.dtype == jnp.float32 for x in leaves if jnp.issubdtype(x.dtype, jnp.floating))
    assert np.isfinite(float(sums["loss_sum"])) and int(sums["first_bad_step"]) > 10**9


def test_cpu_library_choice_is_accepted_and_an_unknown_option_falls_back():
    # On this jaxlib the steps do get their library choice (the speed-up is not dropped)...
    assert train.compiler_options(train.CPU_TRAIN_OPTIONS) == train.CPU_TRAIN_OPTIONS
    assert train.compiler_options(train.CPU_FORWARD_OPTIONS) == train.CPU_FORWARD_OPTIONS
    # ...and one another XLA does not know leaves its defaults instead of failing the run.
    assert train.compiler_options({train.YNN_TYPES: "LIBRARY_FUSION_TYPE_NONE_SUCH"}) is None


def test_all_finite_flags_any_inf_or_nan_and_accepts_large_finite_values():
    tree = {"a": jnp.full((3, 2), 1e30), "b": jnp.ones(4)}  # squares would overflow: still ok
    assert bool(train.all_finite(tree))
    for bad in (jnp.inf, -jnp.inf, jnp.nan):
        assert not bool(train.all_finite({**tree, "b": jnp.ones(4).at[2].set(bad)}))
