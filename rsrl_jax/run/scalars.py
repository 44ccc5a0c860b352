"""TensorBoard event files of a run: `workdir/tensorboard/fold_F/`.

tensorboardX writes the event format without TensorFlow. Only process 0 writes.
"""

import os

import jax


class ScalarWriter:
    """Scalars of one fold: per-epoch training loss/accuracy, per-round metrics."""

    def __init__(self, workdir: str, fold: int):
        self._writer = None
        if jax.process_index() == 0:
            from tensorboardX import SummaryWriter  # imported here: a writer-only dependency

            self._writer = SummaryWriter(os.path.join(workdir, "tensorboard", f"fold_{fold}"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self._writer is not None:
            for tag, value in values.items():
                self._writer.add_scalar(tag, value, step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
