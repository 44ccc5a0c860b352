import jax
import numpy as np

from rsrl_jax.config import base_config
from rsrl_jax.method import keep_rules, selection
from rsrl_jax.method.keep_rules import keep_mask, quantile_keep
from rsrl_jax.method.selection import majority_classes


def test_majority_ranked_by_count_ties_to_lower_index():
    labels = np.array([2] * 5 + [0] * 3 + [1] * 3 + [3] * 7 + [4])
    np.testing.assert_array_equal(majority_classes(labels, 5, 3), [3, 2, 0])


def test_minority_always_kept_whatever_the_likelihood():
    lik = np.zeros((3, 4), np.float32)  # nobody is confident about anything
    labels = np.array([1, 2, 3])
    keep = keep_mask(lik, labels, np.array([0]), np.array([0.99]))
    assert np.asarray(keep).tolist() == [True, True, True]


def test_thresholds_apply_by_rank():
    # majority ranks: class 2 is s_max1 (K1=0.9), class 0 is s_max2 (K2=0.5).
    majority, thresholds = np.array([2, 0]), np.array([0.9, 0.5])
    lik = np.array(
        [
            [0.0, 0.0, 0.8, 0.0],  # class 2, 0.8 < K1 -> drop
            [0.6, 0.0, 0.0, 0.0],  # class 0, 0.6 >= K2 -> keep
            [0.0, 0.0, 0.95, 0.0],  # class 2, 0.95 >= K1 -> keep
            [0.4, 0.0, 0.0, 0.0],  # class 0, 0.4 < K2 -> drop
            [0.0, 0.0, 0.9, 0.0],  # class 2, exactly K1 -> keep (>=)
            [0.99, 0.99, 0.99, 0.0],  # class 3, minority -> keep
        ],
        np.float32,
    )
    labels = np.array([2, 0, 2, 0, 2, 3])
    keep = keep_mask(lik, labels, majority, thresholds)
    assert np.asarray(keep).tolist() == [False, True, True, False, True, True]


def test_only_own_class_likelihood_counts():
    # High likelihood for another class does not save a majority sample.
    lik = np.array([[0.1, 0.999], [0.999, 0.1]], np.float32)
    keep = keep_mask(lik, np.array([0, 0]), np.array([0]), np.array([0.99]))
    assert np.asarray(keep).tolist() == [False, True]


def test_dropped_sample_comes_back_next_round():
    labels = np.array([0, 0, 1])
    majority, k = np.array([0]), np.array([0.99])
    round2 = keep_mask(np.array([[0.5, 0.1], [0.995, 0], [0, 0]]), labels, majority, k)
    round3 = keep_mask(np.array([[0.999, 0.1], [0.2, 0], [0, 0]]), labels, majority, k)
    assert np.asarray(round2).tolist() == [False, True, True]
    assert np.asarray(round3).tolist() == [True, False, True]  # sample 0 is back


def test_jittable_and_matches_eager():
    rng = np.random.default_rng(0)
    lik = rng.uniform(size=(50, 8)).astype(np.float32)
    labels = rng.integers(0, 8, 50)
    majority, k = np.array([4, 3, 5]), np.array([0.7, 0.5, 0.3], np.float32)
    eager = np.asarray(keep_mask(lik, labels, majority, k))
    jitted = np.asarray(jax.jit(keep_mask)(lik, labels, majority, k))
    np.testing.assert_array_equal(eager, jitted)
    own = lik[np.arange(50), labels]
    expected = np.ones(50, bool)
    for c, kk in zip(majority, k, strict=True):
        expected[labels == c] = own[labels == c] >= kk
    np.testing.assert_array_equal(eager, expected)


def test_drop_quantile_keeps_what_a_hand_computation_keeps():
    # numpy's linear quantile: position q * (n - 1) in the class's sorted likelihoods.
    own = np.array([0.1, 0.4, 0.2, 0.9, 0.3, 0.5, 0.6, 0.7, 0.8, 0.0])
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 2])
    # q = 0.5: class 0 sorted 0.1 0.2 0.3 0.4 0.9, position 2 -> t = 0.3 (kept: >= t);
    # class 1 sorted 0.5 0.6 0.7 0.8, position 1.5 -> t = 0.65; class 2 is a minority.
    keep = quantile_keep(own, labels, np.array([0, 1]), 0.5)
    assert keep.tolist() == [False, True, False, True, True, False, False, True, True, True]
    # q = 0.25: class 0 position 1 -> t = 0.2 drops one; class 1 position 0.75 -> t = 0.575.
    keep = quantile_keep(own, labels, np.array([0, 1]), 0.25)
    assert keep.tolist() == [False, True, True, True, True, False, True, True, True, True]


def test_drop_quantile_keeps_ties_at_the_threshold_and_never_empties_a_class():
    # sorted 0.2 0.7 0.7 0.7, q = 0.5 -> position 1.5 -> t = 0.7: the three ties stay, so the
    # class drops 1 sample, not q * n = 2.
    labels = np.zeros(4, int)
    keep = quantile_keep(np.array([0.7, 0.2, 0.7, 0.7]), labels, np.array([0]), 0.5)
    assert keep.tolist() == [True, False, True, True]
    # Every likelihood equal (a saturated sigmoid): the threshold is that value, all kept.
    assert quantile_keep(np.ones(4), labels, np.array([0]), 0.9).all()
    # A high q keeps at least the most likely sample.
    assert quantile_keep(np.array([0.1, 0.3, 0.2]), np.zeros(3, int), [0], 0.99).tolist() == [
        False,
        True,
        False,
    ]


def test_next_training_set_with_drop_quantile_and_min_keep():
    config = base_config()
    config.rsrl.drop_quantile = 0.5
    # Class 0 (majority): float32 sigmoid saturates at 1.0 for logits 20, 30, 40, so four
    # logits tie three ways at the threshold; class 1 (majority) distinct; class 2 minority.
    logits = np.full((9, 3), -5.0, np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    logits[np.arange(9), labels] = [20, 30, 40, 1, -3, -1, 1, 3, -9]
    majority, k = np.array([0, 1]), np.array([0.99, 0.99], np.float32)
    args = (logits, labels, 3, (4, 5, 6), majority, k, 0, 2)
    keep, warnings = selection.next_training_set(config, *args)
    assert keep.tolist() == [True, True, True, False, False, False, True, True, True]
    assert warnings == [
        selection.selection_warning(0, 2, [(4, 3, 4), (5, 2, 4)], 32, 6, 9, config.rsrl)
    ]
    # min_keep_per_class is a floor after the quantile rule: the most likely are added back.
    config.rsrl.min_keep_per_class = 3
    keep, _ = selection.next_training_set(config, *args)
    assert keep.tolist() == [True, True, True, False, False, True, True, True, True]
    # drop_quantile = 0 is the paper's K = 0.99: only the saturated class-0 samples pass.
    config.rsrl.drop_quantile, config.rsrl.min_keep_per_class = 0.0, 0
    keep, _ = selection.next_training_set(config, *args)
    assert keep.tolist() == [True, True, True, False, False, False, False, False, True]


def test_the_warning_names_the_short_classes_their_counts_and_the_remedies():
    rsrl = base_config().rsrl
    counts = [(5, 0, 25), (4, 0, 20), (6, 3, 18)]
    assert selection.selection_warning(1, 2, counts, 16, 19, 79, rsrl) == (
        "fold 1 round 2: the selection keeps no photo of scores 5, 4 and fewer than one batch "
        "(16) of score 6 (kept/of per majority score: 5: 0/25, 4: 0/20, 6: 3/18; rule: "
        "own-class sigmoid likelihood >= K=(0.99, 0.99, 0.99) (the paper's rule)); round 2 "
        "trains on 19 of 79 photos of D. To keep more: rsrl.min_keep_per_class=N (now 0) keeps at "
        "least the N most likely photos of each majority class; rsrl.drop_quantile=q (now 0), "
        "0 < q < 1, drops only the photos below the q-quantile of their class's likelihoods "
        "over D (about a share q of each majority class) instead of comparing with K"
    )
    rsrl.drop_quantile, rsrl.min_keep_per_class = 0.3, 2
    text = selection.selection_warning(0, 3, [(5, 2, 25), (4, 14, 14)], 16, 30, 60, rsrl)
    assert text.startswith("fold 0 round 3: the selection keeps fewer than one batch (16) of ")
    assert "score 5 (kept/of per majority score: 5: 2/25, 4: 14/14; " in text
    assert "rule: own-class sigmoid likelihood >= its class's 0.3-quantile over D " in text
    assert "(rsrl.drop_quantile=0.3), topped up to rsrl.min_keep_per_class=2)" in text
    # The quantile rule is on already: the advice is a smaller q, not the option again.
    assert text.endswith(
        "To keep more: rsrl.min_keep_per_class=N (now 2) keeps at least the N most likely "
        "photos of each majority class; a smaller rsrl.drop_quantile (now 0.3) drops a smaller "
        "share of each majority class"
    )
    # A batch of each, or all of a class smaller than a batch: no warning.
    assert selection.selection_warning(0, 2, [(5, 16, 25), (4, 9, 9)], 16, 40, 60, rsrl) is None


def _random_drop_case():
    """30 samples: classes 0 (12) and 1 (9) are the majority, 2 (5) and 3 (4) minority; the
    own-class logits rise with the index inside each class, so RSRL keeps each class's top."""
    labels = np.repeat([0, 1, 2, 3], [12, 9, 5, 4])
    logits = np.full((30, 4), -4.0, np.float32)
    rank = np.concatenate([np.arange(n) for n in (12, 9, 5, 4)])
    logits[np.arange(30), labels] = -3.0 + 0.5 * rank  # sigmoid >= 0.6 from rank 7 (logit 0.5)
    config = base_config()
    config.rsrl.thresholds = (0.6, 0.6, 0.6)
    return config, logits, labels, np.array([0, 1]), np.array([0.6, 0.6], np.float32)


def _select(config, logits, labels, majority, k, selection_name, fold=0, round_=2):
    config.method.selection = selection_name
    keep, _ = selection.next_training_set(
        config, logits, labels, 4, (3, 4, 5, 6), majority, k, fold, round_
    )
    return keep


def test_random_drop_keeps_as_many_as_rsrl_per_class_but_others():
    config, logits, labels, majority, k = _random_drop_case()
    rsrl = _select(config, logits, labels, majority, k, "rsrl")
    assert [int(rsrl[labels == c].sum()) for c in range(4)] == [5, 2, 5, 4]  # ranks >= 7
    for quantile, floor in ((0.0, 0), (0.0, 4), (0.5, 0)):
        config.rsrl.drop_quantile, config.rsrl.min_keep_per_class = quantile, floor
        rsrl = _select(config, logits, labels, majority, k, "rsrl")
        random = _select(config, logits, labels, majority, k, "random_drop")
        for c in range(4):
            assert random[labels == c].sum() == rsrl[labels == c].sum()
        assert random[labels >= 2].all()  # minority classes kept whole
        assert not np.array_equal(random, rsrl)  # the same sizes, other samples


def test_random_drop_is_seeded_by_seed_fold_and_round():
    config, logits, labels, majority, k = _random_drop_case()

    def draw(**kw):
        return _select(config, logits, labels, majority, k, "random_drop", **kw)

    first = draw(fold=0, round_=2)
    np.testing.assert_array_equal(first, draw(fold=0, round_=2))
    assert not np.array_equal(first, draw(fold=0, round_=3))
    assert not np.array_equal(first, draw(fold=1, round_=2))
    config.seed += 1
    assert not np.array_equal(first, draw(fold=0, round_=2))
    # It is the documented generator's draw (no state shared with anything else).
    rule = keep_rules.rsrl_keep(config.rsrl, logits, labels, majority, k)
    expected = keep_rules.random_keep(rule, labels, majority, keep_rules.random_drop_rng(1, 0, 2))
    np.testing.assert_array_equal(draw(fold=0, round_=2), expected)


def test_random_keep_takes_every_count_from_zero_to_whole():
    labels = np.array([0] * 6 + [1] * 3)
    rng = np.random.default_rng(0)
    for n in range(7):
        rule = np.array([True] * n + [False] * (6 - n) + [False] * 3)
        keep = keep_rules.random_keep(rule, labels, [0], rng)
        assert keep[:6].sum() == n and keep[6:].all()
