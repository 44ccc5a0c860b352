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


def make_train_step(model: AlexNet, tx: optax.GradientTransformation, flip: bool) -> Callable:
    """Returns train_step(state, images, labels, mask, key) -> (state, metrics); jitted.

    `key` is the round's key; the step's dropout and flip keys are folded from it and the
    step counter, so a run is a pure function of its seed.
    """

    def train_step(state: TrainState, images, labels, mask, key):
        key = jax.random.fold_in(key, state.step)
        flip_key, dropout_key = jax.random.split(key)
        x = normalize(images)
        if flip:
            do_flip = jax.random.bernoulli(flip_key, 0.5, (x.shape[0], 1, 1, 1))
            x = jnp.where(do_flip, x[:, :, ::-1, :], x)

        def loss_fn(params):
            logits = model.apply({"params": params}, x, train=True, rngs={"dropout": dropout_key})
            return softmax_cross_entropy(logits, labels, mask), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        correct = jnp.sum((jnp.argmax(logits, -1) == labels) * mask)
        metrics = {"loss_sum": loss * jnp.sum(mask), "correct": correct, "count": jnp.sum(mask)}
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return jax.jit(train_step, donate_argnums=(0,))


def make_eval_step(model: AlexNet) -> Callable:
    """Returns eval_step(params, images) -> logits [B, C]; jitted, eval mode (no dropout)."""

    def eval_step(params, images):
        return model.apply({"params": params}, normalize(images), train=False)

    return jax.jit(eval_step)


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
    eval_step, params, images: np.ndarray, indices: np.ndarray, batch_size: int, placer: BatchPlacer
) -> np.ndarray:
    """Logits [len(indices), C] of the photos `images[indices]`, one compiled shape."""
    outputs = []
    for batch, mask in padded_batches(indices, batch_size):
        (x,) = placer.shard(images[batch])
        outputs.append((eval_step(params, x), int(mask.sum())))
    return np.concatenate([np.asarray(logits)[:n] for logits, n in outputs], axis=0)
