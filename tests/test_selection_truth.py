"""What a selection removes where the truth is known: mislabelled shares by hand."""

import numpy as np
import pytest
from PIL import Image

from rsrl_jax.analysis import selection_truth

# 12 photos of D: classes 0 (score 3, 4 photos), 1 (score 4, 6 photos), 2 (score 5, 2 photos).
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2])
TRUE = np.array([0, 1, 0, 1, 1, 1, 0, 2, 1, 1, 2, 1])  # wrong: 1, 3, 6, 7, 11
KEEP = np.array([1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1], bool)
MAJORITY = np.array([1, 0])  # score 4 the largest, then score 3; score 5 a minority
SCORES = (3, 4, 5)


def test_shares_of_kept_dropped_and_the_class_by_hand():
    got = selection_truth.selection_record(KEEP, LABELS, TRUE, MAJORITY, SCORES)
    assert list(got) == ["4", "3"]  # majority classes only, largest first
    # score 4 (photos 4-9): kept 4, 5, 8, 9 (none wrong); dropped 6, 7 (both wrong).
    assert got["4"] == {
        "kept": 4,
        "dropped": 2,
        "kept_mislabelled_share": 0.0,
        "dropped_mislabelled_share": 1.0,
        "chance_mislabelled_share": pytest.approx(2 / 6),
    }
    # score 3 (photos 0-3): kept 0, 3 (3 wrong); dropped 1, 2 (1 wrong); 2 of 4 wrong in D.
    assert got["3"] == {
        "kept": 2,
        "dropped": 2,
        "kept_mislabelled_share": 0.5,
        "dropped_mislabelled_share": 0.5,
        "chance_mislabelled_share": 0.5,
    }
    # Round 1 keeps everything: no dropped share.
    whole = selection_truth.selection_record(np.ones(12, bool), LABELS, TRUE, MAJORITY, SCORES)
    assert whole["4"]["dropped"] == 0 and whole["4"]["dropped_mislabelled_share"] is None
    assert whole["4"]["kept_mislabelled_share"] == whole["4"]["chance_mislabelled_share"]


def _records():
    def rec(round_, keep):
        selected = selection_truth.selection_record(keep, LABELS, TRUE, MAJORITY, SCORES)
        return {"fold": 0, "round": round_, "selection": selected}

    return [rec(1, np.ones(12, bool)), rec(2, KEEP)]


def test_pooled_shares_sentence_and_figure(tmp_path):
    records = _records()
    rows = selection_truth.truth_rows(records)
    assert [(r["round"], r["score"]) for r in rows] == [(1, "4"), (1, "3"), (2, "4"), (2, "3")]
    round2 = [r for r in rows if r["round"] == 2]
    # dropped: 2 + 1 wrong of 2 + 2; kept: 0 + 1 of 4 + 2; chance: a blind drop of 2 photos
    # of score 4 (2 of its 6 wrong) and 2 of score 3 (2 of 4 wrong): (2 * 2/6 + 2 * 2/4) / 4.
    assert selection_truth.pooled(round2) == pytest.approx(
        {"dropped": 3 / 4, "kept": 1 / 6, "chance": 5 / 12}
    )
    # Nothing dropped (round 1): chance is the classes' share in D, 4 of 10.
    round1 = [r for r in rows if r["round"] == 1]
    assert selection_truth.pooled(round1) == pytest.approx(
        {"dropped": None, "kept": 4 / 10, "chance": 4 / 10}
    )
    assert selection_truth.sentence(records) == (
        "Where the truth is known (the noiseless rater's scores of the synthetic photos), 75 % "
        "of the majority-class photos the selections of round 2 drop are mislabelled, against "
        "17 % of those they keep; chance (a drop blind to the labels, as many photos from each "
        "class) is 42 %."
    )
    path = tmp_path / selection_truth.FIGURE
    assert selection_truth.plot(records, str(path))
    with Image.open(path) as png:
        assert png.size[0] > 500
    # No truth (real photos), or round 1 only: nothing to say, nothing drawn.
    bare = [{k: v for k, v in r.items() if k != "selection"} for r in records]
    for without in (bare, records[:1]):
        assert selection_truth.sentence(without) is None
        assert not selection_truth.plot(without, str(tmp_path / "none.png"))
    assert not (tmp_path / "none.png").exists()
