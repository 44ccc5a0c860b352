"""study --sweep (a config field as an axis, the kept shares) and the closing advice."""

import json

import pytest

from rsrl_jax import errors
from rsrl_jax.analysis import study_advice
from rsrl_jax.config import base_config
from rsrl_jax.experiments import study, study_sweep


def test_sweep_parsed_by_the_field_type_and_refused_in_one_line():
    config = base_config()
    assert study_sweep.parse("rsrl.thresholds=0.9,(0.8,0.7,0.6)", config) == (
        "rsrl.thresholds",
        ["0.9", "(0.8,0.7,0.6)"],
    )
    assert study_sweep.parse_value(config, "rsrl.thresholds", "0.9") == (0.9, 0.9, 0.9)
    assert study_sweep.parse_value(config, "train.first_round_epochs", "5") == 5
    cells = study_sweep.cells(["plain", "rsrl"], ("rsrl.drop_quantile", ["0.3", "0.5"]))
    assert cells == ["plain", "rsrl@rsrl.drop_quantile=0.3", "rsrl@rsrl.drop_quantile=0.5"]
    swept = study_sweep.apply(config.copy_and_resolve_references(), cells[2])
    assert swept.rsrl.drop_quantile == 0.5 and study_sweep.base(cells[2]) == "rsrl"
    for text, message in (
        ("rsrl.kk=0.9", "no field 'rsrl.kk'"),
        ("rsrl.drop_quantile", "FIELD=V1,V2"),
        ("train.first_round_epochs=five", "is not an integer"),
        ("rsrl.drop_quantile=0.3,0.3", "given twice"),
    ):
        with pytest.raises(errors.ConfigError, match=message):
            study_sweep.parse(text, config)


def test_a_sweep_runs_a_method_once_where_it_never_reads_the_field():
    config = base_config()
    methods = ["plain", "rsrl", "confident_learning", "random_drop", "random_drop_cl", "focal"]
    k = ("rsrl.thresholds", ["0.9", "0.99"])
    assert study_sweep.cells(methods, k, "plain", config) == [
        "plain",
        "rsrl@rsrl.thresholds=0.9",
        "rsrl@rsrl.thresholds=0.99",
        "confident_learning",  # never reads K: once, not one identical cell per K
        "random_drop@rsrl.thresholds=0.9",  # draws at RSRL's counts: K matters
        "random_drop@rsrl.thresholds=0.99",
        "random_drop_cl",
        "focal",
    ]
    cl = study_sweep.cells(methods, ("method.cl_epochs", ["1", "3"]), "plain", config)
    assert [m for m in cl if "@" in m] == [
        f"{m}@method.cl_epochs={v}" for m in ("confident_learning", "random_drop_cl") for v in "13"
    ]
    gamma = study_sweep.cells(
        ["plain", "focal", "rsrl+focal", "rsrl"], ("method.focal_gamma", ["1"])
    )
    assert gamma == [
        "plain",
        "focal@method.focal_gamma=1",
        "rsrl+focal@method.focal_gamma=1",
        "rsrl",
    ]
    epochs = study_sweep.cells(methods, ("train.first_round_epochs", ["1"]), "plain", config)
    assert len(epochs) == len(methods) and all("@" in m for m in epochs[1:])  # read by all
    with pytest.raises(errors.ConfigError, match="none of --methods=plain,focal reads rsrl.thr"):
        study_sweep.cells(["plain", "focal"], k, "plain", config)
    out = {
        "sweep": {"field": k[0], "values": k[1]},
        "methods": dict.fromkeys(study_sweep.cells(methods, k, "plain", config)),
        "noise": {"0.5": {"rsrl@rsrl.thresholds=0.9": {}, "confident_learning": {}}},
    }
    said = study_sweep.markdown(out, "0.5")[1]
    assert said == (
        "The sweep of `rsrl.thresholds` applies to the methods that read it: rsrl; "
        "confident_learning, random_drop_cl, focal never read it and ran once; plain keeps "
        "the config's value (the reference)."
    )


def record(fold, round_, kept, supports):
    """A metrics record with what `kept_shares` reads: D's supports and the training set."""
    per_class = {s: {"support": n} for s, n in supports.items()}
    return {
        "fold": fold,
        "round": round_,
        "train": {"per_class": per_class},
        "class_counts": kept,
        "train_size": sum(kept.values()),
    }


def test_kept_shares_by_hand():
    supports = {"3": 30, "4": 40, "5": 20, "6": 5}
    whole = dict(supports)
    records = {
        0: [
            record(0, 1, whole, supports),
            record(0, 2, {"3": 15, "4": 10, "5": 20, "6": 5}, supports),
            record(0, 3, {"3": 30, "4": 20, "5": 10, "6": 5}, supports),
        ],
        1: [
            record(0, 1, whole, supports),
            record(0, 2, {"3": 6, "4": 30, "5": 0, "6": 5}, supports),
        ],
    }
    shares = study_sweep.kept_shares(records, num_majority=3)
    # round 2: (15 + 6) / 60, (10 + 30) / 80, (20 + 0) / 40; score 6 is a minority class
    assert shares["round2"] == pytest.approx({"3": 21 / 60, "4": 40 / 80, "5": 20 / 40})
    # rounds >= 2: seed 0's rounds 2 and 3 and seed 1's round 2
    assert shares["later"] == pytest.approx({"3": 51 / 90, "4": 60 / 120, "5": 30 / 60})
    assert study_sweep.kept_shares({0: records[0][:1]}, 3) == {}


def diff(values):
    interval = study.paired_interval(values)
    return {"macro_f1": {**interval, **study.power(interval, "m", per_seed=5)}}


def cell(val, differences=None):
    units = [{"seed": 0, "fold": i, "val_macro_f1": val} for i in range(10)]
    return {"units": units, "diff": None if differences is None else diff(differences)}


def test_advice_recommends_only_what_the_intervals_support():
    better = [0.03 + 0.001 * (i % 3) for i in range(10)]  # clearly above 0
    unclear = [0.02 * (-1) ** i for i in range(10)]  # centred on 0
    use = study_advice.advise(
        {"plain": cell(0.40), "rsrl": cell(0.45, better), "focal": cell(0.41, unclear)}, seeds=2
    )
    assert use["verdict"] == "use" and use["method"] == "rsrl"
    assert "Use **rsrl**" in use["words"] and "+0.031 [" in use["words"]
    none = study_advice.advise({"plain": cell(0.40), "rsrl": cell(0.45, unclear)}, seeds=2)
    assert none["verdict"] == "no_difference" and "Use" not in none["words"]
    assert "No method differs detectably from `plain` at this budget" in none["words"]
    needed = diff(unclear)["macro_f1"]["seeds_needed"]
    assert f"{needed - 2} more seeds ({needed} in all)" in none["words"]
    # higher on test but not the validation's choice: named, never recommended
    keep = study_advice.advise(
        {"plain": cell(0.40), "rsrl": cell(0.35, better), "focal": cell(0.45, unclear)}, seeds=2
    )
    assert keep["verdict"] == "keep_reference" and "Use" not in keep["words"]
    assert "not chosen on validation" in keep["words"] and "rsrl +0.031" in keep["words"]


def test_a_tiny_sweep_study_shows_the_kept_shares_of_its_runs(tmp_path):
    from configs import synthetic_embeddings

    config = synthetic_embeddings.get_config()
    config.data.num_examples = 120
    config.rsrl.rounds = 2
    config.train.first_round_epochs = 2
    config.train.epochs_per_round = 1
    config.model.hidden_widths = (16,)
    config.train.batch_size = 16
    config.train.eval_batch_size = 64
    config.log.progress = False
    out = study.study(
        config,
        str(tmp_path),
        ("plain", "rsrl"),
        seeds=(0,),
        noise=(0.5,),
        folds=2,
        sweep="rsrl.drop_quantile=0.3,0.6",
    )
    cells = out["noise"]["0.5"]
    assert list(cells) == ["plain", "rsrl@rsrl.drop_quantile=0.3", "rsrl@rsrl.drop_quantile=0.6"]
    for name in list(cells)[1:]:
        run = tmp_path / "noise_0.5" / "seed_0" / name
        assert json.loads((run / "config.json").read_text())["rsrl"]["drop_quantile"] == float(
            name.rsplit("=", 1)[1]
        )
        kept, of = {}, {}
        for line in (run / "metrics.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["round"] != 2:
                continue
            per_class = r["train"]["per_class"]
            for s in sorted(per_class, key=lambda s: -per_class[s]["support"])[:3]:
                kept[s] = kept.get(s, 0) + r["class_counts"][s]
                of[s] = of.get(s, 0) + per_class[s]["support"]
        assert cells[name]["kept"]["round2"] == pytest.approx({s: kept[s] / of[s] for s in of})
        assert cells[name]["selection"]["dropped"] is not None  # the known rater's truth
    low, high = (cells[n]["kept"]["round2"] for n in list(cells)[1:])
    assert all(low[s] > high[s] for s in low)  # dropping 30 % keeps more than dropping 60 %
    table = (tmp_path / "study.md").read_text()
    assert "Kept share per majority class against `rsrl.drop_quantile`" in table
    assert "## What the evidence supports" in table and out["advice"]["0.5"]["words"] in table
