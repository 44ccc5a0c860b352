"""What the benchmarks time, built as a run builds it: data on a mesh, the network, its steps.

A benchmark variant (XLA's own max-pool gradient, XLA's default CPU libraries) is a choice
passed here as an argument, never a change to another module's functions or constants.
"""

import dataclasses
from collections.abc import Callable, Iterator, Mapping

import ml_collections
import numpy as np
import optax

from rsrl_jax import config as config_lib
from rsrl_jax.data import datasets
from rsrl_jax.engine import placement, train
from rsrl_jax.method import losses
from rsrl_jax.models import pretrained
from rsrl_jax.models.alexnet import AlexNet
from rsrl_jax.models.resnet import ResNet


@dataclasses.dataclass(frozen=True)
class Rig:
    """The data set, its mesh placement, the network and its jitted steps under `config`."""

    config: ml_collections.ConfigDict
    data: datasets.Dataset
    placer: placement.BatchPlacer
    model: AlexNet | ResNet
    tx: optax.GradientTransformation
    train_step: Callable
    eval_step: Callable
    class_terms: dict  # the loss's class terms [C] of the whole data set, replicated

    def initial_params(self, seed: int = 0):
        """Round 1's parameters (`pretrained.initial_params`), replicated on the mesh."""
        return self.placer.replicate(pretrained.initial_params(self.config, self.model, seed))

    def batches(self, indices: np.ndarray, epochs: int, seed: int = 0) -> Iterator[tuple]:
        """The host side of training: shuffled index batches, uint8 gather, device transfer.

        Yields (images, labels, mask) on the mesh, `config.train.batch_size` a batch.
        """
        rng = np.random.default_rng(seed)
        images, labels = self.data.images, self.data.labels
        for _ in range(epochs):
            for batch, mask in placement.padded_batches(rng.permutation(indices), self.batch_size):
                yield self.placer.shard(images[batch], labels[batch], mask)

    @property
    def batch_size(self) -> int:
        return self.config.train.batch_size


def build(
    config: ml_collections.ConfigDict,
    data: datasets.Dataset,
    *,
    fast_gradients: bool | None = None,
    train_options: Mapping[str, str] | None = None,
    forward_options: Mapping[str, str] | None = None,
) -> Rig:
    """The rig of `config` on `data` over every device.

    `fast_gradients` is the max-pools' gradient (`train.make_model`; None = this backend's
    choice); `train_options` and `forward_options` the steps' XLA options (None = this
    backend's default, {} = XLA's own).
    """
    config_lib.check_classes(data, config)
    mesh = placement.make_mesh()
    placer = placement.BatchPlacer(mesh)
    model = train.make_model(config, data.num_classes, fast_gradients=fast_gradients)
    tx = train.make_optimizer(config)
    train_step, eval_step = train.make_steps(
        config,
        model,
        tx,
        mesh,
        train_options=train_options,
        forward_options=forward_options,
    )
    counts = np.bincount(data.labels, minlength=data.num_classes)
    class_terms = placer.replicate(losses.loss_terms(counts, config.method))
    return Rig(config, data, placer, model, tx, train_step, eval_step, class_terms)
