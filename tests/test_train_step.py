"""The jitted train step: a bad step changes nothing; bf16 compute keeps float32 state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from rsrl_jax import compiler
from rsrl_jax.data import inputs
from rsrl_jax.engine import train
from rsrl_jax.method import losses
from rsrl_jax.models import network, resnet
from rsrl_jax.models.alexnet import AlexNet


def _step_and_state(compute_dtype="float32"):
    config = tiny_config({"model.compute_dtype": repr(compute_dtype)})
    model = network.make_model(config, num_classes=3)
    tx = train.make_optimizer(config)
    step = train.make_train_step(model, tx, inputs.PhotoInput(64, flip=True))
    params = network.init_params(model, 64, seed=0)
    per_class = losses.loss_terms(np.array([4, 2, 2]), config.method)
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
    assert compiler.compiler_options(compiler.CPU_TRAIN_OPTIONS) == compiler.CPU_TRAIN_OPTIONS
    assert compiler.compiler_options(compiler.CPU_FORWARD_OPTIONS) == compiler.CPU_FORWARD_OPTIONS
    # ...and one another XLA does not know leaves its defaults instead of failing the run.
    assert compiler.compiler_options({compiler.YNN_TYPES: "LIBRARY_FUSION_TYPE_NONE_SUCH"}) is None


def test_all_finite_flags_any_inf_or_nan_and_accepts_large_finite_values():
    tree = {"a": jnp.full((3, 2), 1e30), "b": jnp.ones(4)}  # squares would overflow: still ok
    assert bool(train.all_finite(tree))
    for bad in (jnp.inf, -jnp.inf, jnp.nan):
        assert not bool(train.all_finite({**tree, "b": jnp.ones(4).at[2].set(bad)}))


def _tiny_model_and_params():
    """A 1/64-wide AlexNet and zero parameters of its shapes (no compile to make them)."""
    model = AlexNet(num_classes=2, width=1 / 64, fc_dim=4)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
    return model, jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes["params"])


def test_step_builders_compile_with_the_options_they_are_given():
    model, params = _tiny_model_and_params()
    # 224px: fc6 reads the 6x6 pool (at 64px the pool is folded into a product too small for
    # XLA to give YNNPACK)
    photos = np.zeros((2, 224, 224, 3), np.uint8)

    def ynn_fusions(options) -> int:
        """How many ops of the compiled forward step XLA:CPU gave to YNNPACK."""
        step = train.make_eval_step(model, compiler_options=options)
        return step.lower(params, photos).compile().as_text().count('"kind":"__ynn_fusion"')

    # The documented default is the measured choice on this CPU: Eigen for both, no YNNPACK.
    assert compiler.default_compiler_options("forward") == dict(compiler.CPU_FORWARD_OPTIONS)
    assert ynn_fusions(None) == 0
    assert ynn_fusions({}) > 0  # {}: XLA's own libraries (YNNPACK), another program
    # Explicit options are passed as given, not checked and dropped like the default's.
    tx = train.make_optimizer(tiny_config())
    step = train.make_train_step(model, tx, compiler_options={"xla_no_such": "1"})
    args = (train.new_state(params, tx), train.zero_sums(), photos, np.zeros(2, np.int32))
    class_terms = losses.loss_terms(np.array([1, 1]), tiny_config().method)
    with pytest.raises(Exception, match="No such compile option"):
        step(*args, np.ones(2, np.float32), jax.random.key(0), class_terms)


def test_the_measured_cpu_options_are_read_only_and_kinds_are_named():
    with pytest.raises(TypeError):
        compiler.CPU_TRAIN_OPTIONS[compiler.YNN_TYPES] = ""  # type: ignore[index]
    with pytest.raises(TypeError):
        compiler.CPU_OPTIONS["train"] = {}  # type: ignore[index]
    assert compiler.default_compiler_options("train") == dict(compiler.CPU_TRAIN_OPTIONS)
    assert compiler.default_compiler_options("dense_train") == {}  # XLA's own, said as {}
    with pytest.raises(ValueError, match="'backward'"):
        compiler.default_compiler_options("backward")


def test_initial_parameters_are_those_of_flax_init_whatever_the_compile_options():
    """init_params compiles the initializers without LLVM's expensive passes on CPU (faster
    to compile): the parameters are bit for bit those of a plain jitted `model.init`."""
    assert compiler.compiler_options(network.CPU_INIT_OPTIONS) is not None  # used on this CPU
    model = AlexNet(num_classes=8, width=0.25, fc_dim=64)
    ours = network.init_params(model, 64, seed=5)
    x = np.zeros((1, 64, 64, 3), np.float32)
    plain = jax.jit(model.init)(jax.random.key(5), x)["params"]
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(plain), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Leaving a pretrained backbone's layers out draws the rest bit for bit as the whole init.
    fresh = network.init_params(model, 64, seed=5, skip=frozenset(plain) - {"head", "fc7"})
    assert set(fresh) == {"head", "fc7"}
    for a, b in zip(
        jax.tree.leaves(fresh), jax.tree.leaves([plain["fc7"], plain["head"]]), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_resnets_fresh_head_is_that_of_its_whole_init():
    model = resnet.ResNet((1, 1, 1, 1), num_classes=5, width=4)
    whole = network.init_params(model, 32, seed=2)
    head = network.init_params(model, 32, seed=2, skip=frozenset(whole) - {"head"})
    assert set(head) == {"head"}  # BatchNorm's statistics are left out with the backbone
    for a, b in zip(jax.tree.leaves(head["head"]), jax.tree.leaves(whole["head"]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
