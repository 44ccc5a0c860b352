"""The speed table of docs/speed.md, rendered from a study benchmark's figures.

  python -m benchmarks --study --study_seeds=2 --study_torch_threads=1 \\
      --json_out=runs/study_speed.json
  python tools/study_speed_table.py runs/study_speed.json   # markdown, to paste

Prints the command's sides (a)-(d) with their wall seconds, the ratios the issue sets goals
on, the yardstick (the study against one run of the same config), each process's CPU
seconds and compiles, and where each of our sides' seconds go (`study_bench.split_study`:
the parts add up to the wall time). Every figure comes from the JSON: generated, never
typed.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import study_bench  # noqa: E402  (the clone's, not installed)


def table(results: dict) -> str:
    s, sides = results["summary"], results["sides"]
    settings = results["settings"]
    lines = [
        f"{settings['data']}: {', '.join(settings['methods'])} x {settings['seeds']} seeds, "
        f"{settings['folds']} folds, {settings['rounds']} rounds"
        + (
            f", {settings['examples']} x {settings['dim']} vectors"
            if settings["data"] == "embeddings"
            else ""
        )
        + f"; {results['machine']['cpu_count']} cores, load average "
        f"{results['machine']['load_1min_start']:.1f} at the start",
        "",
        "| side | wall s |",
        "| --- | ---: |",
    ]
    for key, title in study_bench.SIDES.items():
        value = s["wall_s"].get(key)
        lines.append(f"| {title} | {'-' if value is None else f'{value:.1f}'} |")
    lines.append(f"| one {settings['folds']}-fold run (yardstick) | {s['single_run_s']:.1f} |")
    lines += ["", "| ratio | measured |", "| --- | ---: |"]
    for name, key in (
        ("(a) / (d)", "a_over_d"),
        ("(c) / (a)", "c_over_a"),
        ("(b) / (a)", "b_over_a"),
    ):
        value = s[key]
        lines.append(f"| {name} | {'-' if value is None else f'{value:.2f}x'} |")
    lines.append(f"| (a) / one run | {s['a_over_single']:.2f}x |")
    processes = [(study_bench.SIDES[k], sides[k]) for k in ("a", "b", "c") if k in sides]
    processes.append((f"one {settings['folds']}-fold run", sides.get("single", {})))
    if all("cpu_s" in side for _, side in processes):  # figures of a benchmark that counts them
        lines += ["", "| process | CPU s (user + system) | compiles (cache hits) |"]
        lines.append("| --- | ---: | ---: |")
        for title, side in processes:
            compiles = side.get("side", {}).get("compiles")
            cell = "-"
            if compiles is not None:
                count = sum(e["compiles"] for e in compiles.values())
                cell = f"{count} ({side['side']['cache_hits']})"
            lines.append(f"| {title} | {side['cpu_s']:.1f} | {cell} |")
    ours = [k for k in ("a", "b") if k in sides]
    lines += [
        "",
        "| part, s (share) | " + " | ".join(study_bench.SIDES[k][:3] for k in ours) + " |",
        "| --- |" + " ---: |" * len(ours),
    ]
    for part in study_bench.OUR_PARTS:
        seconds = [(sides[k]["split"][part], sides[k]["wall_s"]) for k in ours]
        cells = [f"{v:.1f} ({100 * v / wall:.0f}%)" for v, wall in seconds]
        lines.append(f"| {part[:-2]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", help="the JSON of `benchmark --study --json_out=...`")
    args = parser.parse_args(argv)
    with open(args.figures) as f:
        print(table(json.load(f)))


if __name__ == "__main__":
    sys.exit(main())
