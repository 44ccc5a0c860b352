"""Matplotlib figures without pyplot: no process-wide backend, no global figure registry.

matplotlib is imported when a figure is made, not with this module, so the modules that
draw (report, compare, highlight) can be imported by a training run that never loads it.
"""


def new_figure(width: float, height: float, **kwargs):
    """A `width` x `height` inch `Figure` (100 dpi unless `dpi` is given) on an Agg canvas,
    so `fig.savefig` writes PNGs; freed with its last reference (no `plt.close`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kwargs.setdefault("dpi", 100)
    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def fit_y(axes, low: float | None = None, high: float | None = None, margin: float = 0.06):
    """Fits the y axis of `axes` (one Axes or several sharing y) to what they draw: the union
    of their data limits (lines, bands, bars, error bars) widened by `margin` of its span (at
    least MIN_SPAN wide, so a flat curve is not blown up to noise), never past the values'
    own bounds `low`/`high` (0 and 1 for a share, -1 and 1 for a correlation). Axes that draw
    nothing keep their limits. Returns the (bottom, top) set, or None."""
    import numpy as np

    axes = list(axes) if isinstance(axes, list | tuple) else [axes]
    lows = [ax.dataLim.y0 for ax in axes if ax.dataLim.y0 <= ax.dataLim.y1]
    highs = [ax.dataLim.y1 for ax in axes if ax.dataLim.y0 <= ax.dataLim.y1]
    if not lows or not np.isfinite(lows + highs).all():
        return None
    y0, y1 = min(lows), max(highs)
    if y1 - y0 < MIN_SPAN:
        centre = (y0 + y1) / 2
        y0, y1 = centre - MIN_SPAN / 2, centre + MIN_SPAN / 2
    pad = margin * (y1 - y0)
    bottom = y0 - pad if low is None else max(low - pad / 4, y0 - pad)
    top = y1 + pad if high is None else min(high + pad / 4, y1 + pad)
    for ax in axes:
        ax.set_ylim(bottom, top)
    return bottom, top


MIN_SPAN = 0.05  # the narrowest y range `fit_y` draws (in the values' units)


def legend_below(fig, ax, fontsize: float = 8, ncol: int | None = None):
    """Lays `fig` out (tight_layout) with the legend of `ax`'s series below every panel, in
    the figure's bottom strip: never over a plotted point, error bar or reference line (a
    legend inside the axes sat on the error bars and on a curve at 1.0). `ncol`: columns
    (None: up to 4). Returns the legend, or None when `ax` labels nothing."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        fig.tight_layout()
        return None
    legend = fig.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=ncol or min(len(labels), 4),
        fontsize=fontsize,
        frameon=False,
    )
    height = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.bbox.height
    fig.tight_layout(rect=(0, min(height + 0.01, 0.5), 1, 1))
    return legend
