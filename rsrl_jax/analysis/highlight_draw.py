"""Matplotlib drawings of highlight maps: one photo as the paper's Fig. 4, a panel as Fig. 10.

Imported only by what draws (`analysis.highlight` imports it when it draws), so that
training and the maths never load matplotlib. Figures are plain `Figure`s on an Agg canvas
(`analysis.figures`): no pyplot, no process-wide backend.

A map scaled to its own maximum hides how large it is, so every map is labelled with its
absolute size (`highlight_maps.difference_size`), and a negligible one says so on the figure.
"""

import numpy as np
from matplotlib import cm, colors

from rsrl_jax.analysis.figures import new_figure
from rsrl_jax.analysis.highlight_maps import ALEXNET_CONV1, conv1_to_photo, negligible_reason

DIFF_CMAP = "RdBu_r"  # signed difference: red where net_I responds more, blue where less
WARNING_COLOUR = "firebrick"
NEGLIGIBLE_HEADLINE = "networks barely differ — treat this map as noise, not a region"


def _overlay(ax, photo: np.ndarray, diff: np.ndarray, vmax: float, geometry):
    """The photo with the upsampled signed difference map over it; returns the image artist."""
    ax.imshow(photo)
    shown = ax.imshow(
        conv1_to_photo(diff, photo.shape[0], geometry),
        cmap=DIFF_CMAP,
        vmin=-vmax,
        vmax=vmax,
        alpha=0.6,
    )
    ax.set_axis_off()
    return shown


def _stamp_noise(ax, fontsize: float):
    """'noise' across a negligible map, so that no one reads it as a region."""
    ax.text(
        0.5,
        0.5,
        "noise",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=fontsize,
        fontweight="bold",
        color=WARNING_COLOUR,
        alpha=0.85,
    )


def draw_highlight(
    path: str,
    photo: np.ndarray,
    maps: dict,
    rounds: tuple,
    size: dict,
    caption: str = "",
    geometry=ALEXNET_CONV1,
):
    """One photo as the paper's Fig. 4: photo | conv1_I^J | conv1_{I-k}^J | diff over photo.

    `geometry`: the network's conv1 (`highlight_maps.conv1_geometry`), to place the map.
    `size` is this photo's row of `difference_size` (floats): the diff panel's title gives
    max |diff| in conv1 units and against the activation scale; a negligible map gets a red
    headline with the reason and 'noise' across it. Returns the saved `Figure`.
    """
    (round_i, round_prev), J = rounds, int(maps["J"])
    fig = new_figure(13, 3.8, layout="constrained")
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
    max_abs, relative = float(size["max_abs_difference"]), float(size["relative_difference"])
    shown = _overlay(axes[3], photo, maps["diff"], max(max_abs, 1e-12), geometry)
    axes[3].set_title(
        f"diff_{round_i},{round_prev} (corr {float(size['min_corr']):.3f})\n"
        f"max |diff| {max_abs:.2g} = {relative:.1e} of max |conv1| "
        f"{float(size['activation_scale']):.3g}",
        fontsize=9,
        color=WARNING_COLOUR if size["negligible"] else "black",
    )
    fig.colorbar(
        shown, ax=axes[3], fraction=0.046, pad=0.03, label="conv1_I - conv1_(I-k) (conv1 units)"
    )
    if size["negligible"]:
        reason = negligible_reason(max_abs, relative, float(size["min_corr"]))
        fig.suptitle(f"{NEGLIGIBLE_HEADLINE}\n{reason}", fontsize=10, color=WARNING_COLOUR)
        _stamp_noise(axes[3], 28)
    fig.savefig(path)
    return fig


def draw_panel(path: str, rows: list, title: str, per_row: int, geometry=ALEXNET_CONV1):
    """Photos and their highlight overlays, one row per score (the paper's Fig. 10);
    `geometry` as for `draw_highlight`.

    `rows` holds (score, photos [n,S,S,3], diffs [n,h,w], sizes): `sizes` is those photos'
    `difference_size` (arrays of n). Each diff is scaled to its own max |diff| so that every
    photo's region shows, on one shared colour scale; its absolute size is written above it,
    and a negligible map is stamped 'noise' in red. Returns the saved `Figure`.
    """
    fig = new_figure(1.6 * 2 * per_row + 1.0, 1.7 * len(rows) + 0.6, layout="constrained")
    axes = np.asarray(fig.subplots(len(rows), 2 * per_row, squeeze=False))
    for ax in axes.flat:
        ax.set_axis_off()
    shown = negligible = 0
    for r, (score, images, diffs, sizes) in enumerate(rows):
        for i, (photo, diff) in enumerate(zip(images, diffs, strict=True)):
            ax = axes[r, 2 * i + 1]
            axes[r, 2 * i].imshow(photo)
            _overlay(ax, photo, diff / max(float(np.abs(diff).max()), 1e-12), 1.0, geometry)
            small = bool(sizes["negligible"][i])
            ax.set_title(
                f"max|diff| {sizes['max_abs_difference'][i]:.2g} "
                f"({sizes['relative_difference'][i]:.0e})",
                fontsize=7,
                color=WARNING_COLOUR if small else "black",
            )
            if small:
                _stamp_noise(ax, 12)
            shown, negligible = shown + 1, negligible + small
        axes[r, 0].set_axis_on()
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        axes[r, 0].set_ylabel(f"score {score}")
    if negligible:
        title += (
            f"\n{negligible} of {shown} maps negligible (stamped 'noise'): the networks barely "
            "differ there"
        )
    fig.suptitle(title, fontsize=10, color=WARNING_COLOUR if negligible else "black")
    mappable = cm.ScalarMappable(colors.Normalize(-1, 1), DIFF_CMAP)
    fig.colorbar(
        mappable,
        ax=axes[:, -1].tolist(),
        shrink=0.6,
        label="diff / its max|diff|\n(above each map: max|diff|,\nconv1 units, and its share\n"
        "of max|conv1|)",
    )
    fig.savefig(path)
    return fig
