"""Matplotlib drawings of highlight maps: one photo as the paper's Fig. 4, a panel as Fig. 10.

Imported only by what draws (`analysis.highlight` imports it when it draws), so that
training and the maths never load matplotlib. Figures are plain `Figure`s on an Agg canvas
(`analysis.figures`): no pyplot, no process-wide backend.
"""

import numpy as np
from matplotlib import cm, colors

from rsrl_jax.analysis.figures import new_figure
from rsrl_jax.analysis.highlight_maps import conv1_to_photo

DIFF_CMAP = "RdBu_r"  # signed difference: red where net_I responds more, blue where less


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
    fig = new_figure(13, 3.4, layout="constrained")
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
    fig = new_figure(1.6 * 2 * per_row + 1.0, 1.6 * len(rows) + 0.5, layout="constrained")
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
