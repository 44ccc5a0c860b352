"""One Orbax checkpoint per (fold, round): `workdir/fold_F/round_RR/`.

Each holds the round's parameters and a small JSON record (round, training set size, class
scores) so that predict and highlight can rebuild the network without the training run.
"""

import os

import orbax.checkpoint as ocp


def fold_dir(workdir: str, fold: int) -> str:
    return os.path.join(os.path.abspath(workdir), f"fold_{fold}")


def manager(workdir: str, fold: int, read_only: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        step_prefix="round",
        step_format_fixed_length=2,
        max_to_keep=None,  # every round is kept: highlight maps need net_I and net_{I-k}
        create=not read_only,
        read_only=read_only,
        enable_async_checkpointing=False,
    )
    return ocp.CheckpointManager(
        fold_dir(workdir, fold), options=options, item_names=("params", "meta")
    )


def save_round(mngr: ocp.CheckpointManager, round_: int, params, meta: dict) -> None:
    mngr.save(
        round_,
        args=ocp.args.Composite(params=ocp.args.StandardSave(params), meta=ocp.args.JsonSave(meta)),
    )
    mngr.wait_until_finished()


def restore_round(mngr: ocp.CheckpointManager, round_: int, abstract_params=None):
    """Returns (params, meta) of a round; `abstract_params` fixes shapes/shardings if given."""
    restored = mngr.restore(
        round_,
        args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params), meta=ocp.args.JsonRestore()
        ),
    )
    return restored["params"], restored["meta"]
