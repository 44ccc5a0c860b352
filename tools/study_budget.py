"""The embeddings study's budget, measured: the vectors it runs on and the docs' note from it.

  python tools/study_budget.py vectors --out=runs/budget_emb   # 3000 x 128, the demo's shares
  python -m rsrl_jax.study --config=configs/embeddings.py --config.data.dir=runs/budget_emb \\
      --methods=plain,rsrl --seeds=0,1,2,3 --folds=5 --workdir=runs/budget_study
  python tools/study_budget.py note runs/budget_study   # docs/study.md "Does RSRL help?"

`vectors` stands in for synthetic embeddings until the data set has its own (issue 29): a
latent quality q and four scene factors, N(0, 1) each, through a fixed random map to D
dimensions plus unit noise (`strength` scales q's direction: the feature strength); the scores
are the rank cut of q plus rater noise (`synthetic.scores_by_rank`: the demo's class shares),
so the classes are as imbalanced as the demo's. `note` prints the budget paragraph from
`study.json` (its command, runs, folds, wall time, and per difference to plain the half-width
of macro F's interval and the units a half-width of 0.01 needs): generated, never typed.
"""

import argparse
import json
import os
import sys

import numpy as np

from rsrl_jax.data import embeddings, synthetic
from rsrl_jax.experiments import study


def vectors(n: int, dim: int, seed: int, strength: float, label_noise: float):
    """(float32 [n, dim] vectors, int32 [n] scores 2..9): see the module's docstring."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 5))  # q, then four scene factors
    mapping = np.random.default_rng([seed, 1]).standard_normal((5, dim)) / np.sqrt(dim)
    mapping[0] *= strength / np.linalg.norm(mapping[0])  # q's direction, length `strength`
    mapping[1:] /= np.linalg.norm(mapping[1:], axis=1, keepdims=True)
    x = latent @ mapping + rng.standard_normal((n, dim)) / np.sqrt(dim)
    scores = synthetic.scores_by_rank(latent[:, 0] + label_noise * rng.standard_normal(n))
    return x.astype(np.float32), scores


def note(out: dict) -> str:
    """The docs' budget paragraph from a study's study.json `out`."""
    minutes = out["wall_s"] / 60
    levels = len(out["label_noise"])
    grid = f"{len(out['methods'])} methods × {len(out['seeds'])} seeds" + (
        f" × {levels} noise levels" if levels > 1 else ""
    )
    lines = [
        f"`{out['command']}`: {out['runs']} runs ({grid}), {out['folds']} folds each: "
        f"{len(out['seeds']) * out['folds']} paired units, in {minutes:.1f} min of wall time "
        f"on {out.get('cpus') or 'some'} CPU cores.",
        "",
        "| " + "noise | " * (levels > 1) + "method − plain | macro F [95 % interval] | n "
        f"| half-width (detectable) | units for ±{study.TARGET_HALF_WIDTH:g} |",
        "| " + "--- | " * (levels > 1) + "--- | --- | --- | --- | --- |",
    ]
    for key, cells in out["noise"].items():
        for method, cell in cells.items():
            if cell["diff"] is None:
                continue
            d = cell["diff"]["macro_f1"]
            half = "–" if d["half_width"] is None else f"±{d['half_width']:.4f}"
            need = "–" if d["units_needed"] is None else str(d["units_needed"])
            noise = f"{key} | " * (levels > 1)
            lines.append(
                f"| {noise}{method} | {study._diff(d)} | {d['n']} | {half} ({d['words']}) "
                f"| {need} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    v = sub.add_parser("vectors", help="write OUT/embeddings.npz")
    v.add_argument("--out", required=True)
    v.add_argument("--n", type=int, default=3000)
    v.add_argument("--dim", type=int, default=128)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--strength", type=float, default=1.0)
    v.add_argument("--label_noise", type=float, default=0.5)
    n = sub.add_parser("note", help="print the docs' budget paragraph from STUDY/study.json")
    n.add_argument("study_dir")
    args = parser.parse_args(argv)
    if args.what == "vectors":
        x, scores = vectors(args.n, args.dim, args.seed, args.strength, args.label_noise)
        print(embeddings.write(args.out, x, [f"v{i}" for i in range(len(x))], scores))
        return 0
    path = os.path.join(args.study_dir, "study.json")
    try:
        with open(path) as f:
            out = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: {path}: {e}; run the study first", file=sys.stderr)
        return 1
    if "wall_s" not in out:
        print(f"error: {path}: no budget recorded (a study from before it was)", file=sys.stderr)
        return 1
    sys.stdout.write(note(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
