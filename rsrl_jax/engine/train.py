"""Training state, optimizer and the pure, jitted train and eval steps.

The batch has a fixed shape for the whole run: the last partial batch is padded and its
padding masked out of the loss, so each step compiles once, whatever a round's training set
size. Batches are sharded along the `data` axis of a mesh over the devices; parameters and
optimizer state are replicated. The network itself (`make_model`, its state) is built in
`models/network.py`, below the engine; its names are importable from here too.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rsrl_jax import compiler
from rsrl_jax.compiler import fast_pool_gradients as fast_pool_gradients
from rsrl_jax.data import inputs
from rsrl_jax.method import losses

# The network's construction lives below the engine (models/network.py); its names stay
# importable from here.
from rsrl_jax.models.network import BATCH_NORM as BATCH_NORM
from rsrl_jax.models.network import CPU_INIT_OPTIONS as CPU_INIT_OPTIONS
from rsrl_jax.models.network import FEATURE_MODELS as FEATURE_MODELS
from rsrl_jax.models.network import MODELS as MODELS
from rsrl_jax.models.network import STATS as STATS
from rsrl_jax.models.network import abstract_params as abstract_params
from rsrl_jax.models.network import init_params as init_params
from rsrl_jax.models.network import make_model as make_model
from rsrl_jax.models.network import network_state as network_state
from rsrl_jax.models.network import resnet_width as resnet_width
from rsrl_jax.models.network import trainable as trainable
from rsrl_jax.models.network import updates_stats as updates_stats
from rsrl_jax.models.network import variables as variables


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """SGD with momentum (the paper's sgdm) or Adam, with weight decay (L2, as MATLAB's).

    The new head's learning rate is multiplied by `train.head_lr_multiplier`.
    """

    def sgd(lr):
        if config.train.optimizer == "adam":
            step = optax.adam(lr)
        else:
            step = optax.sgd(lr, momentum=config.train.momentum)
        return optax.chain(optax.add_decayed_weights(config.train.weight_decay), step)

    lr = config.train.learning_rate
    return optax.multi_transform(
        {"head": sgd(lr * config.train.head_lr_multiplier), "backbone": sgd(lr)},
        lambda params: {k: ("head" if k == "head" else "backbone") for k in params},
    )


def new_state(params, tx: optax.GradientTransformation) -> TrainState:
    """A fresh optimizer state on `params`' trainable part: each RSRL round starts one
    (MATLAB trainNetwork)."""
    opt_state = _optimizer_init(tx, trainable(params))
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state)


@functools.partial(jax.jit, static_argnums=0)
def _optimizer_init(tx, weights):
    # One program for every leaf's zeros (eagerly, each shape compiles on its own: 15 small
    # compiles for AlexNet, a second of a run's start).
    return tx.init(weights)


def softmax_cross_entropy(logits, labels, mask):
    """Mean cross-entropy over the unmasked samples of the batch."""
    return losses.cross_entropy(logits, labels, mask)


NO_BAD_STEP = np.iinfo(np.int32).max


def all_finite(tree) -> jax.Array:
    """Whether every element of every leaf is finite.

    One read of the gradients; a global norm (the squares summed) also wrote the squares
    out on CPU, 4% of the train step, and overflowed on large but finite gradients.
    """
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


@jax.jit
def zero_sums() -> dict:
    """Running sums of an epoch's step metrics, carried through the jitted steps (one
    program)."""
    return {
        "loss_sum": jnp.zeros((), jnp.float32),
        "correct": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
        "first_bad_step": jnp.full((), NO_BAD_STEP, jnp.int32),
    }


def make_train_step(
    model,
    tx: optax.GradientTransformation,
    view: inputs.PhotoInput | inputs.FeatureInput | int | None = None,
    mesh: Mesh | None = None,
    compiler_options: Mapping[str, str] | None = None,
) -> Callable:
    """Returns train_step(state, sums, images, labels, mask, key, class_terms) -> (state, sums).

    Jitted. The loss is `losses.general` of `class_terms` (`losses.loss_terms` of the lane's
    method and D: class weights, logit offsets, focal gamma), an argument, so that every
    loss and every lane's class counts run the same compiled step.

    `key` is the round's key; the step's dropout, flip and crop keys are folded from it and
    the step counter, so a run is a pure function of its seed. `view` (`data.inputs`; an int
    S or None: photos cut to S, or already cut, unflipped) makes the network's input from the
    batch on the device: photos stored larger than its `image_size` are cropped to it (random
    offsets per photo when `random_crop`, else central), so host batches stay uint8 at the
    stored size; feature vectors go in as they are.

    The metric sums stay on the device (no host round-trip per step). A step whose loss or
    gradient is not finite leaves the parameters and optimizer state unchanged and records
    its step number in `sums['first_bad_step']`, for the loop to stop on. An empty batch
    (mask all 0: a lane of a group whose epoch has ended) changes nothing, step counter
    included.

    BatchNorm (ResNet): with frozen statistics the state's `STATS` pass through unchanged;
    with updated ones (`updates_stats`) the step normalises with the statistics of the
    batch's unmasked photos and keeps the running averages they give, unless the batch is
    empty (a fold that has run out) or the step is not finite.

    With a `mesh`, the shardings are fixed (state replicated, batch split on `data`), so the
    step compiles once: a fresh round's state and the step's own output place alike.

    `compiler_options`: XLA's options for the step; None = `default_compiler_options('train')`
    (the measured library choice on CPU), {} = XLA's own defaults, else passed as given.
    """

    loss_of = losses.general
    options = compiler.step_options(compiler_options, "train")
    view = inputs.as_input(view)

    batch_stats = updates_stats(model)

    def train_step(state: TrainState, sums, images, labels, mask, key, class_terms):
        key = jax.random.fold_in(key, state.step)
        flip_key, dropout_key, crop_key = jax.random.split(key, 3)
        x = view.train_view(images, crop_key, flip_key)
        weights, stats = trainable(state.params), state.params.get(STATS)
        count = jnp.sum(mask)

        def loss_fn(weights):
            v = {"params": weights} if stats is None else {"params": weights, STATS: stats}
            rngs = {"dropout": dropout_key}
            if batch_stats:
                logits, new = model.apply(v, x, True, mask, rngs=rngs, mutable=[STATS])
                new = new[STATS]
            else:
                logits, new = model.apply(v, x, train=True, rngs=rngs), stats
            return loss_of(logits, labels, mask, class_terms), (logits, new)

        (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(weights)
        finite = jnp.isfinite(loss) & all_finite(grads)
        # An empty batch (a lane that has run out of its epoch) is no step: state and step
        # counter stay; one predicate with `finite`, so a vmapped group selects once.
        ran = count != 0  # a NaN mask (a bad step, counted) is not an empty batch
        apply = finite & ran
        if batch_stats:  # an empty batch's statistics are no statistics
            finite_stats = apply

        def update(_):
            updates, opt_state = tx.update(grads, state.opt_state, weights)
            new = optax.apply_updates(weights, updates)
            return (new if stats is None else {**new, STATS: stats}), opt_state

        # A branch, not a select of new and old: the update stays one in-place pass over the
        # parameters (a select read both and cost 3x the update on CPU).
        params, opt_state = jax.lax.cond(
            apply, update, lambda _: (state.params, state.opt_state), None
        )
        if batch_stats:
            params = {
                **params,
                STATS: jax.tree.map(lambda n, o: jnp.where(finite_stats, n, o), new_stats, stats),
            }
        sums = {
            "loss_sum": sums["loss_sum"] + jnp.where(finite, loss * count, 0.0),
            "correct": sums["correct"] + jnp.sum((jnp.argmax(logits, -1) == labels) * mask),
            "count": sums["count"] + count,
            "first_bad_step": jnp.where(
                finite, sums["first_bad_step"], jnp.minimum(sums["first_bad_step"], state.step)
            ),
        }
        step_ = state.step + ran.astype(state.step.dtype)
        return TrainState(step=step_, params=params, opt_state=opt_state), sums

    if mesh is None:
        return jax.jit(train_step, donate_argnums=(0, 1), compiler_options=options)
    replicated, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    return jax.jit(
        train_step,
        in_shardings=(replicated, replicated, data, data, data, replicated, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=(0, 1),
        compiler_options=options,
    )


def make_eval_step(
    model,
    view: inputs.PhotoInput | inputs.FeatureInput | int | None = None,
    mesh: Mesh | None = None,
    compiler_options: Mapping[str, str] | None = None,
) -> Callable:
    """Returns eval_step(params, images) -> logits [B, C]; jitted, eval mode (no dropout).

    `view` (`data.inputs`; an int S or None: photos cut to S, or already cut) is the
    evaluation input: photos stored larger than its `image_size` are center-cropped to it,
    feature vectors go in as they are. With a `mesh` the batch
    is split on `data` and the logits come back replicated: every process of a multi-process
    run gets all of them, for the metrics and the selection. `compiler_options` as for
    `make_train_step`, whose default here is `default_compiler_options('forward')`.
    """
    options = compiler.step_options(compiler_options, "forward")
    view = inputs.as_input(view)

    def eval_step(params, images):
        return model.apply(variables(params), view.eval_view(images), train=False)

    if mesh is None:
        return jax.jit(eval_step, compiler_options=options)
    replicated, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    return jax.jit(
        eval_step,
        in_shardings=(replicated, data),
        out_shardings=replicated,
        compiler_options=options,
    )


def make_steps(
    config: ml_collections.ConfigDict,
    model,
    tx: optax.GradientTransformation,
    mesh: Mesh | None = None,
    *,
    view: inputs.PhotoInput | inputs.FeatureInput | None = None,
    train_options: Mapping[str, str] | None = None,
    forward_options: Mapping[str, str] | None = None,
) -> tuple[Callable, Callable]:
    """(train_step, eval_step) of `model` as a run of `config` uses them (input, loss).

    `view`: the network's input (`data.inputs.network_input`; None = its photos of `config`).
    `train_options` and `forward_options` are the steps' `compiler_options` (None = the
    default for this backend).
    """
    view = inputs.network_input(config) if view is None else view
    train_step = make_train_step(
        model,
        tx,
        view,
        mesh,
        compiler_options=train_options,
    )
    eval_step = make_eval_step(model, view, mesh, forward_options)
    return train_step, eval_step
