"""Out-of-sample probabilities over D for confident learning's selection
(`method.selection='confident_learning'`, and random_drop at its counts).

After round i, each such lane's D is dealt into `method.cl_folds` = k stratified parts
(`confident_learning.parts`, the same every round); k copies of net_i are fine-tuned, each
`method.cl_epochs` epochs on the k-1 parts it does not score (a fresh optimizer state, the
run's `train.*` settings, loss terms and sampling), and each scores its held-out part: every
sample of D gets its probabilities from the one copy that never trained on it (cleanlab's
`estimate_cv_predicted_probabilities`, with fine-tunes of the round's network in place of fits
from scratch). The copies of all lanes of a group train as lanes of one compiled program
(`fold_axis.make_fold_step`), packed at most as many as the group's lanes (or k) at once;
lanes holding the same network (they trained round i alike) with the same seed, fold, labels
and settings share their copies. The copies are discarded after scoring.

Each copy's data order and keys are its own and a function of (seed, fold, round, part), so
a round's selection is the same resumed, on lanes, or in a run alone.
"""

import functools
import hashlib
import math
import time

import jax
import numpy as np
from absl import logging

from rsrl_jax import errors
from rsrl_jax.engine import fold_axis, placement, train
from rsrl_jax.method import confident_learning, sampling, selection
from rsrl_jax.run.progress import Progress

# A copy's keys fold in fold + COPY_KEYS * (part + 1) where the lane's own fold in its fold:
# streams apart from every lane's round keys (folds < COPY_KEYS).
COPY_KEYS = 1 << 16


def out_of_sample(exp, lanes, params, round_: int, label: str) -> list:
    """Per lane of `lanes` (`rounds.Lane`): float64 [|D|, C] softmax probabilities over its D
    (rows in `split.train` order), each row from the copy of `params[i]` that did not train on
    it; None for a lane whose selection needs none (`selection.needs_cross_fit`) or whose
    `params[i]` is None (its round is already saved). `exp`: the group's compiled parts."""
    jobs = {}  # one set of k copies per distinct (network, lane settings)
    for i, lane in enumerate(lanes):
        if params[i] is not None and selection.needs_cross_fit(lane.config.method):
            jobs.setdefault(_job_key(lane, params[i]), []).append(i)
    out = [None] * len(lanes)
    if not jobs:
        return out
    start = time.perf_counter()
    firsts = [members[0] for members in jobs.values()]
    per_pack = max(1, len(lanes) // max(lanes[i].config.method.cl_folds for i in firsts))
    for at in range(0, len(firsts), per_pack):
        pack = firsts[at : at + per_pack]
        scored = _fit_and_score(exp, lanes, params, pack, round_, label)
        for i, probs in zip(pack, scored, strict=True):
            for j in jobs[_job_key(lanes[i], params[i])]:
                out[j] = probs
    copies = sum(lanes[i].config.method.cl_folds for i in firsts)
    logging.info(
        "%s round %d: cross-fitting, %d copies for %d lane(s), %.1f s",
        label,
        round_,
        copies,
        sum(len(m) for m in jobs.values()),
        time.perf_counter() - start,
    )
    return out


def _job_key(lane, params):
    method = lane.config.method
    d_labels = lane.exp.data.labels[lane.split.train]
    terms = {k: np.asarray(v).tobytes() for k, v in sorted(lane.class_terms.items())}
    return (
        id(params),
        lane.config.seed,
        lane.index,
        hashlib.sha256(np.asarray(lane.split.train).tobytes() + d_labels.tobytes()).hexdigest(),
        method.cl_folds,
        method.cl_epochs,
        method.sampling,
        tuple(terms.items()),
    )


def _fit_and_score(exp, lanes, params, pack, round_, label) -> list[np.ndarray]:
    """The out-of-sample probabilities of the lanes `pack` (indices into `lanes`), their
    copies trained as one program."""
    copies = []  # (lane index, part, training indices, held-out positions in D)
    for i in pack:
        lane = lanes[i]
        d_labels = lane.exp.data.labels[lane.split.train]
        k = lane.config.method.cl_folds
        part = confident_learning.parts(d_labels, k, lane.config.seed, lane.index)
        for p in range(k):
            copies.append((i, p, lane.split.train[part != p], np.flatnonzero(part == p)))
    fitted = fit_copies(exp, lanes, params, copies, round_, label)
    out = {i: None for i in pack}
    for (i, _, _, held), copy_params in zip(copies, fitted, strict=True):
        lane = lanes[i]
        if out[i] is None:
            out[i] = np.zeros((len(lane.split.train), lane.exp.data.num_classes), np.float64)
        logits = placement.predict_logits(
            exp.eval_step,
            copy_params,
            exp.data.images,
            lane.split.train[held],
            exp.config.train.eval_batch_size,
            exp.placer,
        )
        out[i][held] = _softmax(logits)
    return [out[i] for i in pack]


def _softmax(logits) -> np.ndarray:
    """Softmax rows in float64 (rows sum to 1 to float64 rounding, as cleanlab checks)."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def fit_copies(exp, lanes, params, copies, round_: int, label: str) -> list:
    """The copies' networks: copy (i, part, indices, _) fine-tunes `params[i]` for lane i's
    `method.cl_epochs` epochs on the data indices `indices` (one uniform or class-balanced
    pass an epoch, lane i's `method.sampling`), with a fresh optimizer state and lane i's loss
    terms and labels, all copies as lanes of one program. Raises a DataError on a NaN/Inf."""
    n = len(copies)
    placer, batch_size = exp.lane_placer(n), exp.config.train.batch_size
    owners = [lanes[i] for i, _, _, _ in copies]
    state = placer.replicate(_fresh_states(exp.tx, [params[i] for i, _, _, _ in copies]))
    step = exp.fold_step(n)
    keys = fold_axis.round_keys(
        [f.config.seed for f in owners],
        [f.index + COPY_KEYS * (p + 1) for (_, p, _, _), f in zip(copies, owners, strict=True)],
        round_,
        placer.replicated,
    )
    class_terms = placer.replicate(fold_axis.stack([f.class_terms for f in owners]))
    rngs = [
        np.random.default_rng(
            np.random.SeedSequence(
                [f.config.seed, f.index, round_, p],
                spawn_key=(confident_learning.PARTS_STREAM,),
            )
        )
        for (_, p, _, _), f in zip(copies, owners, strict=True)
    ]
    epochs = [f.config.method.cl_epochs for f in owners]
    sizes = [len(indices) for _, _, indices, _ in copies]
    steps = max(math.ceil(size / batch_size) for size in sizes)
    total = sum(e * s for e, s in zip(epochs, sizes, strict=True))
    desc = f"{label} round {round_} cross-fitting"
    progress = Progress(desc, total, "img", exp.config.log.progress)
    logging.info(  # said before the copies' program compiles: the wait has a name
        "%s: %d copies of the round's network, %d epoch(s) each, %d images in all",
        desc,
        n,
        max(epochs),
        total,
    )
    empty = (np.zeros(batch_size, np.int64), np.zeros(batch_size, np.float32))
    images = exp.data.images
    for epoch in range(1, max(epochs) + 1):
        batches = {}
        for c, ((_, _, indices, _), f) in enumerate(zip(copies, owners, strict=True)):
            if epoch <= epochs[c]:
                labels = f.exp.data.labels
                order = sampling.epoch_order(
                    rngs[c], indices, labels[indices], len(indices), f.config.method.sampling
                )
                batches[c] = list(placement.padded_batches(order, batch_size))
        sums = placer.replicate(fold_axis.stack([train.zero_sums()] * n))
        for b in range(steps):
            picked = [
                batches[c][b] if c in batches and b < len(batches[c]) else empty for c in range(n)
            ]
            index = np.stack([p[0] for p in picked])
            mask = np.stack([p[1] for p in picked])
            y = np.stack([owners[c].exp.data.labels[p[0]] for c, p in enumerate(picked)])
            x, y, m = placer.shard(images[index], y, mask)
            state, sums = step(state, sums, x, y, m, keys, class_terms)
            progress.update(int(mask.sum()), f"epoch {epoch}/{max(epochs)}")
        bad = np.asarray(jax.device_get(sums)["first_bad_step"])
        for c in np.flatnonzero(bad != train.NO_BAD_STEP):
            f, p = owners[c], copies[c][1]
            raise errors.DataError(
                f"{f.name} round {round_}: cross-fitting copy {p + 1} met a NaN or Inf loss or "
                "gradient (confident learning's selection); lower train.learning_rate or "
                "method.cl_epochs, then run the same command to resume"
            )
        if exp.config.log.progress:  # as training's epoch lines: rate and ETA
            logging.info("%s epoch %d/%d | %s", desc, epoch, max(epochs), progress.figures())
            progress.mark()
    fitted = fold_axis.unstack(state.params, n)
    if placement.lanes_split(placer.data.mesh):  # each copy's network on every device again
        fitted = [exp.placer.replicate(p) for p in fitted]
    return fitted


@functools.partial(jax.jit, static_argnums=0)
def _fresh_states(tx, params: list):
    """A fresh optimizer state on each network, stacked on a lane axis (as a round starts)."""
    return fold_axis.stack([train.new_state(p, tx) for p in params])
