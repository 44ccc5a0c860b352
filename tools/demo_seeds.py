"""The demo over seeds: what the shipped backbone adds, the ceilings, bfloat16 against float32.

  python tools/demo_seeds.py backbone   # 9 demo runs and the ceilings (about 15 min quiet)
  python tools/demo_seeds.py bfloat16   # 10 demo runs from scratch, 50 + 10 epochs (longer)

Runs `python -m rsrl_jax.main --config=configs/demo.py --config.seed=S` with each row's
overrides into runs/demo_seeds/<table>/<row>/seed_S (a finished run is reused), then writes
runs/demo_seeds/<table>.json from the runs' own records (`analysis.ceilings.run_figures`,
and for `backbone` the ceilings on the same seeds' splits); `python tools/docs_figures.py`
renders it into docs/generated/.
"""

import json
import os
import subprocess
import sys

DEMO = "python -m rsrl_jax.main --config=configs/demo.py"
OUT = "runs/demo_seeds"
EARLIER = (
    "--config.model.pretrained='' --config.train.learning_rate=1e-3 "
    "--config.model.dropout_rate=0 --config.train.head_lr_multiplier=1 "
    "--config.train.first_round_epochs=50 --config.train.epochs_per_round=10"
)
TABLES = {
    "backbone": {
        "seeds": (0, 1, 2),
        "rows": {
            "the shipped backbone (the demo as it is)": "",
            "scratch, the same schedule": "--config.model.pretrained=''",
            "scratch, the earlier demo's schedule (no dropout, head 1x, 50 + 10 epochs)": EARLIER,
        },
    },
    "bfloat16": {
        "seeds": (0, 1, 2, 3, 4),
        "rows": {
            "float32": EARLIER,
            "bfloat16": EARLIER + " --config.model.compute_dtype=bfloat16",
        },
    },
}


def workdir(table: str, row: int, seed: int) -> str:
    return os.path.join(OUT, table, f"row{row}", f"seed_{seed}")


def run(table: str, row: int, overrides: str, seed: int) -> str:
    w = workdir(table, row, seed)
    if not os.path.exists(os.path.join(w, "summary.json")):
        argv = [*DEMO.split()[1:], f"--config.seed={seed}", f"--workdir={w}"]
        argv += [o.replace("''", "") for o in overrides.split()]
        print("running:", " ".join(argv), flush=True)
        subprocess.run([sys.executable, *argv], check=True)
    return w


def round2_kept(w: str, num_majority: int = 3) -> dict:
    """Round 2's kept majority-class photos of D and its training set, of one run."""
    from rsrl_jax.metrics import fold_stats

    with open(os.path.join(w, "metrics.jsonl")) as f:
        rs = fold_stats.by_fold([json.loads(line) for line in f if line.strip()])[0]
    second = next(r for r in rs if r["round"] == 2)
    majority = fold_stats.majority_scores(rs[0], num_majority)
    return {
        "kept": sum(second["class_counts"][m] for m in majority),
        "of": sum(rs[0]["train"]["per_class"][m]["support"] for m in majority),
        "train_size": second["train_size"],
        "size": rs[0]["train_size"],
    }


def figures(table: str) -> dict:
    from rsrl_jax.analysis import ceilings

    spec = TABLES[table]
    out = {"command": f"python tools/demo_seeds.py {table}", "seeds": spec["seeds"], "rows": {}}
    for i, (name, overrides) in enumerate(spec["rows"].items()):
        runs = [run(table, i, overrides, s) for s in spec["seeds"]]
        row = {"overrides": overrides, **ceilings.run_figures(*runs)}
        row["round2"] = [round2_kept(w) for w in runs]
        out["rows"][name] = row
    if table == "backbone":
        from rsrl_jax.configs import demo

        folds = []
        for seed in spec["seeds"]:
            config = demo.get_config()
            config.seed = seed
            folds += ceilings.ceilings(config)
        out["ceilings"] = {k: [f[k] for f in folds] for k in ("latent_quality", "scene_factors")}
    return out


def _pm(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def backbone_table(out: dict) -> str:
    import numpy as np

    lines = [
        f"Test figures of the demo's single split, mean ± std over seeds "
        f"{', '.join(map(str, out['seeds']))}:",
        "",
        "| round 1 starts from | round 1: train accuracy on D | round 1: test macro F "
        "| chosen round: test macro F |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in out["rows"].items():
        lines.append(
            f"| {name} | {_pm(row['round1_train_accuracy'])} | "
            f"{_pm(row['round1_test_macro_f1'])} | {_pm(row['chosen_test_macro_f1'])} |"
        )
    for key, name in (
        ("scene_factors", "gradient-boosted trees on the 7 exact scene factors"),
        ("latent_quality", "thresholds on the noiseless latent quality"),
    ):
        v = np.asarray(out["ceilings"][key])
        lines.append(f"| ceiling: {name} | | {v.mean():.3f} ± {v.std():.3f} | |")
    shipped = next(iter(out["rows"].values()))
    missed = shipped["against_test_best"]
    lines += [
        "",
        f"With the shipped backbone, validation chose a round other than the test-best one in "
        f"{missed['not_test_best']} of {len(missed['folds'])} seeds (chosen rounds "
        f"{', '.join(map(str, shipped['chosen_rounds']))}).",
    ]
    return "\n".join(lines) + "\n"


def selection_regime(out: dict) -> str:
    rows = list(out["rows"].values())
    shipped, scratch = rows[0]["round2"], rows[1]["round2"]
    seeds = ", ".join(map(str, out["seeds"]))
    kept = ", ".join(f"{r['kept']:,}" for r in shipped)
    shares = ", ".join(f"{100 * r['kept'] / r['of']:.0f}" for r in shipped)
    trains = ", ".join(f"{r['train_size']:,}" for r in shipped)
    return (
        f"Over seeds {seeds}: with the shipped backbone, round 2 keeps {kept} of the "
        f"{shipped[0]['of']:,} majority-class photos of D ({shares} %) and trains on {trains} "
        f"of about {shipped[0]['size']:,}. From scratch (`pretrained=''`, the same schedule) "
        f"K = 0.99 keeps {min(r['kept'] for r in scratch)} to {max(r['kept'] for r in scratch)} "
        f"of them (round 2 trains on {min(r['train_size'] for r in scratch):,} to "
        f"{max(r['train_size'] for r in scratch):,} photos).\n"
    )


def bfloat16_table(out: dict) -> str:
    lines = [
        f"Test figures, mean ± std over seeds {', '.join(map(str, out['seeds']))}:",
        "",
        "| demo from scratch | round 1 macro F | chosen round's macro F | chosen rounds |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in out["rows"].items():
        lines.append(
            f"| {name} | {_pm(row['round1_test_macro_f1'])} | "
            f"{_pm(row['chosen_test_macro_f1'])} | {', '.join(map(str, row['chosen_rounds']))} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in TABLES:
        print(f"usage: python tools/demo_seeds.py {{{','.join(TABLES)}}}", file=sys.stderr)
        return 2
    out = figures(argv[0])
    path = os.path.join(OUT, f"{argv[0]}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv[1:]))
