"""Which examples of a global batch each host process reads (multi-host data parallelism).

With several processes (one per host), every process draws the SAME global order (same seed,
so no communication is needed), cuts it into the same global batches, and reads only its own
contiguous slice of each batch:

    for batch, mask in padded_batches(order_rng.permutation(kept), global_batch):
        local = process_slice(batch)                     # this host's examples
        x = jax.make_array_from_process_local_data(sharding, images[local])
        m = jax.make_array_from_process_local_data(sharding, process_slice(mask))

`jax.make_array_from_process_local_data` then assembles the global array sharded on the
`data` axis, whose devices `placement.make_mesh` orders by process. `placement.BatchPlacer.shard`
does this for every batch of training, likelihood passes and evaluation; with one process
the slice is the whole batch.
"""

import jax
import numpy as np


def process_slice(
    global_batch: np.ndarray, process_index: int | None = None, process_count: int | None = None
) -> np.ndarray:
    """The contiguous part of `global_batch` (indices or mask) that process `process_index` of
    `process_count` (default: this process of jax's) feeds to its local devices."""
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    if not 0 <= index < count:
        raise ValueError(f"process_index={index} must be in [0, process_count={count})")
    n = len(global_batch)
    if n % count:
        raise ValueError(
            f"global batch of {n} does not split evenly over {count} processes: make "
            "train.batch_size and train.eval_batch_size multiples of the process count"
        )
    per = n // count
    return global_batch[index * per : (index + 1) * per]


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
