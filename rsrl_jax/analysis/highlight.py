"""Aesthetic highlight regions (paper section IV): where net_I and net_{I-k} disagree most.

For a photo, A = conv1 of net_I and B = conv1 of net_{I-k} (before ReLU). The channel J whose
two maps correlate least over the spatial positions is the one retraining changed most; its
difference map A[..., J] - B[..., J], upsampled over the photo, is the highlight region.

  python -m rsrl_jax.highlight --workdir=DIR [--fold=F] [--round=I] [--k=1] --out=OUT \
      [--norecursive] PHOTO_OR_FOLDER...

writes OUT/<photo name>.png (the photo, both conv1 maps of channel J, the difference overlaid
on the photo, as the paper's Fig. 4) and prints one JSON line per photo: path, png, both
rounds, J, the minimal correlation, every channel's correlation and net_I's predicted score.
A folder stands for every file under it, as for predict (`rsrl_jax.inference`). A photo that
cannot be read gets a line {"path", "error"}, a file that is not a photo {"path", "skipped"},
and the others go on; the exit status is 1 only if no photo could be read (2 for a workdir,
fold or round that cannot be used). I defaults to the round the run chose on validation; if
that round is too early to have a net_{I-k}, round 1 + k is used instead (with a warning, and
the JSON says which rounds were compared). An explicit --round must leave I - k >= 1.

Photos are decoded as the run decoded them (its `data.stored_size`, else `data.image_size`,
and its `data.max_pixels`) and centre-cropped to `data.image_size`, the view the network was
evaluated on (`inference.network_photo`); the log names the values used.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from matplotlib import cm, colors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rsrl_jax import errors
from rsrl_jax.data.user_photos import network_photo  # noqa: F401 (the view highlights are drawn on)
from rsrl_jax.engine import train
from rsrl_jax.run import checkpoints

# conv1's geometry (AlexNet's first layer): kernel, stride and padding in input pixels.
CONV1_KERNEL, CONV1_STRIDE, CONV1_PADDING = 11, 4, 2
CONV1_OFFSET = (CONV1_KERNEL - 1) // 2 - CONV1_PADDING  # photo pixel under cell 0's centre
# A channel whose spatial std is below this fraction of its largest |value| counts as constant:
# float32 rounding alone leaves relative noise of ~1e-7, real structure is far above 1e-5.
FLAT_TOLERANCE = 1e-5
DIFF_CMAP = "RdBu_r"  # signed difference: red where net_I responds more, blue where less


def _centred(x: jax.Array) -> jax.Array:
    """x minus its spatial mean, centred twice so a constant map becomes exactly zero."""
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    return x - jnp.mean(x, axis=(1, 2), keepdims=True)


@jax.jit
def min_correlation_diff(a: jax.Array, b: jax.Array):
    """(J[B], diff[B,H,W], corr[B,C]) of two batches of feature maps [B,H,W,C] (paper §IV).

    corr[:, j] is the Pearson correlation of a[..., j] and b[..., j] over the H*W positions,
    computed in float32 on maps scaled to max |value| 1 and centred (no overflow, no
    cancellation). A channel that is constant (or non-finite) in a or b carries no change: its
    corr is +1 and it is chosen only when every channel is. J = argmin corr (first on ties);
    diff = a[..., J] - b[..., J]. These choices: ARCHITECTURE.md, "Design facts".
    """
    if a.ndim != 4 or a.shape != b.shape:
        raise ValueError(f"need two [B,H,W,C] arrays of one shape, got {a.shape} and {b.shape}")
    a, b = a.astype(jnp.float32), b.astype(jnp.float32)

    def scaled(x):
        peak = jnp.max(jnp.abs(x), axis=(1, 2), keepdims=True)
        return _centred(x / jnp.where(peak > 0, peak, 1.0))

    ac, bc = scaled(a), scaled(b)
    n = a.shape[1] * a.shape[2]
    ss_a, ss_b = jnp.sum(ac * ac, axis=(1, 2)), jnp.sum(bc * bc, axis=(1, 2))
    informative = (jnp.sqrt(ss_a / n) > FLAT_TOLERANCE) & (jnp.sqrt(ss_b / n) > FLAT_TOLERANCE)
    denom = jnp.where(informative, jnp.sqrt(ss_a) * jnp.sqrt(ss_b), 1.0)
    raw = jnp.clip(jnp.sum(ac * bc, axis=(1, 2)) / denom, -1.0, 1.0)
    corr = jnp.where(informative, raw, 1.0)
    J = jnp.argmin(jnp.where(informative, corr, 2.0), axis=-1)
    return J, channel(a, J) - channel(b, J), corr


def channel(maps: jax.Array, J: jax.Array) -> jax.Array:
    """maps[i, ..., J[i]] for each photo i of maps [B,H,W,C]."""
    return jnp.take_along_axis(maps, J[:, None, None, None], axis=-1)[..., 0]


def conv1_grid(image_size: int) -> int:
    """Side of conv1's output for a square input of `image_size` pixels."""
    return (image_size + 2 * CONV1_PADDING - CONV1_KERNEL) // CONV1_STRIDE + 1


def conv1_to_photo(maps: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of conv1 maps [..., h, w] to the photo's pixels [..., size, size].

    Each conv1 cell sits at the centre of its receptive field (input pixel 4i + 3), so the map
    lines up with the photo; pixels beyond the outermost centres take the edge values.
    """
    maps = np.asarray(maps, np.float32)
    rows = _interpolation(maps.shape[-2], size)
    cols = _interpolation(maps.shape[-1], size)
    return np.einsum("ph,...hw,qw->...pq", rows, maps, cols)


def _interpolation(grid: int, size: int) -> np.ndarray:
    """[size, grid] bilinear weights from conv1 cells to photo pixels (see conv1_to_photo)."""
    u = np.clip((np.arange(size) - CONV1_OFFSET) / CONV1_STRIDE, 0, grid - 1)
    lo = np.minimum(np.floor(u).astype(int), max(grid - 2, 0))
    hi = np.minimum(lo + 1, grid - 1)
    frac = (u - lo).astype(np.float32)
    weights = np.zeros((size, grid), np.float32)
    np.add.at(weights, (np.arange(size), lo), 1 - frac)
    np.add.at(weights, (np.arange(size), hi), frac)
    return weights


def conv1_cell_centre(index: np.ndarray) -> np.ndarray:
    """The photo pixel at the centre of conv1 cell `index`'s receptive field."""
    return CONV1_OFFSET + CONV1_STRIDE * np.asarray(index)


def make_highlight_fn(model):
    """Returns a jitted fn(params_I, params_{I-k}, uint8 photos) -> dict of maps and logits.

    One call per batch: conv1 of both nets, min_correlation_diff, the chosen channel's two
    maps, net_I's mean |conv1| over channels (a single-network baseline) and net_I's logits.
    """

    def highlight(params_i, params_prev, images):
        x = train.normalize(images)
        a = model.apply({"params": params_i}, x, method="conv1_maps")
        b = model.apply({"params": params_prev}, x, method="conv1_maps")
        J, diff, corr = min_correlation_diff(a, b)
        return {
            "J": J,
            "corr": corr,
            "diff": diff,
            "conv_i": channel(a, J),
            "conv_prev": channel(b, J),
            "activation": jnp.mean(jnp.abs(a), axis=-1),
            "logits": model.apply({"params": params_i}, x, train=False),
        }

    return jax.jit(highlight)


def run_highlights(fn, params_i, params_prev, images: np.ndarray, batch_size: int) -> dict:
    """fn over `images` [N,S,S,3] in fixed-size (padded) batches; numpy arrays of N rows."""
    n = len(images)
    batch_size = max(1, min(batch_size, n))
    parts, start = [], time.perf_counter()
    for batch, mask in train.padded_batches(np.arange(n), batch_size):
        out = jax.device_get(fn(params_i, params_prev, images[batch]))
        parts.append({k: v[: int(mask.sum())] for k, v in out.items()})
        done = sum(len(p["J"]) for p in parts)
        if n > batch_size:
            rate = done / (time.perf_counter() - start)
            logging.info(
                "highlight maps: %d/%d photos, %.1f photos/s, ETA %.0fs",
                done,
                n,
                rate,
                (n - done) / rate,
            )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def pair_rounds(workdir: str, fold: int, round_: int | None = None, k: int = 1):
    """(I, I - k): the rounds to compare; I defaults to the round chosen on validation.

    A default I too early for net_{I-k} falls back to round 1 + k (logged); an explicit one
    must leave I - k >= 1. Both rounds must have a checkpoint. A k or round that can never
    work is an errors.ConfigError; what this run lacks (a fold, a round), an errors.DataError.
    """
    if k < 1:
        raise errors.ConfigError(
            f"k={k}: must be >= 1 (net_I is compared with an earlier net_(I-k))"
        )
    saved = checkpoints.saved_rounds(workdir, fold)
    if round_ is None:
        chosen = checkpoints.chosen_round(workdir, fold)
        round_ = chosen
        if chosen - k < 1:
            round_ = 1 + k
            if round_ not in saved:
                raise errors.DataError(
                    f"fold {fold}: the chosen round {chosen} has no round {chosen - k} to compare "
                    f"with (k={k}), and no round {round_} was saved to use instead "
                    f"(saved: {saved}); pass a smaller k"
                )
            logging.warning(
                "fold %d: the chosen round %d has no net_(I-%d); comparing rounds %d and 1",
                fold,
                chosen,
                k,
                round_,
            )
    elif round_ - k < 1:
        raise errors.ConfigError(
            f"round={round_}, k={k}: I - k = {round_ - k}, but rounds start at 1; "
            f"pick round > k (saved rounds: {saved})"
        )
    for r in (round_, round_ - k):
        if r not in saved:
            raise errors.DataError(f"fold {fold} has no checkpoint of round {r} (saved: {saved})")
    return round_, round_ - k


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _overlay(ax, photo: np.ndarray, diff: np.ndarray, vmax: float):
    """The photo with the upsampled signed difference map over it; returns the image artist."""
    ax.imshow(photo)
    shown = ax.imshow(
        conv1_to_photo(diff, photo.shape[0]),
        cmap=DIFF_CMAP,
        vmin=-vmax,
        vmax=vmax,
        alpha=0.6,
    )
    ax.set_axis_off()
    return shown


def draw_highlight(path: str, photo: np.ndarray, maps: dict, rounds: tuple, caption: str = ""):
    """One photo as the paper's Fig. 4: photo | conv1_I^J | conv1_{I-k}^J | diff over photo."""
    (round_i, round_prev), J = rounds, int(maps["J"])
    fig = _figure(13, 3.4)
    axes = fig.subplots(1, 4)
    axes[0].imshow(photo)
    axes[0].set_title(caption or "photo", fontsize=9)
    axes[0].set_axis_off()
    lo = float(min(maps["conv_i"].min(), maps["conv_prev"].min()))
    hi = float(max(maps["conv_i"].max(), maps["conv_prev"].max()))
    for ax, key, r in ((axes[1], "conv_i", round_i), (axes[2], "conv_prev", round_prev)):
        shown = ax.imshow(maps[key], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(f"conv1 of net_{r}, channel J={J}", fontsize=9)
        ax.set_axis_off()
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
    vmax = max(float(np.abs(maps["diff"]).max()), 1e-12)
    shown = _overlay(axes[3], photo, maps["diff"], vmax)
    axes[3].set_title(
        f"diff_{round_i},{round_prev} (corr {float(maps['corr'][J]):.3f})", fontsize=9
    )
    fig.colorbar(shown, ax=axes[3], fraction=0.046, pad=0.03, label="conv1_I - conv1_(I-k)")
    fig.savefig(path)


def draw_panel(path: str, rows: list, title: str, per_row: int):
    """Photos and their highlight overlays, one row per score (the paper's Fig. 10).

    `rows` holds (score, photos [n,S,S,3], diffs [n,h,w]); each diff is scaled to its own
    max |diff| so that every photo's region shows, on one shared colour scale.
    """
    fig = _figure(1.6 * 2 * per_row + 1.0, 1.6 * len(rows) + 0.5)
    axes = np.asarray(fig.subplots(len(rows), 2 * per_row, squeeze=False))
    for ax in axes.flat:
        ax.set_axis_off()
    for r, (score, images, diffs) in enumerate(rows):
        for i, (photo, diff) in enumerate(zip(images, diffs, strict=True)):
            axes[r, 2 * i].imshow(photo)
            _overlay(axes[r, 2 * i + 1], photo, diff / max(float(np.abs(diff).max()), 1e-12), 1.0)
        axes[r, 0].set_axis_on()
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        axes[r, 0].set_ylabel(f"score {score}")
    fig.suptitle(title, fontsize=10)
    mappable = cm.ScalarMappable(colors.Normalize(-1, 1), DIFF_CMAP)
    fig.colorbar(mappable, ax=axes[:, -1].tolist(), shrink=0.6, label="diff / max|diff|")
    fig.savefig(path)


def write_run_panels(experiment, fold_splits, per_class: int = 3, k: int = 1) -> list[str]:
    """Writes report/highlights_fold{F}.png for a finished run: a few test photos per score.

    Called at the end of `rsrl.run`; skipped (logged) when the run has a single round.
    """
    config, workdir, data = experiment.config, experiment.workdir, experiment.data
    if config.rsrl.rounds < 2:
        logging.info("highlight panels skipped: one round, no net_(I-k) to compare with")
        return []
    report = os.path.join(workdir, "report")
    os.makedirs(report, exist_ok=True)
    written = []
    for fold, split in enumerate(fold_splits):
        rounds = pair_rounds(workdir, fold, None, k)
        _, model, params_i, scores = checkpoints.load_network(workdir, fold, rounds[0])
        params_prev = checkpoints.load_network(workdir, fold, rounds[1])[2]
        picks = [split.test[data.labels[split.test] == c][:per_class] for c in range(len(scores))]
        chosen = np.concatenate(picks)
        if len(chosen) == 0:
            logging.info("fold %d: no test photo, no highlight panel", fold)
            continue
        images = train.center_crops(data.images[chosen], config.data.image_size)
        maps = run_highlights(
            make_highlight_fn(model), params_i, params_prev, images, config.train.eval_batch_size
        )
        rows, start = [], 0
        for c, pick in enumerate(picks):
            if len(pick):
                part = slice(start, start + len(pick))
                rows.append((scores[c], images[part], maps["diff"][part]))
                start += len(pick)
        path = os.path.join(report, f"highlights_fold{fold}.png")
        draw_panel(
            path,
            rows,
            f"fold {fold}: highlight regions diff_{rounds[0]},{rounds[1]} of test photos "
            "by true score (photo | conv1 difference over it)",
            per_class,
        )
        logging.info("fold %d: highlight panel of rounds %d vs %d in %s", fold, *rounds, path)
        written.append(path)
    return written


def unique_png_names(paths: list[str]) -> list[str]:
    """One PNG name per photo: its base name, with a counter when two photos share one."""
    used, names = set(), []
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0] or "photo"
        name, n = f"{stem}.png", 1
        while name in used:
            n += 1
            name = f"{stem}_{n}.png"
        used.add(name)
        names.append(name)
    return names
