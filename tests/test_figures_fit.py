"""Every report figure, drawn from hand-made records, shows its data: each plotted series lies
within its axes, and the axes are fitted to the values (not 0..1 for values of 0.20-0.32)."""

import matplotlib.figure
import numpy as np
import pytest
from test_report_verdict import ROUND1_RECALLS, SCORES, record, write_workdir

from rsrl_jax.analysis import compare_table, report
from rsrl_jax.experiments import study

SLACK = 1e-9


@pytest.fixture
def drawn(monkeypatch):
    """The figures saved while the test runs, by file name."""
    figures = {}
    save = matplotlib.figure.Figure.savefig

    def keep(fig, path, *args, **kwargs):
        figures[str(path).rsplit("/", 1)[-1]] = fig
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    return figures


def series(ax) -> tuple[list[float], list[float]]:
    """The y values ax draws in data coordinates (lines, bars' tops and bottoms) and the x
    values of its lines; an axvline's y (axes coordinates) is not data."""
    ys, xs = [], []
    for line in ax.get_lines():
        x_data, y_data = line.get_transform().contains_branch_seperately(ax.transData)
        y = np.asarray(line.get_ydata(), float)
        x = np.asarray(line.get_xdata(), float)
        if y_data:
            ys += list(y[np.isfinite(y)])
        if x_data:
            xs += list(x[np.isfinite(x)])
    for bar in ax.patches:
        if np.isfinite(bar.get_height()):
            ys += [bar.get_y(), bar.get_y() + bar.get_height()]
    return ys, xs


def _along(xy: np.ndarray, steps: int = 40) -> np.ndarray:
    """Points along the polyline xy [P, 2] (display units): a segment that crosses a box
    without a vertex in it is caught."""
    if len(xy) < 2:
        return xy
    t = np.linspace(0, 1, steps)[:, None, None]
    return (xy[:-1] + t * (xy[1:] - xy[:-1])).reshape(-1, 2)


def drawn_points(ax) -> np.ndarray:
    """[P, 2] display coordinates along everything ax draws: lines, error bars and bands
    (collections), bars' outlines."""
    points = [np.empty((0, 2))]
    for line in ax.get_lines():
        xy = np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
        points.append(_along(line.get_transform().transform(xy[np.isfinite(xy).all(axis=1)])))
    for collection in ax.collections:
        for path in collection.get_paths():
            xy = path.vertices[np.isfinite(path.vertices).all(axis=1)]
            points.append(_along(collection.get_transform().transform(xy)))
    for bar in ax.patches:
        points.append(_along(bar.get_transform().transform(bar.get_path().vertices)))
    return np.concatenate(points)


def check_legends_clear(name: str, fig) -> None:
    """Every legend lies inside the figure and over no plotted point of any panel."""
    fig.canvas.draw()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    for legend in legends:
        box = legend.get_window_extent()
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 + 1, (name, "legend cut off")
        for ax in fig.axes:
            xy = drawn_points(ax)
            inside = (xy[:, 0] > box.x0) & (xy[:, 0] < box.x1)
            inside &= (xy[:, 1] > box.y0) & (xy[:, 1] < box.y1)
            assert not inside.any(), (name, ax.get_title(), "legend over the data")


def check_fitted(figures: dict) -> None:
    for name, fig in figures.items():
        check_legends_clear(name, fig)
        for ax in fig.axes:
            if ax.images or ax.get_label() == "<colorbar>":
                continue  # the confusion matrix and its colour bar: an image, not a series
            ys, xs = series(ax)
            assert ys, f"{name}: the panel '{ax.get_title()}' draws nothing"
            bottom, top = ax.get_ylim()
            assert bottom - SLACK <= min(ys) and max(ys) <= top + SLACK, (name, ax.get_title())
            left, right = ax.get_xlim()
            assert left <= min(xs) and max(xs) <= right, (name, ax.get_title())
            shared = [y for a in ax.get_shared_y_axes().get_siblings(ax) for y in series(a)[0]]
            span = max(max(shared) - min(shared), 0.05)  # panels sharing y: their union
            assert top - bottom <= 1.25 * span, (name, ax.get_title(), (bottom, top), span)


def with_figures(rec, srcc, plcc, fold=0):
    for part in ("train", "val", "test"):
        rec[part].update(srcc=srcc, plcc=plcc, mae=0.8, rmse=1.0, binary_accuracy=0.6)
    rec["steps"] = 10
    return rec


def shares(kept, dropped, kept_share, dropped_share, chance):
    return {
        "kept": kept,
        "dropped": dropped,
        "kept_mislabelled_share": kept_share,
        "dropped_mislabelled_share": dropped_share,
        "chance_mislabelled_share": chance,
    }


def truthful_run():
    """Two folds, three rounds: macro F within 0.20-0.32, correlations within 0.55-0.75, a
    selection record whose score 5 drops nothing after round 1."""
    records = []
    for fold in (0, 1):
        for round_, (val, test, srcc) in enumerate(
            ((0.22, 0.20, 0.55), (0.30, 0.32, 0.75), (0.28, 0.26, 0.7)), start=1
        ):
            rec = with_figures(
                record(fold, round_, val, test + 0.01 * fold, ROUND1_RECALLS), srcc, srcc - 0.05
            )
            rec["selection"] = {
                "4": shares(40 - 5 * round_, 5 * round_, 0.1, 0.4 if round_ > 1 else None, 0.15),
                "5": shares(60, 0, 0.05, None, 0.05),
            }
            records.append(rec)
    return records


def test_every_report_figure_shows_its_data(tmp_path, drawn):
    workdir = write_workdir(tmp_path / "run", truthful_run())
    report.write_report(str(workdir))
    assert {"macro_f1.png", "aesthetic.png", "selection_mislabelled.png"} <= set(drawn)
    check_fitted(drawn)
    bottom, top = drawn["macro_f1.png"].axes[0].get_ylim()
    assert 0.15 < bottom and top < 0.4  # values of 0.20-0.33, not drawn on 0-1
    # Per-class curves at 0 stay at 0 (shifted sideways, never below the axis).
    per_class = drawn["per_class_test.png"].axes[1]
    assert all(line.get_ydata().min() >= 0 for line in per_class.get_lines())


def test_compare_and_study_figures_show_their_data(tmp_path, drawn):
    records = truthful_run()
    lower = [
        with_figures(record(r["fold"], r["round"], 0.25, 0.22, ROUND1_RECALLS), 0.6, 0.6)
        for r in records
    ]
    summaries = {
        "plain": compare_table.method_summary(records, 2),
        "rsrl": compare_table.method_summary(lower, 2),
    }
    compare_table.plot(summaries, SCORES, str(tmp_path / "compare.png"))
    by_seed = {"plain": {0: records, 1: records}, "rsrl": {0: lower, 1: records}}
    out = {
        "label_noise": [0.0, 0.5],
        "methods": ["plain", "rsrl"],
        "noise": study.summarize({0.0: by_seed, 0.5: by_seed}, 2),
    }
    study.plot(out, str(tmp_path / "study.png"))
    check_fitted(drawn)
    srcc = drawn["study.png"].axes[study.PLOTTED.index("srcc")]
    assert srcc.get_ylim()[0] > 0  # correlations of 0.55-0.75: not drawn from -1
