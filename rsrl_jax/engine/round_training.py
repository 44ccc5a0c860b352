"""One round's training of a group of lanes (`train_round`): its epochs over each lane's kept
set, steps of the lane axis, a saved mid-round state after each step when asked, and each
epoch's scalars and log line. `rounds.run_lanes` calls it round after round.
"""

import math

import jax
import numpy as np
from absl import logging

from rsrl_jax.engine import fold_axis, lane_progress, placement, train
from rsrl_jax.engine.lane import check_folds, epochs_of
from rsrl_jax.method import sampling
from rsrl_jax.run import stops
from rsrl_jax.run.progress import Progress, images_left


def train_round(
    exp, step, folds, label, round_, state, kept, sizes, progress_mngr, epochs=None, all_lanes=None
):
    """Trains round `round_` of the lanes `folds` at once with `step` (`make_fold_step` for k
    lanes), from `state` (`start_state`; donated); returns (params, epoch stats) per lane.

    Lane i trains `epochs[i]` epochs (default: the round's of `exp.config`) of `sizes[i]`
    samples drawn from `kept[i]` (`sampling.epoch_order`, its own `method.sampling`) with
    its own generator (its seed, fold, round) and its own round key; an epoch runs as many
    steps as the longest lane's, and a lane that has run out is fed a masked empty batch.
    `all_lanes`: every lane of the group (those `folds` train for too), named in the
    mid-round state so that only the same group resumes from it.
    """
    config, k = exp.config, len(folds)
    placer, batch_size = exp.lane_placer(k), config.train.batch_size
    if epochs is None:
        epochs = [epochs_of(config, round_)] * k
    rounds_epochs = max(epochs)
    steps = max(math.ceil(size / batch_size) for size in sizes)  # per epoch, longest lane
    every = config.checkpoint.every_steps
    rngs = [np.random.default_rng([f.config.seed, f.index, round_]) for f in folds]
    keys = fold_axis.round_keys(
        [f.config.seed for f in folds], [f.index for f in folds], round_, placer.replicated
    )
    class_terms = placer.replicate(fold_axis.stack([f.class_terms for f in folds]))
    group = lane_progress.group_names(all_lanes or folds)
    names = lane_progress.group_names(folds)

    def zero_sums():  # fresh each epoch: the step donates its sums
        return placer.replicate(fold_axis.stack([train.zero_sums()] * k))

    start_epoch, start_batch, sums = 1, 0, None
    saved = lane_progress.restore_progress(progress_mngr, state, zero_sums, round_, group, names)
    if saved is not None:
        state, sums = saved[0]["state"], saved[0]["sums"]
        start_epoch, start_batch = saved[1]["epoch"], saved[1]["batch"]
        if start_batch < steps:
            where = f"{start_batch} of the epoch's {steps} batches done"
        else:  # saved after the epoch's last batch: only its end-of-epoch figures are left
            where = f"all {steps} of the epoch's batches done"
        logging.info(
            "%s round %d: resuming at epoch %d batch %d (%s)",
            label,
            round_,
            start_epoch,
            start_batch,
            where,
        )
    remaining = sum(  # a lane whose epochs ended before the resumed one has none left
        max(0, images_left(e, s, batch_size, start_epoch, start_batch) if start_epoch <= e else 0)
        for e, s in zip(epochs, sizes, strict=True)
    )
    progress = Progress(f"{label} round {round_} training", remaining, "img", config.log.progress)
    images = exp.data.images  # shared by the group's lanes; each lane has its own labels
    lane_labels = [f.exp.data.labels for f in folds]
    empty = (np.zeros(batch_size, np.int64), np.zeros(batch_size, np.float32))
    stats = [{} for _ in folds]
    host = None
    for epoch in range(1, rounds_epochs + 1):
        active = [i for i in range(k) if epoch <= epochs[i]]
        orders = {  # drawn every epoch of the lane, skipped or not
            i: sampling.epoch_order(
                rngs[i],
                kept[i],
                lane_labels[i][kept[i]],
                sizes[i],
                folds[i].config.method.sampling,
            )
            for i in active
        }
        if epoch < start_epoch:
            continue
        if sums is None:
            sums = zero_sums()
        batches = {i: list(placement.padded_batches(o, batch_size)) for i, o in orders.items()}
        for b in range(steps):
            if epoch == start_epoch and b < start_batch:
                continue
            picked = [
                batches[i][b] if i in batches and b < len(batches[i]) else empty for i in range(k)
            ]
            index = np.stack([p[0] for p in picked])
            mask = np.stack([p[1] for p in picked])
            y = np.stack([lane_labels[i][p[0]] for i, p in enumerate(picked)])
            x, y, m = placer.shard(images[index], y, mask)
            state, sums = step(state, sums, x, y, m, keys, class_terms)
            progress.update(int(mask.sum()), f"epoch {epoch}/{rounds_epochs}")
            done = (epoch - 1) * steps + b + 1
            due = every and done % every == 0 and done < rounds_epochs * steps
            if due or stops.requested():
                check_folds(jax.device_get(sums), folds, round_)
                save = (progress_mngr, done, state, sums, folds, round_, epoch, b + 1, group)
                lane_progress.save_progress(*save)
            if stops.requested():  # SIGINT/SIGTERM: the state is saved, as every_steps saves
                raise lane_progress.interrupted(folds, round_, done)
        host = jax.device_get(sums)  # one host sync per epoch
        sums = None
        check_folds(host, folds, round_)
        for i in active:
            stats[i] = {
                "loss": float(host["loss_sum"][i] / host["count"][i]),
                "accuracy": float(host["correct"][i] / host["count"][i]),
            }
        _epoch_done(folds, active, stats, label, round_, epoch, epochs, progress)
    if stops.requested():  # came while the last epoch's figures were taken
        sums = placer.replicate(jax.tree.map(np.asarray, host))
        last = (rounds_epochs, steps)
        lane_progress.save_progress(
            progress_mngr, rounds_epochs * steps, state, sums, folds, round_, *last, group
        )
        raise lane_progress.interrupted(folds, round_, rounds_epochs * steps)
    params = fold_axis.unstack(state.params, k)
    if placement.lanes_split(placer.data.mesh):  # each lane's network on every device again
        params = [exp.placer.replicate(p) for p in params]
    return params, stats


def _epoch_done(folds, active, stats, label, round_, epoch, epochs, progress) -> None:
    """Each run's TensorBoard scalars of the epoch and its log line (one line for a group of
    several runs)."""
    runs = {}
    for i in active:
        runs.setdefault(id(folds[i].exp), []).append(i)
    line = progress.figures() if folds[0].config.log.progress else None
    progress.mark()  # the epoch's line tells the progress: no other line right after it
    for lanes_of_run in runs.values():
        f = folds[lanes_of_run[0]]
        before = sum(epochs_of(f.config, r) for r in range(1, round_))
        f.exp.recorder.epoch_done(
            label,
            round_,
            epoch,
            epochs[lanes_of_run[0]],
            {folds[i].index: stats[i] for i in lanes_of_run},
            before + epoch,
            line if len(runs) == 1 else None,
        )
    if len(runs) > 1 and line is not None:
        logging.info(
            "%s round %d epoch %d/%d: %d lanes of %d runs | %s",
            label,
            round_,
            epoch,
            max(epochs),
            len(active),
            len(runs),
            line,
        )
