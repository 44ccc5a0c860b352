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
