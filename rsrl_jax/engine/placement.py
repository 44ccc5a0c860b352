"""Devices and batches: the `data` mesh, host batches placed on it, padded batches, and the
forward pass over a set of photos in fixed-shape batches.

Every device of every process is on one `data` axis; a global batch is split along it and
each process feeds only its own slice (`rsrl_jax.data.sharding.process_slice`). A group of
lanes trains on a 2-D mesh of the same devices (`lane_mesh`): a `lane` axis beside `data`.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

# padded_batches lives with the data it cuts (below the analysis that also batches photos).
from rsrl_jax.data.sharding import padded_batches as padded_batches
from rsrl_jax.data.sharding import process_slice


def make_mesh(devices=None) -> Mesh:
    """A 1-D `data` mesh over every device of every process, process by process.

    Ordered by process so that each process's devices hold one contiguous slice of a global
    batch (the slice `data.sharding.process_slice` gives it to feed).
    """
    devices = list(devices if devices is not None else jax.devices())
    devices.sort(key=lambda d: (d.process_index, d.id))
    return Mesh(np.asarray(devices), ("data",))


def lane_mesh(mesh: Mesh, lanes: int) -> Mesh:
    """The ("lane", "data") mesh of a group of `lanes` lanes over `mesh`'s devices.

    The lanes are split over every device when their number is a multiple of the devices'
    (one process: each device trains lanes / devices lanes on whole batches); otherwise the
    lane axis has length 1 and each batch is split along `data`, as a single run's.
    """
    devices = np.asarray(mesh.devices).reshape(-1)
    n = devices.size
    if n > 1 and lanes % n == 0 and jax.process_count() == 1:
        return Mesh(devices.reshape(n, 1), ("lane", "data"))
    return Mesh(devices.reshape(1, n), ("lane", "data"))


def lanes_split(mesh: Mesh) -> bool:
    """Whether a `lane_mesh` splits its lanes over devices (its lane axis is longer than 1)."""
    return dict(mesh.shape).get("lane", 1) > 1


class BatchPlacer:
    """Puts global host batches on the mesh, split along `data`; replicates pytrees.

    `batch_axis` is the axis of the batch in the arrays (1 for [folds, batch, ...]). Every
    process passes the same global batch and feeds only its own slice of it to its devices
    (`jax.make_array_from_process_local_data`); with one process that is the whole batch.
    """

    def __init__(self, mesh: Mesh, batch_axis: int = 0):
        self.batch_axis = batch_axis
        self.data = NamedSharding(mesh, P(*[None] * batch_axis, "data"))
        self.replicated = NamedSharding(mesh, P())

    def shard(self, *arrays):
        if jax.process_count() == 1:  # every device is ours: the plain transfer is quicker
            return tuple(jax.device_put(a, self.data) for a in arrays)
        return tuple(
            jax.make_array_from_process_local_data(self.data, self.local(a), a.shape)
            for a in arrays
        )

    def local(self, global_batch: np.ndarray) -> np.ndarray:
        """This process's part of a global batch: its slice along the batch axis."""
        moved = np.moveaxis(np.asarray(global_batch), self.batch_axis, 0)
        return np.moveaxis(process_slice(moved), 0, self.batch_axis)

    def replicate(self, tree):
        return jax.device_put(tree, self.replicated)


class LanePlacer(BatchPlacer):
    """Puts a group's batches [lanes, B, ...] on a `lane_mesh`, split along `lane` and `data`,
    and its stacked trees (states, sums, keys, loss terms) split along `lane` (`replicate`:
    on one lane axis of length 1, every device holds them whole)."""

    def __init__(self, mesh: Mesh):
        self.batch_axis = 1
        self.data = NamedSharding(mesh, P("lane", "data"))
        self.replicated = NamedSharding(mesh, P("lane"))


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
