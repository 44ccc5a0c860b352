"""The docs: a short README, links that resolve, a config reference that is the code's, numbers
written from runs, and a site that builds strictly."""

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

from rsrl_jax import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 260
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
# A table cell that is a measured figure: a decimal, a share or a ratio, a time or a size, with
# its spread or interval ("0.272 ± 0.023", "1.04x [0.90, 1.08]", "55.7 s", "33 %")
FIGURE_CELL = re.compile(
    r"^[-+−]?\d[\d,]*(\.\d+(e[-+]?\d+)?\s*(%|x|s|ms|GB|MB|min)?|\s*(%|x|s|ms|GB|MB|min))"
    r"(\s*±\s*\d[\d.]*)?(\s*\[[^\]]*\])?(\s*\([^)]*\))?$"
)
# Rows whose figures come from no run (by page and first cell), with why
NOT_FROM_A_RUN = {
    ("outputs.md", "`all` (default)"): "disk per retention: the parameters' bytes",
    ("outputs.md", "`needed`"): "disk per retention: the parameters' bytes",
}


def tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pages() -> list[pathlib.Path]:
    """The README and the site's pages (docs/notes/ holds drafts the site leaves out)."""
    site = [p for p in DOCS.rglob("*.md") if "notes" not in p.relative_to(DOCS).parts]
    return [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted(site)]


def relative_links(path: pathlib.Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"[a-z]+:", target) and not target.startswith("#")
    ]


def figure_rows(text: str) -> list[str]:
    """The rows of `text`'s tables (outside code blocks) that hold a measured figure."""
    rows = []
    for line in FENCE.sub("", text).splitlines():
        if not line.lstrip().startswith("|"):
            continue
        cells = [c.strip() for c in re.sub(r"`[^`]*`", "`", line).strip().strip("|").split("|")]
        parts = [part.replace("*", "").strip() for c in cells[1:] for part in c.split(" / ")]
        if any(FIGURE_CELL.match(part) for part in parts):
            rows.append(line)
    return rows


def test_figure_tables_on_pages_are_generated_snippets():
    """A table of figures from a run lives in docs/generated/ (written from the run, naming its
    command) and a page includes it; typed into a page it would drift from the code."""
    found = []
    for page in (p for p in pages() if "generated" not in p.parts):
        for row in figure_rows(page.read_text()):
            first = row.strip().strip("|").split("|")[0].strip()
            if (page.name, first) not in NOT_FROM_A_RUN:
                found.append(f"{page.relative_to(ROOT)}: {row[:100]}")
    assert not found, "figures typed into a page, not included from docs/generated/:\n" + (
        "\n".join(found)
    )
    hand = "| images/s | train step |\n| --- | --- |\n| ours | 29.9 (**1.04x** [0.90, 1.08]) |\n"
    assert figure_rows(hand) and figure_rows("| seeds | 0.272 ± 0.023 |")
    assert figure_rows("| a | 55.7 s |") and figure_rows("| a | 33 % |")
    assert figure_rows("| `rsrl_jax.load` | 7.34 / 6.07 |")
    assert not figure_rows("| `clip_vit_b16` | CLIP | 16 | 768 x 12 | 224 | 512 |")
    assert not figure_rows("```\n| a | 1.5 |\n```\n")


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_quickstart_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    test_command = ci[ci.index("# README's test command:") + 1]
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert f"\n{venv}{test_command}\n" in readme
    assert (
        "pip install -c constraints.txt -e . && python -m rsrl_jax.main --config=configs/demo.py\n"
        in readme
    )


def test_every_relative_link_resolves():
    broken = []
    for page in pages():
        for target in relative_links(page):
            file = target.split("#", 1)[0]
            if file and not (page.parent / file).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken
    assert relative_links(ROOT / "README.md"), "the README links into the docs"


def test_readme_links_every_docs_page():
    linked = {(ROOT / t.split("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
    missing = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


def test_config_reference_is_generated_from_the_config():
    reference = tool("config_reference")
    committed = (DOCS / "generated" / "config_reference.md").read_text()
    assert committed == reference.reference(), "run python tools/config_reference.py"
    fields = config_lib.flatten(config_lib.base_config().to_dict())
    missing = [f for f in fields if f"| `{f}` |" not in committed]
    assert not missing and "(undocumented)" not in committed, missing


def test_generated_snippets_name_their_command_and_are_included():
    included = "".join(p.read_text() for p in DOCS.glob("*.md"))
    for snippet in (DOCS / "generated").glob("*.md"):
        first = snippet.read_text().splitlines()[0]
        assert first.startswith("<!--") and "python " in first, snippet.name
        assert f'--8<-- "generated/{snippet.name}"' in included, f"{snippet.name} unused"


def test_demo_figures_come_from_the_run(tmp_path):
    figures = tool("docs_figures")

    def split(macro_f1, srcc):
        return {"macro_f1": macro_f1, "srcc": srcc, "plcc": srcc + 0.01, "mae": 0.5,
                "rmse": 0.75, "binary_accuracy": 0.875}  # fmt: skip

    supports = {"3": 40, "4": 50, "5": 30, "6": 20, "7": 10}  # majority: 4, 3, 5 (120)
    train = {"per_class": {k: {"support": n} for k, n in supports.items()}}
    kept = {1: supports, 2: {"3": 10, "4": 5, "5": 15, "6": 20, "7": 10}}
    rows = [
        {"fold": 0, "round": r, "val": split(v, 0.1), "test": split(0.2, s), "train": train,
         "class_counts": kept.get(r, supports), "train_size": sum(kept.get(r, supports).values())}
        for r, v, s in ((1, 0.30, 0.731), (2, 0.25, 0.700), (3, 0.35, 0.735), (4, 0.20, 0.650))
    ]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = figures.demo_aesthetic(str(tmp_path))
    assert text.startswith("<!--") and figures.DEMO in text
    assert "round 1's test figures are SRCC 0.731, PLCC 0.741" in text
    assert "on validation, round 3, has SRCC 0.735" in text  # the best validation macro F
    assert "the last round, round 4, has SRCC 0.650 and PLCC 0.660" in text

    assert "round 2 keeps 30 of the 120 majority-class photos of D (25 %) and trains on 60 of " \
        "150 (40 %)" in figures.demo_selection(str(tmp_path))  # fmt: skip

    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("# Report\n\nThe chosen round 3 is better.\n")
    assert "> The chosen round 3 is better." in figures.demo_verdict(str(tmp_path))


def test_site_builds_strictly(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "configs" / "index.html").is_file()
    configs = (tmp_path / "configs" / "index.html").read_text()
    assert "data.near_duplicate_distance" in configs  # the generated reference, included


def test_run_figures_render_from_their_json():
    """Each of docs_figures.RUN_FIGURES renders the figures of its command's JSON."""
    figures, bench = tool("docs_figures"), tool("bench_figures")
    machine = {"cpu_count": 2, "jax": "0.1", "torch": "2.0"}

    def span(m):
        return {"median": m, "min": m - 1, "max": m + 1}

    steps = {
        "model": "alexnet", "machine": machine, "timed": {"load_1min": [1.0, 1.5]},
        "spec": {"batch_size": 32, "image_size": 224, "compute_dtype": "float32"},
        "comparison": {
            "sides": {"torch": {"train": span(28.5), "forward": span(82.1)},
                      "jax:ours": {"train": span(29.9), "forward": span(104.5)}},
            "ratios": {"jax:ours": {"train": span(1.04), "forward": span(1.28)}},
        },
        "worker_stats": {"torch": {"peak_rss_mb": 1420}, "jax:ours": {"peak_rss_mb": 1430}},
    }  # fmt: skip
    text = bench.steps(steps)
    assert "| ours | 29.90 [28.90, 30.90] (**1.04 [0.04, 2.04]x**) |" in text
    assert "| PyTorch | 28.50 [27.50, 29.50] | 82.10 [81.10, 83.10] | 1420 |" in text

    parts = {p: 1.0 for p in bench.PART_NAMES}
    side = {"wall_s": span(55.7), "peak_rss_mb": span(1600), "split_median": parts}
    whole = {"machine": machine, "job": {"cache": "cold"}, "load_1min_end": 2.0,
             "pairs": [{"load_1min_before": 0.9}],
             "summary": {"speed_ratio": {**span(0.83), "pairs": [0.83]}, "ours": side,
                         "torch": side}}  # fmt: skip
    assert "**0.83x** (the pairs 0.83x)" in bench.whole_run(whole)

    cost = {"cpu_count": 2, "repetitions": [{
        "rsrl": {"wall_s": 100.0, "load_1min_before": 3.0, "cross_fit_s": [],
                 "rounds": [{"round": 1, "train_s": 20.0, "eval_s": 0.5},
                            {"round": 2, "train_s": 0.5, "eval_s": 0.1}]},
        "confident_learning": {"wall_s": 150.0, "load_1min_before": 4.0,
                               "cross_fit_s": [20.0, 10.0], "rounds": []}}]}  # fmt: skip
    assert "| 1 | 100.0 s | 150.0 s | 1.50 | 30.0 s (2 fits) |" in bench.cl_cost(cost)
    assert "the whole command took 1.7 minutes" in bench.embeddings_speed(cost)

    seeds = {"seeds": [0, 1], "rows": {name: {
        "round1_train_accuracy": {"mean": 0.8, "std": 0.01, "n": 2},
        "round1_test_macro_f1": {"mean": 0.27, "std": 0.02, "n": 2},
        "chosen_test_macro_f1": {"mean": 0.26, "std": 0.02, "n": 2}, "chosen_rounds": [1, 3],
        "against_test_best": {"not_test_best": 1, "folds": [0, 1]},
        "round2": [{"kept": 600, "of": 1941, "train_size": 900, "size": 2229}] * 2,
    } for name in ("shipped", "scratch")}, "ceilings": {"latent_quality": [0.8, 0.9],
    "scene_factors": [0.4, 0.5]}}  # fmt: skip
    assert (
        "| shipped | 0.800 ± 0.010 | 0.270 ± 0.020 | 0.260 ± 0.020 |"
        in figures.demo_seeds.backbone_table(seeds)
    )
    assert "| thresholds on the noiseless latent quality | | 0.850 ± 0.050 | |" in (
        figures.demo_seeds.backbone_table(seeds).replace("ceiling: ", "")
    )
    assert "keeps 600, 600 of the 1,941" in figures.demo_seeds.selection_regime(seeds)
    for name, (_, _, command) in figures.RUN_FIGURES.items():
        snippet = (DOCS / "generated" / name).read_text()
        assert command in snippet.splitlines()[0], name  # the snippet names its command


def test_bad_input_lists_every_command_by_its_current_name():
    """'Mistakes and exit status' names each `python -m rsrl_jax.X` command and each
    `python -m benchmarks...` module: none missing, none by a name that no longer runs."""
    from rsrl_jax import __main__ as package_main

    text = (DOCS / "bad-input.md").read_text()
    listed = text.split("## Mistakes and exit status", 1)[1].split(") ends a", 1)[0]
    names = set(re.findall(r"`([\w.]+)`", listed))
    benchmarks = {n for n in names if n.split(".")[0] == "benchmarks"}
    assert names - benchmarks == set(package_main.commands())
    for name in benchmarks:
        assert (ROOT / (name.replace(".", "/") + ".py")).exists() or (
            ROOT / name.replace(".", "/") / "__main__.py"
        ).exists(), name
