"""Training state, optimizer and the pure, jitted train and eval steps.

The batch has a fixed shape for the whole run: the last partial batch is padded and its
padding masked out of the loss, so each step compiles once, whatever a round's training set
size. Batches are sharded along the `data` axis of a mesh over the devices; parameters and
optimizer state are replicated.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rsrl_jax.models.alexnet import AlexNet

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any


def make_mesh(devices=None) -> Mesh:
    devices = np.asarray(devices if devices is not None else jax.devices())
    return Mesh(devices.reshape(-1), ("data",))


def normalize(images: jax.Array) -> jax.Array:
    """uint8 NHWC photos -> float32, ImageNet mean/std normalised (as torchvision's models)."""
    x = images.astype(jnp.float32) / 255.0
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def _crop_origin_range(images, size: int) -> tuple[int, int]:
    h, w = images.shape[1:3]
    if h < size or w < size:
        raise ValueError(f"cannot crop {size}x{size} windows from {h}x{w} photos")
    return h - size, w - size


def random_crops(images: jax.Array, size: int, key: jax.Array) -> jax.Array:
    """A `size` x `size` window of each NHWC photo, at its own random offset (training)."""
    max_top, max_left = _crop_origin_range(images, size)
    if max_top == max_left == 0:
        return images
    top_key, left_key = jax.random.split(key)
    tops = jax.random.randint(top_key, images.shape[:1], 0, max_top + 1)
    lefts = jax.random.randint(left_key, images.shape[:1], 0, max_left + 1)

    def window(photo, top, left):
        return jax.lax.dynamic_slice(photo, (top, left, 0), (size, size, photo.shape[-1]))

    return jax.vmap(window)(images, tops, lefts)


def center_crops(images: jax.Array, size: int) -> jax.Array:
    """The central `size` x `size` window of each NHWC photo (evaluation)."""
    max_top, max_left = _crop_origin_range(images, size)
    top, left = max_top // 2, max_left // 2
    return images[:, top : top + size, left : left + size]


def make_model(config: ml_collections.ConfigDict, num_classes: int) -> AlexNet:
    return AlexNet(
        num_classes=num_classes,
        width=config.model.width,
        fc_dim=config.model.fc_dim,
        dropout_rate=config.model.dropout_rate,
    )


def init_params(model: AlexNet, image_size: int, seed: int):
    x = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
    return jax.jit(model.init)(jax.random.key(seed), x)["params"]


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
    """A fresh optimizer state on `params`: each RSRL round starts one (MATLAB trainNetwork)."""
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))


def softmax_cross_entropy(logits, labels, mask):
    """Mean cross-entropy over the unmasked samples of the batch."""
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1.0)


NO_BAD_STEP = np.iinfo(np.int32).max


def zero_sums() -> dict:
    """Running sums of an epoch's step metrics, carried through the jitted steps."""
    return {
        "loss_sum": jnp.zeros((), jnp.float32),
        "correct": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
        "first_bad_step": jnp.full((), NO_BAD_STEP, jnp.int32),
    }


def make_train_step(
    model: AlexNet,
    tx: optax.GradientTransformation,
    flip: bool,
    image_size: int | None = None,
    random_crop: bool = True,
    mesh: Mesh | None = None,
) -> Callable:
    """Returns train_step(state, sums, images, labels, mask, key) -> (state, sums); jitted.

    `key` is the round's key; the step's dropout, flip and crop keys are folded from it and
    the step counter, so a run is a pure function of its seed. Photos stored larger than
    `image_size` are cropped to it on the device (random offsets per photo when
    `random_crop`, else central), so host batches stay uint8 at the stored size.

    The metric sums stay on the device (no host round-trip per step). A step whose loss or
    gradient is not finite leaves the parameters and optimizer state unchanged and records
    its step number in `sums['first_bad_step']`, for the loop to stop on.

    With a `mesh`, the shardings are fixed (state replicated, batch split on `data`), so the
    step compiles once: a fresh round's state and the step's own output place alike.
    """

    def train_step(state: TrainState, sums, images, labels, mask, key):
        key = jax.random.fold_in(key, state.step)
        flip_key, dropout_key, crop_key = jax.random.split(key, 3)
        if image_size is not None:
            if random_crop:
                images = random_crops(images, image_size, crop_key)
            else:
                images = center_crops(images, image_size)
        x = normalize(images)
        if flip:
            do_flip = jax.random.bernoulli(flip_key, 0.5, (x.shape[0], 1, 1, 1))
            x = jnp.where(do_flip, x[:, :, ::-1, :], x)

        def loss_fn(params):
            logits = model.apply({"params": params}, x, train=True, rngs={"dropout": dropout_key})
            return softmax_cross_entropy(logits, labels, mask), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.global_norm(grads))
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        keep_old = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
        count = jnp.sum(mask)
        sums = {
            "loss_sum": sums["loss_sum"] + jnp.where(finite, loss * count, 0.0),
            "correct": sums["correct"] + jnp.sum((jnp.argmax(logits, -1) == labels) * mask),
            "count": sums["count"] + count,
            "first_bad_step": jnp.where(
                finite, sums["first_bad_step"], jnp.minimum(sums["first_bad_step"], state.step)
            ),
        }
        new_state = TrainState(
            step=state.step + 1,
            params=jax.tree.map(keep_old, params, state.params),
            opt_state=jax.tree.map(keep_old, opt_state, state.opt_state),
        )
        return new_state, sums

    if mesh is None:
        return jax.jit(train_step, donate_argnums=(0, 1))
    replicated, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    return jax.jit(
        train_step,
        in_shardings=(replicated, replicated, data, data, data, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=(0, 1),
    )


def make_eval_step(
    model: AlexNet, image_size: int | None = None, mesh: Mesh | None = None
) -> Callable:
    """Returns eval_step(params, images) -> logits [B, C]; jitted, eval mode (no dropout).

    Photos stored larger than `image_size` are center-cropped to it.
    """

    def eval_step(params, images):
        if image_size is not None:
            images = center_crops(images, image_size)
        return model.apply({"params": params}, normalize(images), train=False)

    if mesh is None:
        return jax.jit(eval_step)
    replicated, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    return jax.jit(eval_step, in_shardings=(replicated, data), out_shardings=data)


class BatchPlacer:
    """Puts host batches on the mesh, sharded along `data`; replicates pytrees."""

    def __init__(self, mesh: Mesh):
        self.data = NamedSharding(mesh, P("data"))
        self.replicated = NamedSharding(mesh, P())

    def shard(self, *arrays):
        return tuple(jax.device_put(a, self.data) for a in arrays)

    def replicate(self, tree):
        return jax.device_put(tree, self.replicated)


def padded_batches(indices: np.ndarray, batch_size: int):
    """Yields (batch_indices, mask) with a fixed batch size; the last batch is padded.

    Padding repeats the first index and has mask 0, so every index is used exactly once.
    """
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        mask = np.zeros(batch_size, np.float32)
        mask[: len(chunk)] = 1.0
        pad = np.full(batch_size - len(chunk), indices[0], indices.dtype)
        yield np.concatenate([chunk, pad]), mask


def predict_logits(
    eval_step,
    params,
    images: np.ndarray,
    indices: np.ndarray,
    batch_size: int,
    placer: BatchPlacer,
    progress=None,
) -> np.ndarray:
    """Logits [len(indices), C] of the photos `images[indices]`, one compiled shape.

    `progress` (a `rsrl_jax.progress.Progress`) is told of each batch dispatched.
    """
    outputs = []
    for batch, mask in padded_batches(indices, batch_size):
        (x,) = placer.shard(images[batch])
        outputs.append((eval_step(params, x), int(mask.sum())))
        if progress is not None:
            progress.update(int(mask.sum()))
    return np.concatenate([np.asarray(logits)[:n] for logits, n in outputs], axis=0)
