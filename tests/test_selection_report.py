"""The report's Selection section, from hand-made metrics records."""

import numpy as np

from rsrl_jax.analysis import report_text, selection_report
from rsrl_jax.config import base_config
from rsrl_jax.metrics import classification, fold_stats

SCORES = (3, 4, 5, 6, 7)
D_COUNTS = (5, 40, 25, 20, 4)  # majority (3 largest): scores 4, 5, 6


def record(fold: int, round_: int, kept: tuple) -> dict:
    """A metrics record of a fold whose D has D_COUNTS photos; `kept` per score trained on."""
    d_labels = np.repeat(np.arange(len(SCORES)), D_COUNTS)
    rep = classification.classification_report(d_labels, d_labels, len(SCORES), class_names=SCORES)
    return {
        "fold": fold,
        "round": round_,
        "train_size": sum(kept),
        "class_counts": {str(s): n for s, n in zip(SCORES, kept, strict=True)},
        "train": rep,
        "train_kept": rep,
        "val": rep,
        "test": rep,
        "train_loss": 0.5,
        "epochs": 1,
        "steps": 1,
    }


def config_json(**rsrl) -> str:
    config = base_config()
    config.train.batch_size = 16
    config.rsrl.update(rsrl)
    return config.to_json()


RECORDS = [
    record(0, 1, D_COUNTS),
    record(0, 2, (5, 0, 0, 3, 4)),  # scores 4 and 5 emptied, 6 below a batch
    record(0, 3, (5, 30, 16, 20, 4)),  # a batch of each
]


def test_rows_count_kept_of_d_per_majority_class_and_flag_the_short_ones():
    rows = selection_report.selection_rows(RECORDS, num_majority=3, batch_size=16)
    assert rows == [
        {
            "fold": 0,
            "round": 2,
            "counts": [("4", 0, 40), ("5", 0, 25), ("6", 3, 20)],
            "short": ["4", "5", "6"],
            "train_size": 12,
            "d_size": 94,
        },
        {
            "fold": 0,
            "round": 3,
            "counts": [("4", 30, 40), ("5", 16, 25), ("6", 20, 20)],
            "short": [],
            "train_size": 75,
            "d_size": 94,
        },
    ]


def test_the_section_states_the_rule_round_2_the_warning_and_the_table():
    lines = selection_report.section(RECORDS, config_json())
    assert lines == [
        "## Selection",
        "",
        "A photo of the 3 largest classes of D is kept when its own-class sigmoid likelihood "
        ">= K=(0.99, 0.99, 0.99) (the paper's rule); the other classes are kept whole.",
        "",
        "Round 2 keeps 3 of 85 majority-class photos (4 %) and trains on 12 of 94 photos of D "
        "(13 %); the paper's round 2 trained on about 500 of 2480 photos (20 %).",
        "",
        "**Warning: 1 of 2 selections keep fewer than one batch (16) of a majority class, or "
        "none** (in bold below: fold 0 round 2); those rounds train on few or no photos of "
        "that class. To keep more: rsrl.min_keep_per_class=N (now 0) keeps at least the N most "
        "likely photos of each majority class; rsrl.drop_quantile=q (now 0), 0 < q < 1, drops "
        "only the photos below the q-quantile of their class's likelihoods over D (about a "
        "share q of each majority class) instead of comparing with K.",
        "",
        "| fold | round | score 4 kept / of | score 5 kept / of | score 6 kept / of | "
        "majority kept / of | training set / D |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| 0 | 2 | **0 / 40** | **0 / 25** | **3 / 20** | 3 / 85 | 12 / 94 |",
        "| 0 | 3 | 30 / 40 | 16 / 25 | 20 / 20 | 66 / 85 | 75 / 94 |",
    ]


def test_several_folds_average_round_2_and_other_rules_are_named():
    records = [*RECORDS, record(1, 1, D_COUNTS), record(1, 2, (5, 20, 16, 16, 4))]
    lines = selection_report.section(records, config_json(drop_quantile=0.5, min_keep_per_class=2))
    assert lines[2].endswith(
        "likelihood >= its class's 0.5-quantile over D (rsrl.drop_quantile=0.5), topped up to "
        "rsrl.min_keep_per_class=2; the other classes are kept whole."
    )
    # Round 2 keeps 3 and 52 of 85 majority photos: 55 of 170 (32 %), folds 4 % and 61 %;
    # it trains on 12 and 61 of 94.
    assert lines[4] == (
        "Over its 2 folds, round 2 keeps 55 of 170 majority-class photos (32 %; folds 4-61 %) "
        "and trains on 73 of 188 photos of D (39 %); the paper's round 2 trained on about 500 "
        "of 2480 photos (20 %)."
    )
    assert "| 1 | 2 | 20 / 40 | 16 / 25 | 16 / 20 | 52 / 85 | 61 / 94 |" in lines
    assert selection_report.section(records, config_json())[-4:] == lines[-4:]
    none = base_config()
    none.method.selection = "none"
    assert selection_report.section(records, none.to_json())[-1] == (
        "`method.selection='none'`: every round trains on all of D."
    )
    assert selection_report.section(RECORDS[:1], config_json())[-1] == (
        "Only round 1 ran, on all of D: no selection yet."
    )


def test_the_report_carries_the_selection_section():
    text = report_text.markdown(RECORDS, fold_stats.summarize(RECORDS), SCORES, config_json(), [])
    section = "\n".join(selection_report.section(RECORDS, config_json()))
    assert f"\n{section}\n" in text
    assert text.index("## Selection") < text.index("## Figures")


def test_a_run_whose_selection_empties_a_class_says_so_in_its_report(tiny_run):
    workdir, records, stderr = tiny_run
    text = (workdir / "report" / "report.md").read_text()
    config = (workdir / "config.json").read_text()
    section = "\n".join(selection_report.section(records, config))
    assert f"\n{section}\n" in text
    assert "fold 0 round 2: the selection keeps no photo of" in stderr  # the log says it too
    assert "**Warning: 1 of 1 selections keep fewer than one batch (16)" in section
    assert "**0 / " in section


def test_random_drop_names_its_rule_and_the_truth_adds_a_sentence_and_the_figure():
    config = base_config()
    config.train.batch_size = 16
    config.method.selection = "random_drop"
    lines = selection_report.section(RECORDS, config.to_json())
    assert lines[2] == (
        "The 3 largest classes of D keep as many photos of each majority class as RSRL's rule "
        "keeps (own-class sigmoid likelihood >= K=(0.99, 0.99, 0.99) (the paper's rule)), drawn "
        "at random within the class (method.selection='random_drop'); the other classes are "
        "kept whole."
    )
    assert "To keep more: rsrl.min_keep_per_class=N" in "\n".join(lines)
    assert not any("mislabelled" in line for line in lines)  # no truth in these records
    # Synthetic records carry what each selection removed: one sentence and the figure.
    share = {"kept_mislabelled_share": 0.1, "chance_mislabelled_share": 0.2}
    truth = [
        {**r, "selection": {"4": {"kept": 30, "dropped": 10, **share}}}
        for r in (RECORDS[0], RECORDS[2])
    ]
    truth[0]["selection"]["4"].update(kept=40, dropped=0, dropped_mislabelled_share=None)
    truth[1]["selection"]["4"]["dropped_mislabelled_share"] = 0.5
    lines = selection_report.section(truth, config_json())
    assert lines[-3:] == [
        "Where the truth is known (the noiseless rater's scores of the synthetic photos), 50 % "
        "of the majority-class photos the selections of round 3 drop are mislabelled, against "
        "10 % of those they keep; chance (a drop blind to the labels, as many photos from each "
        "class) is 20 %.",
        "",
        "![mislabelled share of dropped and kept](selection_mislabelled.png)",
    ]
