"""The macro F that defines each feature strength of data.name=synthetic_embeddings.

  python tools/synthetic_strengths.py [--examples=3100] [--seeds=0,1,2] [--sigmas=0.5,1,2,4]
      [--json_out=FILE]

Per strength (the named levels of `synthetic_embeddings.STRENGTHS`, and any `--sigmas`): a
multinomial logistic regression (scikit-learn, C = 1, standardised inputs) on the vectors of
a noiseless rater (data.label_noise = 0), stratified 5-fold per seed; prints the macro F over
the classes present (as every run's figure), mean ± std over seeds x folds.
"""

import argparse
import json
import sys
import time

import numpy as np

sys.path.insert(0, ".")

from rsrl_jax.data import synthetic_embeddings  # noqa: E402
from rsrl_jax.metrics import classification  # noqa: E402


def macro_f(sigma: str, examples: int, seed: int) -> list[float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, scores, _ = synthetic_embeddings.generate(examples, seed, 0.0, sigma)
    classes = np.unique(scores)
    y = np.searchsorted(classes, scores)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    out = []
    # the two top classes hold too few vectors for 5 stratified folds: sklearn warns, splits
    for train, test in folds.split(x, np.minimum(y, len(classes) - 3)):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        predicted = model.fit(x[train], y[train]).predict(x[test])
        out.append(
            classification.classification_report(y[test], predicted, len(classes))["macro_f1"]
        )
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=3100)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sigmas", default="")
    parser.add_argument("--json_out", default="", help="also write the figures to this JSON")
    args = parser.parse_args()
    command = " ".join(["python tools/synthetic_strengths.py", *sys.argv[1:]])
    out = {"command": command, "examples": args.examples, "seeds": args.seeds, "levels": {}}
    seeds = [int(s) for s in args.seeds.split(",")]
    levels = list(synthetic_embeddings.STRENGTHS) + [s for s in args.sigmas.split(",") if s]
    for level in levels:
        start = time.perf_counter()
        values = [f for seed in seeds for f in macro_f(level, args.examples, seed)]
        sigma = synthetic_embeddings.noise_std(level)
        print(
            f"{level:>8} (sigma {sigma:g}): macro F {np.mean(values):.3f} ± "
            f"{np.std(values, ddof=1):.3f} over {len(values)} folds "
            f"({time.perf_counter() - start:.1f} s)"
        )
        out["levels"][level] = {
            "sigma": sigma,
            "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)),
            "n": len(values),
        }
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
