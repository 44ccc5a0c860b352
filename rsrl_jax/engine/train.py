"""Training state, optimizer and the pure, jitted train and eval steps.

The batch has a fixed shape for the whole run: the last partial batch is padded and its
padding masked out of the loss, so each step compiles once, whatever a round's training set
size. Batches are sharded along the `data` axis of a mesh over the devices; parameters and
optimizer state are replicated.

Over 300 lines: the network's construction, its state and the jitted steps over it; the
construction would move below the engine with issue 32's item 1 (imports downhill).
"""

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rsrl_jax.data import inputs
from rsrl_jax.engine import compiler
from rsrl_jax.method import losses
from rsrl_jax.models import resnet, vit
from rsrl_jax.models.alexnet import AlexNet
from rsrl_jax.models.heads import MLP

# model.name; mlp and linear read feature vectors, the others photos (ViTs: vit.SIZES' names)
MODELS = ("alexnet", "resnet50", "mlp", "linear", *vit.SIZES)
FEATURE_MODELS = ("mlp", "linear")
BATCH_NORM = ("frozen", "updated")  # model.batch_norm: ResNet's statistics while fine-tuning

# The network's state as the engine carries it (train state, checkpoints, rounds): one tree,
# its parameters, plus BatchNorm's running statistics under this key for a network that has
# them (ResNet). The optimizer sees only the parameters (`trainable`); `variables` splits
# the tree back into flax's collections for `apply`.
STATS = "batch_stats"


def trainable(params) -> dict:
    """The parameters the optimizer updates: `params` without the BatchNorm statistics."""
    return {k: v for k, v in params.items() if k != STATS}


def variables(params) -> dict:
    """flax's variables {"params", ["batch_stats"]} of the engine's network state."""
    if STATS in params:
        return {"params": trainable(params), STATS: params[STATS]}
    return {"params": params}


def network_state(variables_: dict) -> dict:
    """The engine's network state of flax's variables (`variables`' inverse)."""
    if STATS in variables_:
        return {**variables_["params"], STATS: variables_[STATS]}
    return variables_["params"]


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any


def fast_pool_gradients(backend: str | None = None) -> bool:
    """Whether the max-pools take `models.pooling`'s gradient on `backend` (default: JAX's).

    XLA:CPU runs its own max-pool gradient as a scalar loop (3-4x slower); GPUs and TPUs have
    a fast library gradient.
    """
    return (backend or jax.default_backend()) == "cpu"


def resnet_width(config: ml_collections.ConfigDict) -> int:
    """ResNet's stem width: `model.width` times torchvision's 64 channels."""
    return max(1, round(resnet.TORCHVISION_WIDTH * config.model.width))


def make_model(
    config: ml_collections.ConfigDict, num_classes: int, *, fast_gradients: bool | None = None
) -> AlexNet | resnet.ResNet | MLP | vit.ViTClassifier:
    """The network `model.name` names; `model.compute_dtype` is its activations' (parameters
    stay float32).

    'alexnet' (photos): `model.width`, `model.fc_dim`, `model.dropout_rate`.
    'resnet50' (photos): torchvision's ResNet-50 with `model.width` times its channels;
    `model.batch_norm` 'frozen' (the running statistics while fine-tuning) or 'updated'
    (the batch's statistics, running ones updated). `model.fc_dim` and `model.dropout_rate`
    are not used.
    A ViT size of `models.vit.SIZES` (photos of its `image_size`; e.g. 'clip_vit_b16'):
    `vit.ViTClassifier` with `model.vit_act` ('' = the family's activation), float32.
    'mlp' (feature vectors): `model.hidden_widths` hidden layers with dropout
    `model.dropout_rate`; 'linear': the N-way head alone (`models.heads.MLP`).
    `fast_gradients`: the max-pools' gradient (`AlexNet.fast_gradients`); None = the
    choice for this backend (`fast_pool_gradients`), fixed here, so tracing reads no global.
    """
    dtype = jnp.dtype(config.model.compute_dtype)
    name = config.model.get("name", "alexnet")  # a run recorded before model.name existed
    if name in FEATURE_MODELS:
        widths = tuple(int(w) for w in config.model.hidden_widths) if name == "mlp" else ()
        return MLP(num_classes, widths, float(config.model.dropout_rate), dtype)
    if name in vit.SIZES:
        return vit.ViTClassifier(vit.spec(name, config.model.get("vit_act", "")), num_classes)
    if fast_gradients is None:
        fast_gradients = fast_pool_gradients()
    if name == "resnet50":
        return resnet.ResNet50(
            num_classes,
            width=resnet_width(config),
            dtype=dtype,
            fast_gradients=fast_gradients,
            frozen_stats=config.model.get("batch_norm", "frozen") == "frozen",
        )
    return AlexNet(
        num_classes=num_classes,
        width=config.model.width,
        fc_dim=config.model.fc_dim,
        dropout_rate=config.model.dropout_rate,
        dtype=dtype,
        fast_gradients=fast_gradients,
    )


def abstract_params(model, view, sharding):
    """Shapes and dtypes of `model`'s parameters for the input `view` (`data.inputs`; an int S:
    photos of side S), placed with `sharding`, for restoring."""
    x = inputs.as_input(view).example()
    shapes = network_state(jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x))
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def init_params(model, view, seed: int, skip=frozenset()):
    """`model`'s initial network state from `seed` (parameters, and BatchNorm's statistics
    under `STATS` for a network that has them), for the input `view` (an int S: photos of
    side S).

    `skip`: top-level entries not wanted (a pretrained backbone's layers): they are left out
    of the result and XLA never draws their random bits, while every other entry is bit for
    bit that of the whole network's init (each layer's key comes from its name).
    """
    example = inputs.as_input(view).example()
    x = jnp.zeros(example.shape, example.dtype)
    options = compiler.compiler_options(CPU_INIT_OPTIONS)  # None off CPU or if unknown

    def init(key, x):
        state = network_state(model.init(key, x))
        return {name: entry for name, entry in state.items() if name not in skip}

    return jax.jit(init, compiler_options=options)(jax.random.key(seed), x)


# Compiling the initializers (their random bits) takes longer than the train step (AlexNet:
# 5-8 s vs 3-4 s on CPU); without LLVM's expensive passes it compiles in 2/3 of the time
# and the parameters are bit for bit the same (run once, they take no longer).
CPU_INIT_OPTIONS = MappingProxyType({"xla_llvm_disable_expensive_passes": True})


def updates_stats(model) -> bool:
    """Whether training `model` updates BatchNorm's running statistics (a ResNet with
    model.batch_norm='updated')."""
    return isinstance(model, resnet.ResNet) and not model.frozen_stats


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
