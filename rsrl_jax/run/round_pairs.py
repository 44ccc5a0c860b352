"""Which two saved rounds of a finished run to compare: net_I and net_{I-k} (paper section IV).

The highlight maps (`analysis.highlight`) and their evaluation (`analysis.highlight_eval`)
compare the network of round I with the one of round I - k; this is the one rule that picks
them from what the workdir holds.
"""

from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.data import inputs
from rsrl_jax.run import checkpoints, completeness

# net_I against net_(I-1): the run's highlight panels, the CLIs' default --k, and the pair
# `checkpoint.keep='needed'` keeps (run.retention).
DEFAULT_K = 1


def default_pair(chosen: int, k: int = DEFAULT_K) -> tuple[int, int]:
    """(I, I - k) for the round `chosen` on validation: (chosen, chosen - k), or (1 + k, 1)
    when the chosen round is too early to have a net_(I-k)."""
    round_ = chosen if chosen - k >= 1 else 1 + k
    return round_, round_ - k


def pair_used(fold: int, rounds: tuple[int, int], chosen: bool) -> str:
    """What highlight reads of a partial run, for its warning."""
    how = " (the default: from the best on validation among the rounds that ran)" if chosen else ""
    return f"comparing rounds {rounds[0]} and {rounds[1]} of fold {fold}{how}"


def pair_rounds(workdir: str, fold: int, round_: int | None = None, k: int = DEFAULT_K):
    """(I, I - k): the rounds to compare; I defaults to the round chosen on validation.

    A default I too early for net_{I-k} falls back to round 1 + k (`default_pair`, logged); an
    explicit one must leave I - k >= 1. Both rounds must have a checkpoint. A k or round that
    can never work is an errors.ConfigError; what this run lacks (a fold, a round, a round
    not kept, a network of photos: a run on embeddings has no conv1), an errors.DataError.
    """
    if k < 1:
        raise errors.ConfigError(
            f"k={k}: must be >= 1 (net_I is compared with an earlier net_(I-k))"
        )
    saved = checkpoints.saved_rounds(workdir, fold)
    planned = completeness.of_workdir(workdir).rounds
    if planned is not None and k >= planned:
        only = "only round 1" if planned == 1 else f"only rounds 1-{planned}"
        raise errors.DataError(
            f"k={k}: the run in {workdir} has {only} (rsrl.rounds={planned}): net_I and "
            f"net_(I-k) need k < {planned}"
            + ("; a run of one round has no pair to compare" if planned == 1 else "")
        )
    try:
        why_not = inputs.no_highlights(checkpoints.read_json(workdir, workdir_files.CONFIG))
    except errors.NotFound:  # a copied workdir without it: the rounds' contracts still say
        why_not = None
    if why_not:
        raise errors.DataError(f"{workdir}: no highlight regions: {why_not}")
    if round_ is None:
        chosen = checkpoints.chosen_round(workdir, fold)
        round_ = default_pair(chosen, k)[0]
        if round_ != chosen:
            if round_ not in saved:
                trained = (
                    [r["round"] for r in checkpoints.fold_records(workdir, fold)] if saved else []
                )
                plan = completeness.of_workdir(workdir)
                why = plan.outside_plan(fold, round_) or checkpoints.not_run(
                    workdir, fold, round_, trained
                )
                if why:  # a round the run does not plan, or has not run: not one not saved
                    raise errors.DataError(
                        f"fold {fold}: the chosen round {chosen} has no round {chosen - k} to "
                        f"compare with (k={k}), and {why}"
                    )
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
            raise checkpoints.missing_round(workdir, fold, r, saved)
    return round_, round_ - k
