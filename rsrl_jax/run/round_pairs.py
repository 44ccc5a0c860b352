"""Which two saved rounds of a finished run to compare: net_I and net_{I-k} (paper section IV).

The highlight maps (`analysis.highlight`) and their evaluation (`analysis.highlight_eval`)
compare the network of round I with the one of round I - k; this is the one rule that picks
them from what the workdir holds.
"""

from absl import logging

from rsrl_jax import errors
from rsrl_jax.data import inputs
from rsrl_jax.run import checkpoints


def pair_rounds(workdir: str, fold: int, round_: int | None = None, k: int = 1):
    """(I, I - k): the rounds to compare; I defaults to the round chosen on validation.

    A default I too early for net_{I-k} falls back to round 1 + k (logged); an explicit one
    must leave I - k >= 1. Both rounds must have a checkpoint. A k or round that can never
    work is an errors.ConfigError; what this run lacks (a fold, a round, a network of photos:
    a run on embeddings has no conv1), an errors.DataError.
    """
    if k < 1:
        raise errors.ConfigError(
            f"k={k}: must be >= 1 (net_I is compared with an earlier net_(I-k))"
        )
    saved = checkpoints.saved_rounds(workdir, fold)
    why_not = inputs.no_highlights(checkpoints.read_json(workdir, "config.json"))
    if why_not:
        raise errors.DataError(f"{workdir}: no highlight regions: {why_not}")
    if round_ is None:
        chosen = checkpoints.chosen_round(workdir, fold)
        round_ = chosen
        if chosen - k < 1:
            round_ = 1 + k
            if round_ not in saved:
                raise errors.DataError(
                    f"fold {fold}: the chosen round {chosen} has no round {chosen - k} to compare "
                    f"with (k={k}), and no round {round_} was saved to use instead "
                    f"(saved: {saved}); pass a smaller k"
                )
            logging.warning(
                "fold %d: the chosen round %d has no net_(I-%d); comparing rounds %d and 1",
                fold,
                chosen,
                k,
                round_,
            )
    elif round_ - k < 1:
        raise errors.ConfigError(
            f"round={round_}, k={k}: I - k = {round_ - k}, but rounds start at 1; "
            f"pick round > k (saved rounds: {saved})"
        )
    for r in (round_, round_ - k):
        if r not in saved:
            raise errors.DataError(f"fold {fold} has no checkpoint of round {r} (saved: {saved})")
    return round_, round_ - k
