"""The k folds of the protocol trained at once (`protocol.parallel_folds`).

Sequential folds (the default) run the whole round loop of one fold, then the next. Here
every round trains all folds together: parameters, optimizer states, batches, keys and the
loss's class arrays get a leading fold axis, and one compiled step, the sequential train step
vmapped over that axis, advances every fold. On an accelerator that a small network leaves
mostly idle, k folds then cost little more than one.

Each fold keeps exactly its sequential batches, keys and step counts: an epoch runs as many
steps as the fold with the largest epoch needs, and a fold that has run out is fed a masked
(empty) batch that leaves its state unchanged. Results agree with sequential folds to float
rounding (vmapped convolutions sum in another order), not bit for bit. Likelihood passes,
evaluation, selection and saving stay per fold (`Experiment.finish_round`), so
checkpoints, metrics and reports are the sequential ones; metrics.jsonl lines come round by
round (all folds of round 1, then round 2, ...) rather than fold by fold, and timings.jsonl
gives each fold the training time of all folds together.

Resume: from round checkpoints (every fold restarts after the last round that all folds
finished; a fold's round already saved is restored, not trained again) and from mid-round
checkpoints of the stacked training state in `workdir/folds_in_progress/`.
"""

import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from rsrl_jax.engine import train
from rsrl_jax.method import sampling
from rsrl_jax.run import checkpoints
from rsrl_jax.run.progress import Progress, images_left, rounds_status

PROGRESS_DIR = "folds_in_progress"


def make_fold_step(train_step, mesh):
    """The train step vmapped over a leading fold axis; jitted, compiled once per run.

    A fold whose batch is all padding (mask 0) keeps its state and sums: its epoch is
    shorter than the longest fold's. Batches are split on `data` along their second axis.
    """

    step = train_step.__wrapped__  # its Python function: only the outer jit takes options

    def one_fold(state, sums, images, labels, mask, key, per_class):
        new_state, new_sums = step(state, sums, images, labels, mask, key, per_class)
        active = jnp.sum(mask) > 0
        pick = lambda new, old: jnp.where(active, new, old)  # noqa: E731
        return jax.tree.map(pick, new_state, state), jax.tree.map(pick, new_sums, sums)

    replicated, batch = NamedSharding(mesh, P()), NamedSharding(mesh, P(None, "data"))
    return jax.jit(
        jax.vmap(one_fold),
        in_shardings=(replicated, replicated, batch, batch, batch, replicated, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=(0, 1),
        compiler_options=train.compiler_options(train.CPU_TRAIN_OPTIONS),
    )


def stack(trees):
    """A pytree of arrays with a leading fold axis from one pytree per fold."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def unstack(tree, n: int) -> list:
    return [jax.tree.map(lambda leaf, i=i: leaf[i], tree) for i in range(n)]


def round_keys(seed: int, folds: list[int], round_: int, sharding):
    """Each fold's round key (as `Experiment.train_round` draws it), stacked on `sharding`.

    Made by a jitted function: key arrays cannot be put on other processes' devices.
    """

    def make():
        root = jax.random.key(seed)
        return jnp.stack([jax.random.fold_in(jax.random.fold_in(root, f), round_) for f in folds])

    return jax.jit(make, out_shardings=sharding)()


def progress_manager(workdir: str):
    """The stacked mid-round training state of all folds; only the latest is kept."""
    return checkpoints.progress_manager_at(os.path.join(workdir, PROGRESS_DIR))


class FoldParallel:
    """Runs the round loop of every fold of `fold_splits` at once for an `Experiment`."""

    def __init__(self, experiment):
        self.experiment = experiment
        self.step = make_fold_step(experiment.train_step, experiment.mesh)
        self.placer = train.BatchPlacer(experiment.mesh, batch_axis=1)

    def run(self, fold_splits) -> list[dict]:
        """All rounds of all folds, resumed from their checkpoints; returns the records."""
        exp, config = self.experiment, self.experiment.config
        folds = [exp.open_fold(i, split) for i, split in enumerate(fold_splits)]
        records = [checkpoints.round_records(f.mngr) for f in folds]
        saved = [set(f.mngr.all_steps()) for f in folds]
        done = min(len(r) for r in records)  # rounds are saved in order, so 1..done all exist
        if done:
            logging.info(
                "folds run in parallel, by every fold: %s", rounds_status(done, config.rsrl.rounds)
            )
        states = [exp.state_after(f, done) for f in folds]
        params, keeps = [s[0] for s in states], [s[1] for s in states]
        progress_mngr = progress_manager(exp.workdir)
        for round_ in range(done + 1, config.rsrl.rounds + 1):
            kept = [exp.kept_set(f, round_, keep) for f, keep in zip(folds, keeps, strict=True)]
            sizes = [exp.epoch_size(f, k) for f, k in zip(folds, kept, strict=True)]
            t0 = time.perf_counter()
            trained, stats = self.train_round(folds, round_, params, kept, sizes, progress_mngr)
            train_s = time.perf_counter() - t0
            for i, f in enumerate(folds):
                if round_ in saved[i]:  # saved before a kill: its checkpoint is the record
                    params[i], keeps[i] = exp.state_after(f, round_)
                    continue
                record, keeps[i] = exp.finish_round(
                    f, round_, trained[i], keeps[i], stats[i], sizes[i], train_s
                )
                params[i] = trained[i]
                records[i].append(record)
            checkpoints.clear_progress(progress_mngr)
        for f in folds:
            f.close()
        checkpoints.close_progress(progress_mngr)
        return [r for fold_records in records for r in fold_records]

    def train_round(self, folds, round_, params, kept, sizes, progress_mngr):
        """Trains round `round_` of every fold at once; returns (params, stats) per fold.

        Fold i draws its epochs from its own generator (seed, fold, round) and its step keys
        from its own round key and step counter, as `Experiment.train_round` does.
        """
        exp, config = self.experiment, self.experiment.config
        n, batch_size = len(folds), config.train.batch_size
        epochs = exp.epochs_of(round_)
        steps = max(math.ceil(size / batch_size) for size in sizes)  # per epoch, longest fold
        every = config.checkpoint.every_steps
        rngs = [np.random.default_rng([config.seed, f.index, round_]) for f in folds]
        keys = round_keys(config.seed, [f.index for f in folds], round_, exp.placer.replicated)
        per_class = exp.placer.replicate(stack([f.per_class for f in folds]))
        # A fresh optimizer state each round, placed as the step returns it (one compile).
        state = exp.placer.replicate(jax.vmap(lambda p: train.new_state(p, exp.tx))(stack(params)))

        def zero_sums():  # fresh each epoch: the step donates its sums
            return exp.placer.replicate(stack([train.zero_sums()] * n))

        start_epoch, start_batch, sums = 1, 0, None
        saved = checkpoints.restore_progress(progress_mngr, {"state": state, "sums": zero_sums()})
        if saved is not None and saved[1]["round"] == round_:
            state, sums = saved[0]["state"], saved[0]["sums"]
            start_epoch, start_batch = saved[1]["epoch"], saved[1]["batch"]
            logging.info(
                "folds round %d: resuming at epoch %d batch %d (%d of the epoch's %d batches done)",
                round_,
                start_epoch,
                start_batch,
                start_batch,
                steps,
            )
        total = sum(
            images_left(epochs, size, batch_size, start_epoch, start_batch) for size in sizes
        )
        progress = Progress(
            f"round {round_} training, {n} folds at once", total, "img", config.log.progress
        )
        images, labels = exp.data.images, exp.data.labels
        epochs_before = sum(exp.epochs_of(r) for r in range(1, round_))
        empty = (np.zeros(batch_size, np.int64), np.zeros(batch_size, np.float32))
        stats = [{} for _ in folds]
        for epoch in range(1, epochs + 1):
            orders = [  # drawn every epoch, skipped or not
                sampling.epoch_order(rng, k, labels[k], size, config.method.sampling)
                for rng, k, size in zip(rngs, kept, sizes, strict=True)
            ]
            if epoch < start_epoch:
                continue
            if sums is None:
                sums = zero_sums()
            batches = [list(train.padded_batches(order, batch_size)) for order in orders]
            for b in range(steps):
                if epoch == start_epoch and b < start_batch:
                    continue
                picked = [fold[b] if b < len(fold) else empty for fold in batches]
                index = np.stack([p[0] for p in picked])
                mask = np.stack([p[1] for p in picked])
                x, y, m = self.placer.shard(images[index], labels[index], mask)
                state, sums = self.step(state, sums, x, y, m, keys, per_class)
                progress.update(int(mask.sum()), f"epoch {epoch}/{epochs}")
                step = (epoch - 1) * steps + b + 1
                if every and step % every == 0 and step < epochs * steps:
                    self.check_finite(jax.device_get(sums), folds, round_)
                    checkpoints.save_progress(
                        progress_mngr,
                        step,
                        {"state": state, "sums": sums},
                        {"round": round_, "epoch": epoch, "batch": b + 1},
                    )
            host = jax.device_get(sums)  # one host sync per epoch
            sums = None
            self.check_finite(host, folds, round_)
            for i, f in enumerate(folds):
                stats[i] = {
                    "loss": float(host["loss_sum"][i] / host["count"][i]),
                    "accuracy": float(host["correct"][i] / host["count"][i]),
                }
                f.writer.scalars(
                    epochs_before + epoch,
                    {
                        "train/epoch_loss": stats[i]["loss"],
                        "train/epoch_accuracy": stats[i]["accuracy"],
                    },
                )
            if config.log.progress:
                logging.info(
                    "round %d epoch %d/%d: loss by fold %s | %s",
                    round_,
                    epoch,
                    epochs,
                    " ".join(f"{s['loss']:.4f}" for s in stats),
                    progress.line(),
                )
        return unstack(state.params, n), stats

    def check_finite(self, host_sums: dict, folds, round_: int) -> None:
        for i, f in enumerate(folds):
            self.experiment.check_finite(
                jax.tree.map(lambda a, i=i: a[i], host_sums), f.index, round_
            )
