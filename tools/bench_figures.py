"""Markdown of the benchmarks' JSON figures, for docs/generated/ (tools/docs_figures.py).

Each function takes what one command wrote with `--json_out` (or a tool's own JSON) and
returns the snippet's text below its source line; every figure comes from that JSON. The
benchmark commands are named once here, so a rename is one line.
"""

BENCHMARK = "python -m benchmarks"
VIT_BENCHMARK = "python -m benchmarks.vit"
FOLD_BENCHMARK = "python -m benchmarks.folds"

STEPS = f"{BENCHMARK} --variants=ours,xla_gradients,xla_libraries,before"
RESNET = f"{BENCHMARK} --model=resnet50 --rounds=5 --pipeline=false"
WHOLE_RUN = f"{BENCHMARK} --whole_run"
VIT = f"{VIT_BENCHMARK} --archs=clip_vit_b16,siglip_vit_b16"
FOLDS = f"{FOLD_BENCHMARK} --config=configs/demo.py --config.protocol.folds=5"
SIDE_NAMES = {"torch": "PyTorch", "jax:ours": "ours", "jax:before": "ours before"}
PART_NAMES = {
    "imports_s": "imports (process start to the first log line)",
    "setup_s": "setup (data, network, steps, initial weights)",
    "compile_s": "compile (every trace, lowering and XLA compile)",
    "training_s": "training",
    "likelihood_passes_s": "likelihood passes over D",
    "evaluation_s": "evaluation (validation, test)",
    "checkpoints_s": "checkpoint writes",
    "reporting_s": "reporting (summary, highlight panel, report)",
    "exit_s": "exit (interpreter teardown)",
    "other_s": "other",
}


def _range(s: dict, digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


def _machine(results: dict) -> str:
    m = results["machine"]
    return f"{m.get('cpu_count', '?')} cores, jax {m.get('jax', '?')}, torch {m.get('torch', '?')}"


def steps(results: dict) -> str:
    """Images/s of the train and forward steps per side, and each side's ratio to PyTorch's."""
    table, spec = results["comparison"], results["spec"]
    stats = results["worker_stats"]
    loads = results["timed"].get("load_1min", [])
    load = f"load average {min(loads):.1f}-{max(loads):.1f}" if loads else "load not recorded"
    lines = [
        f"{results['model']}, batch {spec['batch_size']}, {spec['image_size']}x"
        f"{spec['image_size']}, {spec['compute_dtype']}; {_machine(results)}; {load}:",
        "",
        "| images/s, median [min, max] (ratio to PyTorch's) | train step | forward | peak MB |",
        "| --- | --- | --- | ---: |",
    ]
    for name, kinds in table["sides"].items():
        cells = []
        for kind in ("train", "forward"):
            cell = _range(kinds[kind], 2)
            ratio = table["ratios"].get(name, {}).get(kind)
            cells.append(cell + (f" (**{_range(ratio)}x**)" if ratio else ""))
        label = SIDE_NAMES.get(name, name.replace("jax:", "ours, "))
        rss = stats.get(name, {}).get("peak_rss_mb")
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {rss:.0f} |")
    return "\n".join(lines) + "\n"


def whole_run(results: dict) -> str:
    """The whole CLI run against the PyTorch loop: wall, speed ratio, memory, where time goes."""
    s, pairs = results["summary"], results["pairs"]
    ratio = s["speed_ratio"]
    loads = [p["load_1min_before"] for p in pairs] + [results["load_1min_end"]]
    lines = [
        f"{len(pairs)} pairs, compilation cache {results['job']['cache']}; {_machine(results)}; "
        f"load average {min(loads):.1f}-{max(loads):.1f}. Speed ours/torch (torch's time over "
        f"ours) **{ratio['median']:.2f}x** (the pairs "
        + ", ".join(f"{r:.2f}x" for r in ratio["pairs"])
        + f"); peak memory (RSS) ours {_range(s['ours']['peak_rss_mb'], 0)} MB, PyTorch's "
        f"{_range(s['torch']['peak_rss_mb'], 0)} MB.",
        "",
        "| part, median seconds | ours | PyTorch |",
        "| --- | ---: | ---: |",
    ]
    for part, name in PART_NAMES.items():
        cells = [s[side]["split_median"].get(part) for side in ("ours", "torch")]
        lines.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.1f}" for c in cells))
        lines[-1] += " |"
    lines.append(
        f"| **whole run** | **{_range(s['ours']['wall_s'], 1)}** | "
        f"{_range(s['torch']['wall_s'], 1)} |"
    )
    return "\n".join(lines) + "\n"


def vit(results: dict) -> str:
    """Each ViT's port error and forward images/s, ours against transformers'."""
    archs = results["archs"]
    threads = {a.get("threads") for a in archs.values()} - {None}
    lines = [
        f"Batch {results['batch_size']}, median of {results['repeats']} batches after a "
        f"warm-up, {', '.join(map(str, sorted(threads))) or '?'} torch threads, load average "
        f"{results['load_average'][0]:.1f} at the end:",
        "",
        "| arch | port error (one image, full size) | ours img/s | transformers img/s | ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for arch, a in archs.items():
        error = f"{a['port_error']:.1e}" if "port_error" in a else "-"
        lines.append(
            f"| `{arch}` | {error} | {a['ours']:.2f} | {a['theirs']:.2f} | {a['ratio']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def first_prediction(out: dict) -> str:
    """Seconds of import, load and the first prediction, in a fresh process."""
    w, h = out["photo_size"]
    rows = [
        ("`import rsrl_jax` (lazy: no JAX yet)", out["import_s"]),
        (f"`rsrl_jax.load` (imports JAX, Flax, Orbax; reads round {out['round']})", out["load_s"]),
        ("first `model.predict(photo)` (compiles the batch of one)", out["first_predict_s"]),
        ("**time to first prediction**", out["first_prediction_s"]),
        ("second `model.predict(photo)`", out["second_predict_s"]),
    ]
    lines = [
        f"A {w}x{h} photo, on {out['cpu_count']} cores at load average "
        f"{out['load_1min_before']:.1f}:",
        "",
        "| step | seconds |",
        "| --- | ---: |",
        *(f"| {name} | {s:.2f} |" for name, s in rows),
    ]
    return "\n".join(lines) + "\n"


def strengths(out: dict) -> str:
    """The macro F of a logistic regression on noiseless scores, per feature strength."""
    lines = [
        "| level | sigma | macro F of a logistic regression on noiseless scores |",
        "| --- | --- | --- |",
    ]
    for level, f in out["levels"].items():
        name = f"`{level}` (default)" if level == "medium" else f"`{level}`"
        lines.append(f"| {name} | {f['sigma']:g} | {f['mean']:.3f} ± {f['std']:.3f} |")
    lines += [
        "",
        f"({out['examples']} vectors, seeds {out['seeds']}: mean ± sd over "
        f"{next(iter(out['levels'].values()))['n']} folds.)",
    ]
    return "\n".join(lines) + "\n"


def _cost_rows(out: dict) -> list[tuple]:
    rows = []
    for i, rep in enumerate(out["repetitions"]):
        rsrl, cl = rep["rsrl"], rep["confident_learning"]
        rows.append(
            (i + 1, rsrl["wall_s"], cl["wall_s"], sum(cl["cross_fit_s"]), len(cl["cross_fit_s"]))
        )
    return rows


def cl_cost(out: dict) -> str:
    """rsrl's and confident_learning's wall times on the same vectors, and the cross-fits'."""
    loads = [r["load_1min_before"] for rep in out["repetitions"] for r in rep.values()]
    lines = [
        f"On {out['cpu_count']} cores, load average {min(loads):.1f}-{max(loads):.1f}; "
        "3000 x 128 vectors, 5 folds, 6 rounds:",
        "",
        "| repetition | rsrl wall | confident_learning wall | ratio | its cross-fitting |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for i, rsrl, cl, fits, n in _cost_rows(out):
        lines.append(
            f"| {i} | {rsrl:.1f} s | {cl:.1f} s | {cl / rsrl:.2f} | {fits:.1f} s ({n} fits) |"
        )
    return "\n".join(lines) + "\n"


def _span(values) -> str:
    """'lo-hi' of `values` at one decimal, or one figure where the two read the same."""
    lo, hi = f"{min(values):.1f}", f"{max(values):.1f}"
    return lo if lo == hi else f"{lo}-{hi}"


def embeddings_speed(out: dict) -> str:
    """One rsrl run over embeddings: its rounds' training and evaluation seconds, its wall."""
    run = out["repetitions"][0]["rsrl"]
    rounds = run["rounds"]
    first = [r for r in rounds if r["round"] == 1]
    later = [r for r in rounds if r["round"] > 1]
    return (
        f"3000 x 128 vectors, `configs/embeddings.py` (5 folds, 6 rounds: 20 epochs in round 1, "
        f"5 in each later one, an MLP head), on {out['cpu_count']} cores at load average "
        f"{run['load_1min_before']:.1f}: round 1 trained in "
        f"{_span([r['train_s'] for r in first])} s a "
        f"fold (the first includes compiling), rounds 2-6 in "
        f"{_span([r['train_s'] for r in later])} s, "
        f"evaluation {max(r['eval_s'] for r in rounds):.1f} s at most a round; the whole "
        f"command took {run['wall_s'] / 60:.1f} minutes, report included.\n"
    )


def folds(out: dict) -> str:
    """Sequential folds against the k folds at once: seconds and the speed-up."""
    return (
        f"{out['folds']} folds x {out['rounds']} rounds of the demo, {out['photos']} photos, "
        f"{out['devices']} device(s) on {out['cpu_count']} cores (load average "
        f"{out['load_1min_end']:.1f} at the end): sequential {out['sequential_s']:.1f} s, "
        f"at once {out['parallel_s']:.1f} s, speed-up "
        f"**{out['sequential_s'] / out['parallel_s']:.2f}x** (largest val/test metric gap "
        f"{out['largest_gap']:.2g}).\n"
    )
