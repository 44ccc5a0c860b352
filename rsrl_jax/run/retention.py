"""Which round checkpoints a run keeps: `checkpoint.keep`.

'all' (the default) keeps every round of every fold. 'needed' keeps, per fold, what resume,
predict and highlight can still use: the round chosen on validation so far (the best
validation macro F, earliest on ties: `fold_stats.choose_round`, the rule of summary.json),
the pair highlight compares for it (`round_pairs.default_pair`: I and I - 1, or rounds 2
and 1 for a chosen round 1) and the last round (resume continues from it): at most 3.

A round dropped once is never needed later. After round n the final choice is either
today's best b (then its pair is kept) or a later round m > n, which beats b and so every
earlier round; m's partner m - 1 is round n (the last, kept) or later. Predict and
highlight of another round, or `highlight --k` > 1, then say the round was not kept.

Orbax's own retention (CheckpointManagerOptions.preservation_policy) could express the rule
but applies it inside each save, fold by fold: with `protocol.parallel_folds` a fold saved
ahead of the others would drop the round the group resumes from. So a group drops rounds
once every fold of it has saved the round (and when it starts, which finishes a deletion a
kill interrupted, or a switch from 'all'), through Orbax's delete
(`checkpoints.drop_rounds`: an atomic rename out of the round folders, then removal).
"""

from absl import logging

from rsrl_jax.metrics.fold_stats import choose_round
from rsrl_jax.run import checkpoints
from rsrl_jax.run.round_pairs import DEFAULT_K, default_pair


def needed_rounds(records: list[dict], last: int, k: int = DEFAULT_K) -> set[int]:
    """The rounds 'needed' keeps, given a fold's `records` (metrics lines of its finished
    rounds) and `last`, the last round its group finished: the chosen round so far, its
    highlight pair (`default_pair` with `k`) and every round from `last` on."""
    kept = {r["round"] for r in records if r["round"] >= last}
    if records:
        chosen = choose_round(records)["round"]
        kept |= {chosen, *default_pair(chosen, k)}
    return kept | {last}


def prune(keep: str, fold, last: int) -> list[int]:
    """Drops the checkpoints of `fold` (a `rounds.Lane`) that `keep` no longer needs once
    its group finished round `last`; returns the rounds dropped (none for 'all')."""
    if keep != "needed":
        return []
    saved = sorted(fold.mngr.all_steps())
    needed = needed_rounds(fold.records, last)
    drop = [r for r in saved if r not in needed]
    checkpoints.drop_rounds(fold.mngr, drop)
    if drop:
        logging.info(
            "fold %d: checkpoint.keep='needed' dropped round(s) %s, keeps %s",
            fold.index,
            drop,
            [r for r in saved if r in needed],
        )
    return drop
