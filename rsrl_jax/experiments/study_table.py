"""study.md and study.png from a study's numbers (`study_stats`): the tables per noise level,
the power note, the partial runs, the closing advice, the figure.
"""

import numpy as np

from rsrl_jax import workdir_files
from rsrl_jax.analysis import compare_table
from rsrl_jax.config import GENERATED
from rsrl_jax.experiments import study_sweep
from rsrl_jax.experiments.study_stats import (
    AESTHETIC,
    CONFIDENCE,
    FIGURES,
    REFERENCE,
    TARGET_HALF_WIDTH,
)
from rsrl_jax.metrics import aesthetic

TITLES = {
    "macro_f1": "macro F",
    "balanced_accuracy": "balanced acc.",
    "minority_recall": "minority R",
    "majority_recall": "majority R",
    **aesthetic.TITLES,
}
PLOTTED = (*FIGURES, "srcc", "plcc")


def _stat(s: dict) -> str:
    if not s["n"]:
        return "–"
    return f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if s["n"] > 1 else "")


def _signed(x: float) -> str:
    return f"{round(x, 3) + 0.0:+.3f}"  # + 0.0: a difference that rounds to 0 is +0.000


def _diff(d: dict | None, planned: int | None = None) -> str:
    """A paired difference and its interval; with `planned` units (a study with partial
    runs), how many pairs it rests on when fewer."""
    if d is None or not d["n"]:
        return "–"
    pairs = f" (n={d['n']} of {planned})" if planned and d["n"] < planned else ""
    if d["low"] is None:
        return _signed(d["mean"]) + pairs
    return f"{_signed(d['mean'])} [{_signed(d['low'])}, {_signed(d['high'])}]{pairs}"


def power_lines(cells: dict, planned: int | None = None) -> list[str]:
    """Per method, its differences to plain in words: macro F's interval, whether it excludes
    0, the smallest difference the study could detect (the half-width) and the units (seeds)
    a half-width of TARGET_HALF_WIDTH needs; then every other figure's verdict."""
    compared = [(m, c["diff"]) for m, c in cells.items() if c["diff"] is not None]
    if not compared:
        return []
    lines = [
        "",
        f"Power: each difference to `{REFERENCE}` in words (does its "
        f"{100 * CONFIDENCE:.0f} % interval exclude 0?) and the smallest difference the study "
        "could detect (the interval's half-width, t × sd / √n over the n paired units).",
        "",
    ]
    for method, diff in compared:
        d = diff["macro_f1"]
        text = f"- **{method} − {REFERENCE}**, macro F: {_diff(d, planned)}"
        if d["half_width"] is None:
            text += f" ({d['words']}): no interval, so no detectable difference to state."
        else:
            text += (
                f" over n = {d['n']} paired units (seed × fold): {d['words']}. The study could "
                f"detect differences of about ±{d['half_width']:.3f} macro F (half-width)"
            )
            if d["half_width"] <= TARGET_HALF_WIDTH:
                text += f", within the ±{TARGET_HALF_WIDTH:g} aimed at."
            else:
                seeds = d.get("seeds_needed")
                text += (
                    f"; at the observed sd ({d['std']:.3f}), {d['units_needed']} units"
                    + (f" ({seeds} seeds of this study's folds)" if seeds else "")
                    + f" would bring it to ±{TARGET_HALF_WIDTH:g}."
                )
        others = [
            f"{TITLES[n]} {_diff(diff[n])}: {diff[n]['words']}"
            for n in FIGURES + AESTHETIC
            if n != "macro_f1"
        ]
        lines.append(text + " Others: " + "; ".join(others) + ".")
    return lines


def _pct(share) -> str:
    return "–" if share is None else f"{100 * share:.0f} %"


def wall_line(out: dict) -> str:
    """The study's budget in words: its runs and the wall time of the commands that trained
    them (`study_commands`; a study.json from before them counts one)."""
    commands = out.get("commands", 1)
    return (
        f"{out['runs']} runs; wall time {out['wall_s']:.0f} s over {commands} "
        f"command{'s' if commands != 1 else ''} that trained runs."
    )


def markdown(out: dict, config) -> str:
    seeds, noise = out["seeds"], out["label_noise"]
    first = next(iter(next(iter(out["noise"].values())).values()))
    folds = len({u["fold"] for u in first["units"]})
    synthetic = config.data.name in GENERATED
    levels = ", ".join(f"{n:g}" for n in noise)
    partial = out.get("partial_runs") or []
    planned = out.get("units_planned") if partial else None  # n shown only where runs lack
    marked = {(f"{p['label_noise']:g}", p["method"]) for p in partial}
    lines = [
        "# RSRL over seeds and rater noise" if synthetic else "# RSRL over seeds",
        "",
        f"`{config.data.name}` data; seeds {', '.join(map(str, seeds))}; "
        + (f"rater noise (`data.label_noise`) {levels}; " if synthetic else "")
        + f"{folds} fold(s) per seed, "
        f"{config.rsrl.rounds} round(s) per run; "
        + (
            "every epoch a pass over all of D, so every method spends the same steps."
            if out["equal_steps"]
            else "the config's epochs (steps may differ)."
        ),
        "Each cell: the test figure of the round chosen on validation macro F, mean ± std over "
        "seeds x folds; below each method, the paired difference to `plain` (same seed, same "
        f"fold) with its {100 * out['confidence']:.0f} % t interval. Majority: the "
        f"{config.rsrl.num_majority} largest classes of each fold's D.",
        "",
    ]
    if out.get("wall_s") is not None:  # absent from a hand-made `out`
        lines += [wall_line(out), ""]
    if partial:
        lines += [
            f"Rows marked{compare_table.PARTIAL} hold a partial run: their figures rest on the "
            "folds and rounds that ran, and each difference to `plain` says on how many paired "
            f"units (n) it rests when fewer than the {planned} planned. "
            + " ".join(
                f"`{workdir_files.study_run_dir(p['label_noise'], p['seed'], p['method'])}`: "
                f"{p['line']}."
                for p in partial
            ),
            "",
        ]
    for key, cells in out["noise"].items():
        lines += [
            f"## Rater noise {key}" if synthetic else "## Results",
            "",
            "| method | " + " | ".join(TITLES[n] for n in FIGURES) + " | dropped / kept "
            "mislabelled (chance) |",
            "| --- | " + " | ".join("---" for _ in FIGURES) + " | --- |",
        ]
        for method, cell in cells.items():
            sel = cell["selection"]
            truth = (
                "–"
                if sel is None
                else f"{_pct(sel['dropped'])} / {_pct(sel['kept'])} ({_pct(sel['chance'])})"
            )
            name = method + (compare_table.PARTIAL if (key, method) in marked else "")
            lines.append(
                f"| {name} | " + " | ".join(_stat(cell[n]) for n in FIGURES) + f" | {truth} |"
            )
            if cell["diff"] is not None:
                lines.append(
                    "| − plain | "
                    + " | ".join(_diff(cell["diff"][n], planned) for n in FIGURES)
                    + " | |"
                )
        lines += [
            "",
            f"Aesthetic figures{f', rater noise {key}' if synthetic else ''}: the expected "
            "score (softmax-weighted mean "
            "of the class scores) against the true score on test; binary accuracy: good above "
            f"{config.eval.good_threshold:g}. A unit where a correlation is undefined (constant "
            "predictions) is left out.",
            "",
            "| method | " + " | ".join(TITLES[n] for n in AESTHETIC) + " |",
            "| --- | " + " | ".join("---" for _ in AESTHETIC) + " |",
        ]
        for method, cell in cells.items():
            name = method + (compare_table.PARTIAL if (key, method) in marked else "")
            lines.append(f"| {name} | " + " | ".join(_stat(cell[n]) for n in AESTHETIC) + " |")
            if cell["diff"] is not None:
                lines.append(
                    "| − plain | "
                    + " | ".join(_diff(cell["diff"][n], planned) for n in AESTHETIC)
                    + " |"
                )
        lines += power_lines(cells, planned)
        lines += study_sweep.markdown(out, key, REFERENCE)
        lines.append("")
    lines += [
        (
            "Mislabelled: the photo's score differs from the noiseless rater's; pooled over "
            "seeds, folds, rounds >= 2 and majority classes. "
            if synthetic
            else "Mislabelled shares need a known rater (synthetic data): none here. "
        )
        + "Each run (metrics, checkpoints) is in `noise_<noise>/seed_<seed>/<method>/`; "
        + "`python -m rsrl_jax.report --workdir=<that folder>` draws its report.",
        "",
        "![study](study.png)",
        "",
    ]
    lines += advice_lines(out, synthetic)
    return "\n".join(lines)


def advice_lines(out: dict, synthetic: bool) -> list[str]:
    """study.md's closing section: what the evidence supports (`study_advice`), per level."""
    advice = out.get("advice") or {}
    if not advice:
        return []
    lines = [
        "## What the evidence supports",
        "",
        "The method with the best validation macro F, recommended only where its test interval "
        f"against `{REFERENCE}` excludes 0.",
        "",
    ]
    for key, given in advice.items():
        lines.append((f"- Rater noise {key}: " if synthetic else "- ") + given["words"])
    return lines + [""]


def plot(out: dict, path: str) -> None:
    """One panel per figure of PLOTTED: mean ± std over seeds x folds against rater noise, per
    method, each axis fitted to its values (within 0..1, a correlation's within -1..1)."""
    from rsrl_jax.analysis.figures import fit_y, legend_below, new_figure

    noise = out["label_noise"]
    methods = list(out["methods"])
    fig = new_figure(4 * len(PLOTTED), 3.8)
    axes = fig.subplots(1, len(PLOTTED))
    for ax, name in zip(axes, PLOTTED, strict=True):
        for i, method in enumerate(methods):
            stats = [out["noise"][f"{n:g}"][method][name] for n in noise]
            mean = [s["mean"] if s["n"] else np.nan for s in stats]
            std = [s["std"] if s["n"] else 0.0 for s in stats]
            x = np.arange(len(noise)) + (i - (len(methods) - 1) / 2) * 0.06
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=2, label=method)
        ax.set_xticks(np.arange(len(noise)), [f"{n:g}" for n in noise])
        ax.set(title=TITLES[name], xlabel="rater noise (data.label_noise)")
        fit_y(ax, -1 if name in AESTHETIC else 0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test, round chosen on validation")
    legend_below(fig, axes[0])  # below the panels: never on the error bars
    fig.savefig(path, dpi=100)
